"""In-memory fakes of every port, for unit tests of the services' own logic without Redis, SQS or a model.

Each fake keeps the contract its port documents (atomic appends, leases, compare-and-set commits, generations), so a
service tested on it behaves as on the real adapter; the adapters themselves are tested on the real thing
(``tests/integration``).
"""

from __future__ import annotations

import itertools
import math
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from motorhead.core.api_keys import StoredKey
from motorhead.core.values import (
    AppendResult,
    ChatResult,
    Folded,
    FoldInput,
    NewMessage,
    Quotas,
    SessionJob,
    SessionRef,
    SessionSnapshot,
    SessionStats,
    StoredMessage,
    UserRef,
)
from motorhead.errors import ConflictError, QuotaExceededError
from motorhead.ltm.bm25 import SessionTexts
from motorhead.ltm.ports import KeywordIndex, Lookup, Scored, UserLookup, Vectors, lookup_apart
from motorhead.ltm.recipe import CURRENT_DENSE_TEXT, DenseText


@dataclass
class _Session:
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    pending: dict[int, StoredMessage] = field(default_factory=dict)
    namespaces: set[str] = field(default_factory=set)
    seq: int = 0
    context: str | None = None
    tokens: int = 0
    version: str = field(default_factory=lambda: uuid.uuid4().hex)
    generation: str = field(default_factory=lambda: uuid.uuid4().hex)
    summary_lease_at: int | None = None
    index_lease_at: int | None = None
    user: str | None = None
    created_at: int = 0
    updated_at: int = 0
    written: int = 0  # bytes of its messages and of the summaries clients gave it


def _written(messages: Sequence[NewMessage], context: str | None) -> int:
    return sum(len(m.role.encode()) + len(m.content.encode()) for m in messages) + len((context or "").encode())


