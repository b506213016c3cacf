"""Ports: what the domain needs from the outside world, as small protocols. Adapters implement them; tests use the
in-memory fakes of ``tests/fakes.py``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

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

NO_QUOTAS = Quotas()


class MemoryStore(Protocol):
    """Where sessions live. Every write to one session is atomic."""

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
        quotas: Quotas = NO_QUOTAS,
    ) -> AppendResult:
        """Store every message or none (``context``, when given, replaces the summary).

        With ``summarize_above``, also claim the session's summary-job lease when the count exceeds it and no job was
        claimed recently: ``summary_due`` tells the caller to send one job. With ``index``, also record the messages
        as pending for long-term memory and claim the index-job lease (``index_due``). With ``user_id``, bind the
        session to that user of its tenant if it is bound to none; a session bound to another user raises
        ``ConflictError`` and nothing is stored. A session bound to a user stays listed under it. With
        ``adopt=False``, a session that exists bound to no user is refused the same way (checked in the same atomic
        step as the write): the caller may start sessions of ``user_id``, never take over others'. A write
        that would take the tenant past one of ``quotas`` raises ``QuotaExceededError`` and stores nothing (checked
        and counted in the same atomic step on a single Redis).
        """
        ...

    def read(self, session: SessionRef, *, limit: int) -> SessionSnapshot: ...

    def delete(self, session: SessionRef, *, namespace: str) -> None: ...

    def list_sessions(self, tenant: str, *, namespace: str, offset: int, limit: int) -> tuple[list[str], int]: ...

    def list_user_sessions(
        self, user: UserRef, *, namespace: str | None, offset: int, limit: int
    ) -> tuple[list[str], int]:
        """A page of the ids of the sessions bound to the user, least recently written first, and their total."""
        ...

    def user_sessions(
        self, user: UserRef, *, namespace: str | None = None, session_ids: frozenset[str] | None = None, limit: int
    ) -> list[tuple[str, str]]:
        """The ids and generations of the user's ``limit`` most recently written sessions that are bound to it now
        (newest first), narrowed to those listed under ``namespace`` and to ``session_ids`` when given."""
        ...

    def still_bound(self, user: UserRef, sessions: Sequence[tuple[str, str]]) -> set[str]:
        """The ids of these ``(id, generation)`` that are still the user's sessions of that generation."""
        ...

    def session_user(self, session: SessionRef) -> str | None:
        """The user the session is bound to now, if any."""
        ...

    def session_stats(self, session: SessionRef) -> SessionStats | None:
        """The session's counts, times, user, namespaces and unindexed messages, read in one consistent step; None
        for a session that does not exist (never written, or deleted)."""
        ...

    def delete_user(self, user: UserRef) -> tuple[int, bool]:
        """Delete every session bound to the user (as ``delete`` does) and its listing; sessions of other users are
        never touched. Idempotent; how many sessions it deleted, and whether it is done (a user of very many sessions
        takes several calls)."""
        ...

    def release_summary_lease(self, session: SessionRef) -> None:
        """Let the next POST send a summary job again (after a failed send)."""
        ...

    def release_index_lease(self, session: SessionRef, *, only_if_idle: bool) -> bool:
        """Let the next POST send an index job again: after a failed send, or (``only_if_idle``) once an indexer
        finds nothing pending — atomically, so a message posted meanwhile is never left without a job."""
        ...

    def pending(self, session: SessionRef, *, limit: int) -> tuple[str, list[StoredMessage]]:
        """The session's generation token and up to ``limit`` messages awaiting indexing, oldest first."""
        ...

    def ack_indexed(self, session: SessionRef, generation: str, ids: list[int]) -> None:
        """Forget these pending entries, the oldest ones (they are indexed), unless the session was deleted and
        re-created since ``generation`` was read (its new pending entries may reuse the ids)."""
        ...

    def fold_input(self, session: SessionRef, *, window: int, keep: int) -> FoldInput | None:
        """Everything but the newest ``keep`` messages when more than ``window`` are stored; None otherwise."""
        ...

    def commit_fold(self, session: SessionRef, *, start: FoldInput, folded: Folded) -> bool:
        """Atomically remove exactly ``start``'s messages, store the new summary and add the tokens, if the summary
        is still the one ``start`` read; False (and no change at all) otherwise."""
        ...


class UserDirectory(Protocol):
    """Which sessions are a user's (the part of ``MemoryStore`` that user-level retrieval reads)."""

    def user_sessions(
        self, user: UserRef, *, namespace: str | None = None, session_ids: frozenset[str] | None = None, limit: int
    ) -> list[tuple[str, str]]: ...

    def listed_sessions(self, user: UserRef, *, limit: int) -> list[str]:
        """The ids in the user's listing, the ``limit`` most recently written first: a hint, not checked against the
        sessions' bindings (a reader that checks each binding with the session's rows needs no more)."""
        ...

    def still_bound(self, user: UserRef, sessions: Sequence[tuple[str, str]]) -> set[str]: ...


class JobQueue(Protocol):
    """Where background jobs go (SQS FIFO on AWS and in ``make run``): one job per session at a time."""

    def send(self, job: SessionJob) -> None: ...


class ChatModel(Protocol):
    """An LLM that answers one chat completion."""

    def complete(self, *, system: str, user: str, max_tokens: int) -> ChatResult: ...


class TokenCounter(Protocol):
    """Counts tokens the way ``model`` does."""

    @property
    def model(self) -> str: ...

    def count(self, text: str) -> int: ...

    def head(self, text: str, tokens: int) -> str:
        """The longest start of ``text`` of at most ``tokens`` tokens."""
        ...


class SummaryWriter(Protocol):
    """Folds messages into a summary, incrementally."""

    def fold(self, context: str | None, messages: list[StoredMessage]) -> Folded: ...

    def take(self, context: str | None, messages: list[StoredMessage]) -> int:
        """How many of the oldest ``messages`` to fold in one step (one LLM call), so each step can commit."""
        ...
