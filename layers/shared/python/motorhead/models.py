"""Wire types (Motorhead's shapes) and the stored message record."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints


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


class SessionPage(BaseModel):
    """One page of ``GET /sessions`` (the body itself stays a bare list, as in Motorhead)."""

    model_config = ConfigDict(frozen=True)

    session_ids: list[str]
    total: int
    next_page: int | None

    def headers(self) -> dict[str, str]:
        """``X-Total-Count`` always; ``X-Next-Page`` when there is a next page."""
        headers = {"X-Total-Count": str(self.total)}
        if self.next_page is not None:
            headers["X-Next-Page"] = str(self.next_page)
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
    score: float = Field(description="Relevance used for the order (hybrid: reciprocal rank fusion)")
