"""Wire types: Motorhead's request and response shapes, and how each maps to and from the domain's values."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from motorhead.core.auth import Caller
from motorhead.core.values import Hit, NewMessage, SearchFilters, SessionPage, SessionSnapshot, UserHit


def _valid_unicode(text: str) -> str:
    """JSON may carry lone surrogates (a JS string cut mid-emoji); they cannot be stored as UTF-8: refuse them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("text must be valid Unicode (no lone surrogate \\uD800-\\uDFFF)") from exc
    return text


Text = Annotated[str, AfterValidator(_valid_unicode)]
Role = Annotated[Text, StringConstraints(min_length=1, max_length=64)]


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

    text: Text = Field(min_length=1, max_length=8_192)
    k: int = Field(10, ge=1, le=100, description="How many messages to return")


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


SessionId = Annotated[Text, StringConstraints(min_length=1, max_length=256)]


class UserRetrievalIn(BaseModel):
    """Body of ``POST /users/{id}/retrieval``: session retrieval's, plus optional filters."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    text: Text = Field(min_length=1, max_length=8_192)
    limit: int = Field(10, ge=1, le=100, description="How many messages to return")
    session_ids: list[SessionId] | None = Field(
        None, max_length=1_000, description="Only these sessions of the user (others' ids find nothing)"
    )
    namespace: Text | None = Field(None, max_length=256, description="Only sessions listed under this namespace")
    roles: list[Role] | None = Field(None, max_length=64, description="Only messages of these roles")
    since: int | None = Field(None, ge=0, description="Only messages stored at or after this unix time in ms")
    until: int | None = Field(None, ge=0, description="Only messages stored at or before this unix time in ms")

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