class FakeMemoryStore:
    """Implements ``MemoryStore`` in a dict. ``fail_next_append`` makes the next append raise (nothing stored)."""

    def __init__(self, *, summary_lease_ms: int = 600_000, index_lease_ms: int = 300_000) -> None:
        self.sessions: dict[SessionRef, _Session] = {}
        self.listed: dict[tuple[str, str], dict[str, int]] = {}  # (tenant, namespace) -> id -> last write ms
        self.users: dict[UserRef, dict[str, int]] = {}  # user -> ids of its sessions -> last write ms
        self.summary_lease_ms = summary_lease_ms
        self.index_lease_ms = index_lease_ms
        self.fail_next_append: Exception | None = None
        self.appends = 0
        self.namespaces_used: dict[str, set[str]] = {}  # tenant -> every namespace it wrote under

    def append(
        self,
        session: SessionRef,
        messages: Sequence[NewMessage],
        *,
        context: str | None,
        namespace: str,
        now_ms: int,
        summarize_above: int | None = None,
        index: bool = False,
        user_id: str | None = None,
        adopt: bool = True,
        quotas: Quotas = Quotas(),  # noqa: B008 - frozen
    ) -> AppendResult:
        self._check_quotas(session, messages, context, namespace, quotas)
        if self.fail_next_append is not None:
            error, self.fail_next_append = self.fail_next_append, None
            raise error
        known = self.sessions.get(session)
        if user_id is not None and known is not None and known.user not in (None, user_id):
            raise ConflictError("this session belongs to another user")
        if user_id is not None and known is not None and known.user is None and not adopt:
            raise ConflictError("this session belongs to another user")
        self.appends += 1
        self.listed.setdefault((session.tenant, namespace), {})[session.id] = now_ms
        self.namespaces_used.setdefault(session.tenant, set()).add(namespace)
        state = self.sessions.setdefault(session, _Session())
        state.written += _written(messages, context)
        state.created_at = state.created_at or now_ms
        state.updated_at = now_ms
        if user_id is not None and state.user is None:
            state.user = user_id
        if state.user is not None:
            self.users.setdefault(UserRef(session.tenant, state.user), {})[session.id] = now_ms
        for message in messages:
            state.seq += 1
            stored = StoredMessage(id=state.seq, role=message.role, content=message.content, created_at=now_ms)
            state.messages[stored.id] = stored
            if index:
                state.pending[stored.id] = stored
        if context is not None:
            state.context = context
            state.version = uuid.uuid4().hex
        state.namespaces.add(namespace)
        summary_due = False
        if summarize_above and len(state.messages) > summarize_above:
            summary_due = self._claim(state, "summary_lease_at", now_ms, self.summary_lease_ms)
        index_due = bool(index and messages) and self._claim(state, "index_lease_at", now_ms, self.index_lease_ms)
        return AppendResult(
            count=len(state.messages),
            last_id=state.seq,
            summary_due=summary_due,
            index_due=index_due,
            generation=state.generation,
            user=state.user,
        )

    @staticmethod
    def _claim(state: _Session, lease: str, now_ms: int, lease_ms: int) -> bool:
        claimed = getattr(state, lease)
        if claimed is None or now_ms - claimed >= lease_ms:
            setattr(state, lease, now_ms)
            return True
        return False

    def read(self, session: SessionRef, *, limit: int) -> SessionSnapshot:
        state = self.sessions.get(session)
        if state is None:
            return SessionSnapshot(messages=[], context=None, tokens=0)
        newest = sorted(state.messages.values(), key=lambda m: -m.id)[:limit]
        return SessionSnapshot(messages=newest, context=state.context, tokens=state.tokens)

    def delete(self, session: SessionRef, *, namespace: str) -> None:
        state = self.sessions.pop(session, None)
        for ns in (state.namespaces if state else set()) | {namespace, ""}:
            self.listed.get((session.tenant, ns), {}).pop(session.id, None)
        if state is not None and state.user is not None:
            self.users.get(UserRef(session.tenant, state.user), {}).pop(session.id, None)

    def list_user_sessions(
        self, user: UserRef, *, namespace: str | None, offset: int, limit: int
    ) -> tuple[list[str], int]:
        listed = self.users.get(user, {})
        ordered = sorted(listed, key=lambda sid: (listed[sid], sid))
        if namespace is not None:
            ordered = [sid for sid in ordered if sid in self.listed.get((user.tenant, namespace), {})]
        return ordered[offset : offset + limit], len(ordered)

    def user_sessions(
        self, user: UserRef, *, namespace: str | None = None, session_ids: frozenset[str] | None = None, limit: int
    ) -> list[tuple[str, str]]:
        listed = self.users.get(user, {})
        newest = sorted(listed, key=lambda sid: (-listed[sid], sid))[:limit]
        return [
            (sid, state.generation)
            for sid in newest
            if (session_ids is None or sid in session_ids)
            and (state := self.sessions.get(SessionRef(user.tenant, sid))) is not None
            and state.user == user.id
            and (namespace is None or namespace in state.namespaces)
        ]

    def listed_sessions(self, user: UserRef, *, limit: int) -> list[str]:
        listed = self.users.get(user, {})
        return sorted(listed, key=lambda sid: (-listed[sid], sid))[:limit]

    def session_user(self, session: SessionRef) -> str | None:
        state = self.sessions.get(session)
        return None if state is None else state.user

    def usage(self, tenant: str) -> dict[str, int]:
        mine = [state for ref, state in self.sessions.items() if ref.tenant == tenant]
        return {
            "sessions": len(mine),
            "messages": sum(state.seq for state in mine),
            "bytes": sum(state.written for state in mine),
            "namespaces": len(self.namespaces_used.get(tenant, set())),
        }

    def _check_quotas(
        self, session: SessionRef, messages: Sequence[NewMessage], context: str | None, namespace: str, quotas: Quotas
    ) -> None:
        used = self.usage(session.tenant)
        grow = {
            "sessions": 0 if session in self.sessions else 1,
            "messages": len(messages),
            "bytes": _written(messages, context),
            "namespaces": 0 if namespace in self.namespaces_used.get(session.tenant, set()) else 1,
        }
        for name, limit in (("sessions", quotas.sessions), ("messages", quotas.messages), ("bytes", quotas.bytes),
                            ("namespaces", quotas.namespaces)):  # fmt: skip
            if limit and grow[name] and used[name] + grow[name] > limit:
                raise QuotaExceededError(f"this tenant's quota of {limit} {name} is used up; nothing was stored")

    def session_stats(self, session: SessionRef) -> SessionStats | None:
        state = self.sessions.get(session)
        if state is None:
            return None
        return SessionStats(
            messages=len(state.messages),
            total_messages=state.seq,
            tokens=state.tokens,
            has_summary=state.context is not None,
            created_at=state.created_at,
            updated_at=state.updated_at,
            user_id=state.user,
            namespaces=frozenset(state.namespaces),
            unindexed=len(state.pending),
        )

    def still_bound(self, user: UserRef, sessions: Sequence[tuple[str, str]]) -> set[str]:
        return {
            sid
            for sid, generation in sessions
            if (state := self.sessions.get(SessionRef(user.tenant, sid))) is not None
            and state.user == user.id
            and state.generation == generation
        }

    def delete_user(self, user: UserRef) -> tuple[int, bool]:
        deleted = 0
        for sid in list(self.users.pop(user, {})):
            session = SessionRef(user.tenant, sid)
            state = self.sessions.get(session)
            if state is not None and state.user == user.id:
                self.delete(session, namespace="")
                deleted += 1
        return deleted, True

    def list_sessions(self, tenant: str, *, namespace: str, offset: int, limit: int) -> tuple[list[str], int]:
        listed = self.listed.get((tenant, namespace), {})
        ordered = sorted(listed, key=lambda sid: (listed[sid], sid))
        return ordered[offset : offset + limit], len(ordered)

    def release_summary_lease(self, session: SessionRef) -> None:
        if session in self.sessions:
            self.sessions[session].summary_lease_at = None

    def release_index_lease(self, session: SessionRef, *, only_if_idle: bool) -> bool:
        state = self.sessions.get(session)
        if state is None:
            return True
        if only_if_idle and state.pending:
            return False
        state.index_lease_at = None
        return True

    def pending(self, session: SessionRef, *, limit: int) -> tuple[str, list[StoredMessage]]:
        state = self.sessions.get(session)
        if state is None:
            return "", []
        return state.generation, [state.pending[i] for i in sorted(state.pending)[:limit]]

    def ack_indexed(self, session: SessionRef, generation: str, ids: list[int]) -> None:
        state = self.sessions.get(session)
        if state is None or state.generation != generation or not ids:
            return
        for message_id in [i for i in state.pending if min(ids) <= i <= max(ids)]:
            del state.pending[message_id]

    def fold_input(self, session: SessionRef, *, window: int, keep: int) -> FoldInput | None:
        state = self.sessions.get(session)
        if state is None or len(state.messages) <= window:
            return None
        oldest = sorted(state.messages.values(), key=lambda m: m.id)[: len(state.messages) - keep]
        return FoldInput(context=state.context, version=state.version, messages=oldest, count=len(state.messages))

    def commit_fold(self, session: SessionRef, *, start: FoldInput, folded: Folded) -> bool:
        state = self.sessions.get(session)
        if state is None or state.version != start.version:
            return False
        first, last = start.messages[0].id, start.messages[-1].id
        present = [i for i in state.messages if first <= i <= last]
        if len(present) != len(start.messages):
            return False
        for message_id in present:
            del state.messages[message_id]
        if folded.context is not None:
            state.context = folded.context
        state.version = uuid.uuid4().hex
        state.tokens += folded.tokens
        state.summary_lease_at = None
        return True


