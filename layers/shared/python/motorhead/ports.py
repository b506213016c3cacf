"""Ports: what the domain needs from the outside world, as small protocols."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class StoredMessage:
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


class MemoryStore(Protocol):
    def append(
        self,
        session_id: str,
        messages: Sequence[tuple[str, str]],
        *,
        context: str | None,
        namespace: str,
        now_ms: int,
    ) -> int:
        """Store every message or none (with ``context`` replacing the summary when given); return the count."""
        ...

    def read(self, session_id: str, *, limit: int) -> SessionSnapshot: ...

    def delete(self, session_id: str, *, namespace: str) -> None: ...

    def list_sessions(self, *, namespace: str, offset: int, limit: int) -> tuple[list[str], int]: ...
