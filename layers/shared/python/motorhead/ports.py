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


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What a POST changed: the session's message count, its newest id, and which background jobs are due."""

    count: int
    last_id: int
    summary_due: bool
    index_due: bool = False
    generation: str = ""


@dataclass(frozen=True, slots=True)
class SessionJob:
    """One SQS message: work on this session as of ``last_id``; with the session's ``generation`` it makes the job's
    deduplication id (ids start again at 1 after a DELETE; the generation does not repeat)."""

    session_id: str
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
class ChatResult:
    text: str
    total_tokens: int


class ChatModel(Protocol):
    """An LLM that answers one chat completion."""

    def complete(self, *, system: str, user: str, max_tokens: int) -> ChatResult: ...


class SummaryWriter(Protocol):
    """Folds messages into a summary, incrementally."""

    def fold(self, context: str | None, messages: list[StoredMessage]) -> Folded: ...

    def take(self, context: str | None, messages: list[StoredMessage]) -> int:
        """How many of the oldest ``messages`` to fold in one step (one LLM call), so each step can commit."""
        ...


class JobQueue(Protocol):
    def send(self, job: SessionJob) -> None: ...


class MemoryStore(Protocol):
    def append(
        self,
        session_id: str,
        messages: Sequence[tuple[str, str]],
        *,
        context: str | None,
        namespace: str,
        now_ms: int,
        summarize_above: int | None = None,
        index: bool = False,
    ) -> AppendResult:
        """Store every message or none (``context``, when given, replaces the summary).

        With ``summarize_above``, also claim the session's summary-job lease when the count exceeds it and no job was
        claimed recently: ``summary_due`` tells the caller to send one job. With ``index``, also record the messages
        as pending for long-term memory and claim the index-job lease (``index_due``).
        """
        ...

    def read(self, session_id: str, *, limit: int) -> SessionSnapshot: ...

    def delete(self, session_id: str, *, namespace: str) -> None: ...

    def list_sessions(self, *, namespace: str, offset: int, limit: int) -> tuple[list[str], int]: ...

    def release_summary_lease(self, session_id: str) -> None:
        """Let the next POST send a summary job again (after a failed send)."""
        ...

    def release_index_lease(self, session_id: str, *, only_if_idle: bool) -> bool:
        """Let the next POST send an index job again: after a failed send, or (``only_if_idle``) once an indexer
        finds nothing pending — atomically, so a message posted meanwhile is never left without a job."""
        ...

    def pending(self, session_id: str, *, limit: int) -> tuple[str, list[StoredMessage]]:
        """The session's generation token and up to ``limit`` messages awaiting indexing, oldest first."""
        ...

    def ack_indexed(self, session_id: str, generation: str, ids: list[int]) -> None:
        """Forget these pending entries, the oldest ones (they are indexed), unless the session was deleted and
        re-created since ``generation`` was read (its new pending entries may reuse the ids)."""
        ...

    def fold_input(self, session_id: str, *, window: int, keep: int) -> FoldInput | None:
        """Everything but the newest ``keep`` messages when more than ``window`` are stored; None otherwise."""
        ...

    def commit_fold(self, session_id: str, *, start: FoldInput, folded: Folded) -> bool:
        """Atomically remove exactly ``start``'s messages, store the new summary and add the tokens, if the summary
        is still the one ``start`` read; False (and no change at all) otherwise."""
        ...