class FakeJobQueue:
    """Implements ``JobQueue``: keeps what was sent; ``fail`` makes every send raise."""

    def __init__(self, *, fail: Exception | None = None) -> None:
        self.sent: list[SessionJob] = []
        self.fail = fail

    def send(self, job: SessionJob) -> None:
        if self.fail is not None:
            raise self.fail
        self.sent.append(job)


class FakeChatModel:
    """Implements ``ChatModel``: answers from ``answers`` in turn (an exception is raised), then ``default``."""

    def __init__(self, *answers: str | Exception, default: str = "a summary", tokens: int = 10) -> None:
        self._answers = list(answers)
        self._default = default
        self._tokens = tokens
        self.prompts: list[tuple[str, str]] = []

    def complete(self, *, system: str, user: str, max_tokens: int) -> ChatResult:
        self.prompts.append((system, user))
        answer = self._answers.pop(0) if self._answers else self._default
        if isinstance(answer, Exception):
            raise answer
        return ChatResult(text=answer, total_tokens=self._tokens)


class FakeTokenCounter:
    """Implements ``TokenCounter``: one token per whitespace-separated word."""

    model = "fake-words"

    def count(self, text: str) -> int:
        return len(text.split())

    def head(self, text: str, tokens: int) -> str:
        return " ".join(text.split()[: max(tokens, 0)])


