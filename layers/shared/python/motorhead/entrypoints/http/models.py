"""Wire types: Motorhead's request and response shapes, and how each maps to and from the domain's values."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from motorhead.core.auth import Caller
from motorhead.core.values import (
    FusionParts,
    Hit,
    NewMessage,
    SearchFilters,
    SessionPage,
    SessionSnapshot,
    SessionStatus,
    UserHit,
)


def _valid_unicode(text: str) -> str:
    """JSON may carry lone surrogates (a JS string cut mid-emoji); they cannot be stored as UTF-8: refuse them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("text must be valid Unicode (no lone surrogate \\uD800-\\uDFFF)") from exc
    return text


_UNICODE = AfterValidator(_valid_unicode)
# Each bounded text carries its lengths on the string itself, checked before the Unicode check, so that a refusal
# speaks of characters ("String should have at least 1 character"). A length given by ``Field`` on ``Text`` instead
# would be checked after that validator, as a collection's ("Value should have at least 1 item after validation").
Text = Annotated[str, _UNICODE]
Role = Annotated[str, StringConstraints(min_length=1, max_length=64), _UNICODE]
Query = Annotated[str, StringConstraints(min_length=1, max_length=8_192), _UNICODE]
Namespace = Annotated[str, StringConstraints(max_length=256), _UNICODE]


class MessageIn(BaseModel):
    """One message as clients send it: LangChain uses roles "Human" and "AI"; any non-empty role is kept."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    role: Role
    content: Text


class MemoryIn(BaseModel):
    """Body of ``POST /sessions/{id}/memory``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    messages: list[MessageIn]
    context: Text | None = None

    def new_messages(self) -> list[NewMessage]:
        return [NewMessage(role=m.role, content=m.content) for m in self.messages]


class MessageOut(BaseModel):
    """A message as GET returns it: Motorhead's ``role``/``content`` plus fields old clients ignore."""

    model_config = ConfigDict(frozen=True)

    role: str
    content: str
    id: int = Field(description="Per-session sequence number, increasing in the order messages were stored")
    created_at: int = Field(description="Unix time in milliseconds when the message was stored")


class MemoryOut(BaseModel):
    """Body of ``GET /sessions/{id}/memory``: newest message first."""

    model_config = ConfigDict(frozen=True)

    messages: list[MessageOut]
    context: str | None
    tokens: int

    @classmethod
    def of(cls, snapshot: SessionSnapshot) -> MemoryOut:
        return cls(
            messages=[
                MessageOut(role=m.role, content=m.content, id=m.id, created_at=m.created_at) for m in snapshot.messages
            ],
            context=snapshot.context,
            tokens=snapshot.tokens,
        )


class SessionOut(BaseModel):
    """Body of ``GET /sessions/{id}``: what the session holds and what awaits its background jobs, never its messages
    nor its summary (``GET /sessions/{id}/memory`` has those), nor its id (the caller has it)."""

    model_config = ConfigDict(frozen=True)

    exists: bool = Field(description="False for a session never written, or deleted: then every count is 0")
    messages: int = Field(description="Messages stored now: the window, until the summarizer folds what overflows")
    total_messages: int = Field(description="Messages ever appended (the id of the newest)")
    tokens: int = Field(description="Tokens the summaries used so far (as GET memory's tokens)")
    has_summary: bool = Field(description="Whether the session has a summary (context)")
    created_at: int = Field(description="Unix time in milliseconds of the first write")
    updated_at: int = Field(description="Unix time in milliseconds of the last write")
    user_id: str | None = Field(description="The user the session is bound to, null if none")
    namespaces: list[str] = Field(description='The namespaces it is listed under ("" is the default namespace)')
    summary_pending: bool = Field(description="More messages than the window: a summary job is queued or running")
    index_pending: bool = Field(description="Messages await the long-term indexer")
    unindexed: int = Field(description="How many messages await the long-term indexer")
    long_term_memory: bool = Field(
        description="Whether this deployment indexes messages (MOTORHEAD_LONG_TERM_MEMORY): when off, nothing is "
        "ever indexed, and index_pending stays false"
    )

    @classmethod
    def of(cls, status: SessionStatus) -> SessionOut:
        stats = status.stats
        return cls(
            exists=status.exists,
            messages=stats.messages,
            total_messages=stats.total_messages,
            tokens=stats.tokens,
            has_summary=stats.has_summary,
            created_at=stats.created_at,
            updated_at=stats.updated_at,
            user_id=stats.user_id,
            namespaces=sorted(stats.namespaces),
            summary_pending=status.summary_pending,
            index_pending=status.index_pending,
            unindexed=stats.unindexed,
            long_term_memory=status.long_term_memory,
        )


class StatusOut(BaseModel):
    """Motorhead's acknowledgement."""

    model_config = ConfigDict(frozen=True)

    status: Literal["Ok"] = "Ok"


class HealthOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    now: int = Field(description="Server time, unix milliseconds")


class ErrorOut(BaseModel):
    """Every error body."""

    model_config = ConfigDict(frozen=True)

    error: str


def page_headers(page: SessionPage) -> dict[str, str]:
    """``X-Total-Count`` always; ``X-Next-Page`` when there is a next page (the body stays Motorhead's bare list)."""
    headers = {"X-Total-Count": str(page.total)}
    if page.next_page is not None:
        headers["X-Next-Page"] = str(page.next_page)
    return headers


