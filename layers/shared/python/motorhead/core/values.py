"""The domain's value types: what a session holds, what a POST changed, what a job works on. Plain frozen dataclasses,
no SDK: every layer may use them."""

from __future__ import annotations

from dataclasses import dataclass

NO_TENANT = ""  # the tenant of `MOTORHEAD_AUTH=none`: its sessions keep the keys they had before tenants existed
DEFAULT_NAMESPACE = ""


@dataclass(frozen=True, slots=True)
class SessionRef:
    """Which session: the pair (tenant, session id). Every key, document and job of a session is derived from both, so
    the same id under two tenants is two sessions."""

    tenant: str
    id: str


@dataclass(frozen=True, slots=True)
class UserRef:
    """Which user: the pair (tenant, user id). Two tenants' ``U`` are two users; a session is bound to at most one."""

    tenant: str
    id: str


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message as a client posts it."""

    role: str
    content: str


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message as stored: its per-session id (increasing in the order messages were stored) and unix ms."""

    id: int
    role: str
    content: str
    created_at: int


@dataclass(frozen=True, slots=True)
class SessionSnapshot:
    """What GET needs: the newest messages (newest first), the summary and the token counter."""

    messages: list[StoredMessage]
    context: str | None
    tokens: int


@dataclass(frozen=True, slots=True)
class SessionStats:
    """What the store holds about one session, without its messages: counts, times, its user, the namespaces it is
    listed under and what awaits the indexer."""

    messages: int  # stored now: the window, until the summarizer folds what overflows it
    total_messages: int  # ever appended (the id of the newest message)
    tokens: int
    has_summary: bool
    created_at: int  # unix ms of the first write
    updated_at: int  # unix ms of the last write (POST)
    user_id: str | None
    namespaces: frozenset[str]  # "" is the default namespace (a POST without one)
    unindexed: int  # messages stored but not yet in the long-term index


NO_STATS = SessionStats(
    messages=0,
    total_messages=0,
    tokens=0,
    has_summary=False,
    created_at=0,
    updated_at=0,
    user_id=None,
    namespaces=frozenset(),
    unindexed=0,
)


@dataclass(frozen=True, slots=True)
class SessionStatus:
    """A session's stats and whether a background job still has work on it. A session that does not exist (never
    written, or deleted) is simply empty, as everywhere in the API: ``exists`` False, every count 0."""

    stats: SessionStats
    exists: bool
    summary_pending: bool  # more messages than the window: a summary job is queued, running or due
    index_pending: bool  # messages await the indexer
    long_term_memory: bool = False  # this deployment indexes messages at all (off: nothing is ever pending)


@dataclass(frozen=True, slots=True)
class SessionPage:
    """One page of session ids, the total and the next page (None on the last)."""

    session_ids: list[str]
    total: int
    next_page: int | None


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What a POST changed: the session's message count, its newest id, and which background jobs are due."""

    count: int
    last_id: int
    summary_due: bool
    index_due: bool = False
    generation: str = ""
    user: str | None = None  # the user the session is bound to after the write, if any


@dataclass(frozen=True, slots=True)
class SessionJob:
    """One queued job: work on this session as of ``last_id``; with the session's ``generation`` it makes the job's
    deduplication id (ids start again at 1 after a DELETE; the generation does not repeat)."""

    session: SessionRef
    last_id: int
    generation: str = ""


@dataclass(frozen=True, slots=True)
class FoldInput:
    """What a summarizer job starts from: the summary, its version token, and the messages to fold (oldest first)."""

    context: str | None
    version: str
    messages: list[StoredMessage]
    count: int


@dataclass(frozen=True, slots=True)
class Folded:
    """A new summary, what producing it cost, and how many model calls it took."""

    context: str | None
    tokens: int
    calls: int


@dataclass(frozen=True, slots=True)
class FusionParts:
    """Why a message ranked where it did: the raw scores the fusion read and its terms, which add up to the score
    (``vector + keyword + speaker + next == score``). With vectors alone, ``vector`` is the whole score."""

    cosine: float  # cosine similarity to the query, as the fusion used it
    bm25: float  # the message's BM25 score for the query (0 without keywords)
    vector: float  # alpha · z(cosine)
    keyword: float  # (1 - alpha) · z(bm25)
    speaker: float = 0.0  # the boost for the one speaker the query names
    next: float = 0.0  # the lift from the message after it: next_weight × that message's own score


@dataclass(frozen=True, slots=True)
class Hit:
    """One retrieved message, its cosine distance to the query (0 = same direction, 2 = opposite) and the relevance
    used for the order; ``parts`` when the search was asked to explain it."""

    message: StoredMessage
    distance: float
    score: float
    parts: FusionParts | None = None


@dataclass(frozen=True, slots=True)
class UserHit:
    """One retrieved message of a user's history: the session it belongs to, and the hit."""

    session_id: str
    hit: Hit


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """What a user-level search may return: messages of these sessions only (None: all of the user's), of sessions
    listed under this namespace, of these roles, written in ``[since_ms, until_ms]`` (unix ms, both inclusive)."""

    session_ids: frozenset[str] | None = None
    namespace: str | None = None
    roles: frozenset[str] | None = None
    since_ms: int | None = None
    until_ms: int | None = None

    def admits(self, message: StoredMessage) -> bool:
        if self.roles is not None and message.role not in self.roles:
            return False
        if self.since_ms is not None and message.created_at < self.since_ms:
            return False
        return self.until_ms is None or message.created_at <= self.until_ms

    @property
    def on_messages(self) -> bool:
        """Whether the filters look at messages at all (roles or time), beyond which sessions are searched."""
        return self.roles is not None or self.since_ms is not None or self.until_ms is not None


@dataclass(frozen=True, slots=True)
class ChatResult:
    text: str
    total_tokens: int


@dataclass(frozen=True, slots=True)
class Quotas:
    """What one tenant may keep (0: no limit): its sessions, the messages and the bytes (of messages and of summaries
    given by the client) written to them while they live, and the namespaces it has written under."""

    sessions: int = 0
    messages: int = 0
    bytes: int = 0
    namespaces: int = 0

    @property
    def any(self) -> bool:
        return any((self.sessions, self.messages, self.bytes, self.namespaces))


@dataclass(frozen=True, slots=True)
class MemoryLimits:
    """What one POST may carry, and how many messages a session keeps in its window."""

    window: int = 12
    max_messages_per_request: int = 100
    max_message_bytes: int = 65_536
    max_context_bytes: int = 65_536
    max_session_id_bytes: int = 256
    max_namespace_bytes: int = 256