class FakeEmbedder:
    """Implements ``Embedder``: a hashed bag of words, L2-normalized: texts sharing words are near, others far."""

    def __init__(self, dimensions: int = 64, *, fail: Exception | None = None) -> None:
        self._dimensions = dimensions
        self.fail = fail
        self.calls: list[list[str]] = []

    @property
    def identity(self) -> str:
        return f"fake:words:{self._dimensions}"

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.calls.append(list(texts))
        if self.fail is not None:
            raise self.fail
        rows = np.zeros((len(texts), self._dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                rows[row, zlib.crc32(word.strip(".,!?").encode()) % self._dimensions] += 1.0
        norms = np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
        return np.asarray(rows / norms, dtype=np.float32)


class FakeVectorIndex:
    """Implements ``VectorIndex`` (exact cosine in memory) and ``KeywordIndex`` (BM25 over the same messages)."""

    name = "fake"

    def __init__(self, store: FakeMemoryStore | None = None) -> None:
        self._store = store  # to check the generation, as the real backends do in their add script
        self.rows: dict[SessionRef, list[tuple[StoredMessage, Vectors]]] = {}
        self.ready: tuple[str, int] | None = None
        self.dense_text = CURRENT_DENSE_TEXT

    def ensure_ready(self, *, embedder: str, dimensions: int) -> DenseText:
        self.ready = (embedder, dimensions)
        return self.dense_text

    def add(self, session: SessionRef, generation: str, messages: Sequence[StoredMessage], vectors: Vectors) -> int:
        if self._store is not None:
            state = self._store.sessions.get(session)
            if state is None or state.generation != generation:
                return 0
        rows = self.rows.setdefault(session, [])
        known = {message.id for message, _ in rows}
        added = [
            (m, np.asarray(v, dtype=np.float32)) for m, v in zip(messages, vectors, strict=True) if m.id not in known
        ]
        rows.extend(added)
        return len(added)

    def vector_search(self, session: SessionRef, query: Vectors, k: int) -> list[Scored]:
        scored = [Scored(message=m, distance=float(1.0 - v @ query)) for m, v in self.rows.get(session, [])]
        return sorted(scored, key=lambda s: (s.distance, -s.message.id))[:k]

    def distances(self, session: SessionRef, ids: Sequence[int], query: Vectors) -> dict[int, float]:
        wanted = set(ids)
        return {m.id: float(1.0 - v @ query) for m, v in self.rows.get(session, []) if m.id in wanted}

    def vector_search_many(self, sessions: Sequence[SessionRef], query: Vectors, k: int) -> list[tuple[int, Scored]]:
        found = [(p, scored) for p, session in enumerate(sessions) for scored in self.vector_search(session, query, k)]
        return sorted(found, key=lambda hit: (hit[1].distance, -hit[1].message.created_at, -hit[1].message.id))[:k]

    def distances_many(
        self, wanted: Sequence[tuple[SessionRef, Sequence[int]]], query: Vectors
    ) -> list[dict[int, float]]:
        return [self.distances(session, ids, query) for session, ids in wanted]

    def texts(self, session: SessionRef) -> SessionTexts:
        texts = SessionTexts()
        for message, _ in self.rows.get(session, []):
            texts.add(message)
        return texts

    def texts_many(self, sessions: Sequence[SessionRef]) -> list[SessionTexts]:
        return [self.texts(session) for session in sessions]

    checks_owner = False

    def lookup_many(
        self,
        sessions: Sequence[SessionRef],
        query: Vectors,
        k: int,
        keywords: KeywordIndex,
        *,
        owner: str | None = None,
    ) -> Lookup:
        return lookup_apart(self, keywords, sessions, query, k)

    def lookup_user(
        self,
        user: UserRef,
        query: Callable[[], Vectors],
        k: int,
        keywords: KeywordIndex,
        *,
        limit: int,
        session_ids: frozenset[str] | None,
    ) -> UserLookup | None:
        return None  # the service lists the user's sessions first, as on a cluster


def ticking(start: float = 0.0, step: float = 1.0) -> Callable[[], float]:
    """A clock that advances ``step`` seconds each time it is read."""
    counter = itertools.count()
    return lambda: start + step * next(counter)


def isclose(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)


class FakeKeyStore:
    """Implements ``KeyStore`` in a dict; counts reads (of a record, of the directory, of the revision), to see what
    the directory saves."""

    def __init__(self, *, log: int = 10_000) -> None:
        self.keys: dict[str, StoredKey] = {}
        self.reads = 0
        self.loads = 0
        self.revision_reads = 0
        self._revision = 0
        self._log: list[tuple[int, str]] = []  # (revision, key id) of the last ``log`` changes
        self._log_size = log

    def get(self, key_id: str) -> StoredKey | None:
        self.reads += 1
        return self.keys.get(key_id)

    def put(self, key: StoredKey) -> None:
        self.keys[key.key_id] = key
        self._changed(key.key_id)

    def delete(self, key_id: str) -> bool:
        existed = self.keys.pop(key_id, None) is not None
        self._changed(key_id)
        return existed

    def _changed(self, key_id: str) -> None:
        self._revision += 1
        self._log = [*self._log, (self._revision, key_id)][-self._log_size :]

    def changed(self, since: str, until: str) -> list[str] | None:
        first, last = int(since), int(until)
        held = {revision: key_id for revision, key_id in self._log if first < revision <= last}
        if set(held) != set(range(first + 1, last + 1)):
            return None
        return list(held.values())

    def some(self, key_ids: Sequence[str]) -> dict[str, StoredKey | None]:
        self.reads += len(key_ids)
        return {key_id: self.keys.get(key_id) for key_id in key_ids}

    def all(self) -> list[StoredKey]:
        self.loads += 1
        return list(self.keys.values())

    def revision(self) -> str:
        self.revision_reads += 1
        return str(self._revision)


class FakeRateLimiter:
    """Implements ``RateLimiter``: ``waits[tenant]`` seconds to wait (0: allowed), counting calls."""

    def __init__(self, waits: dict[str, float] | None = None) -> None:
        self.waits = waits or {}
        self.calls: list[str] = []

    def acquire(self, tenant: str) -> float:
        self.calls.append(tenant)
        return self.waits.get(tenant, 0.0)

    def defer(self, tenant: str) -> None:
        return None  # never owed: ``acquire`` at admission