class RetrievalIn(BaseModel):
    """Body of ``POST /sessions/{id}/retrieval``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    text: Query
    k: int = Field(10, ge=1, le=100, description="How many messages to return")
    explain: bool = Field(False, description="Add each hit's `parts`: what its score is made of")


class RetrievalHitOut(BaseModel):
    """One retrieved message: Motorhead's ``role``/``content``/``dist`` plus fields old clients ignore."""

    model_config = ConfigDict(frozen=True)

    role: str
    content: str
    dist: float = Field(description="Cosine distance to the query (0 = same meaning, 2 = opposite)")
    id: int
    created_at: int
    score: float = Field(
        description="Relevance used for the order (default: the recipe's fused score; vectors only: 1 - dist)"
    )

    @classmethod
    def of(cls, hit: Hit) -> RetrievalHitOut:
        return cls(
            role=hit.message.role,
            content=hit.message.content,
            dist=round(hit.distance, 6),
            id=hit.message.id,
            created_at=hit.message.created_at,
            score=round(hit.score, 6),
        )


SessionId = Annotated[str, StringConstraints(min_length=1, max_length=256), _UNICODE]


class UserRetrievalIn(BaseModel):
    """Body of ``POST /users/{id}/retrieval``: session retrieval's, plus optional filters."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    text: Query
    limit: int = Field(10, ge=1, le=100, description="How many messages to return")
    session_ids: list[SessionId] | None = Field(
        None, max_length=1_000, description="Only these sessions of the user (others' ids find nothing)"
    )
    namespace: Namespace | None = Field(None, description="Only sessions listed under this namespace")
    roles: list[Role] | None = Field(None, max_length=64, description="Only messages of these roles")
    since: int | None = Field(None, ge=0, description="Only messages stored at or after this unix time in ms")
    until: int | None = Field(None, ge=0, description="Only messages stored at or before this unix time in ms")
    explain: bool = Field(False, description="Add each hit's `parts`: what its score is made of")

    def filters(self) -> SearchFilters:
        return SearchFilters(
            session_ids=None if self.session_ids is None else frozenset(self.session_ids),
            namespace=self.namespace,
            roles=None if self.roles is None else frozenset(self.roles),
            since_ms=self.since,
            until_ms=self.until,
        )


class UserRetrievalHitOut(RetrievalHitOut):
    """One message of a user's history: session retrieval's fields and the session it belongs to."""

    session_id: str

    @classmethod
    def of_user(cls, found: UserHit) -> UserRetrievalHitOut:
        return cls(session_id=found.session_id, **RetrievalHitOut.of(found.hit).model_dump())


class FusionPartsOut(BaseModel):
    """What a hit's score is made of (``explain``): the raw scores the fusion read, and its terms, which add up to the
    score (to rounding): ``vector + keyword + speaker + next == score``."""

    model_config = ConfigDict(frozen=True)

    cosine: float = Field(description="Cosine similarity to the query (1 - dist, as the fusion used it)")
    bm25: float = Field(description="BM25 score of the message for the query (0 when ranked by vectors alone)")
    vector: float = Field(description="The vector term: alpha × the cosine's z-score over the candidates")
    keyword: float = Field(description="The keyword term: (1 - alpha) × the BM25 score's z-score over the candidates")
    speaker: float = Field(description="The boost for the one speaker the query names (0 if none)")
    next: float = Field(description="The lift from the message after it: next_weight × that message's own score")

    @classmethod
    def of(cls, parts: FusionParts) -> FusionPartsOut:
        return cls(
            cosine=round(parts.cosine, 6),
            bm25=round(parts.bm25, 6),
            vector=round(parts.vector, 6),
            keyword=round(parts.keyword, 6),
            speaker=round(parts.speaker, 6),
            next=round(parts.next, 6),
        )


class ExplainedHitOut(RetrievalHitOut):
    """One retrieved message as ``POST /sessions/{id}/retrieval`` returns it: ``parts`` only with ``explain``."""

    parts: FusionPartsOut | None = Field(None, description="With explain: what the score is made of")

    @classmethod
    def explained(cls, hit: Hit) -> ExplainedHitOut:
        parts = None if hit.parts is None else FusionPartsOut.of(hit.parts)
        return cls(parts=parts, **RetrievalHitOut.of(hit).model_dump())


class ExplainedUserHitOut(UserRetrievalHitOut):
    """One message of a user's history as ``POST /users/{id}/retrieval`` returns it: ``parts`` only with ``explain``."""

    parts: FusionPartsOut | None = Field(None, description="With explain: what the score is made of")

    @classmethod
    def explained(cls, found: UserHit) -> ExplainedUserHitOut:
        parts = None if found.hit.parts is None else FusionPartsOut.of(found.hit.parts)
        return cls(parts=parts, **UserRetrievalHitOut.of_user(found).model_dump())


class DeletedUserOut(BaseModel):
    """Body of ``DELETE /users/{id}``: ``Ok`` once none of the user's sessions is left (``Partial``, with a 202, when a
    user of very many sessions needs another call), and how many sessions this call deleted."""

    model_config = ConfigDict(frozen=True)

    status: Literal["Ok", "Partial"]
    deleted_sessions: int

    @classmethod
    def of(cls, deleted: int, complete: bool) -> DeletedUserOut:
        return cls(status="Ok" if complete else "Partial", deleted_sessions=deleted)


class CurrentKeyOut(BaseModel):
    """Who the credential is (``GET /keys/current``): never the key, never another tenant."""

    model_config = ConfigDict(frozen=True)

    auth: str = Field(description="api-key, jwt or none")
    tenant: str
    key_id: str | None = Field(description="The API key's public id")
    scopes: list[str]

    @classmethod
    def of(cls, caller: Caller) -> CurrentKeyOut:
        return cls(
            auth=caller.method,
            tenant=caller.tenant,
            key_id=caller.key_id,
            scopes=sorted(scope.value for scope in caller.scopes),
        )
