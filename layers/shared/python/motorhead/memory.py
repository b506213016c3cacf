"""The memory service: Motorhead's session semantics on top of a ``MemoryStore``."""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools.logging import Logger

from motorhead.clock import now_ms
from motorhead.errors import InvalidInputError, PayloadTooLargeError
from motorhead.keys import DEFAULT_NAMESPACE
from motorhead.models import MemoryIn, MemoryOut, MessageOut, SessionPage, StatusOut
from motorhead.ports import JobQueue, MemoryStore, SessionJob
from motorhead.settings import Settings

MAX_NAMESPACE_BYTES = 256

logger = Logger(service="motorhead")


class MemoryService:
    def __init__(
        self,
        *,
        store: MemoryStore,
        settings: Settings,
        jobs: JobQueue | None = None,
        index_jobs: JobQueue | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self._store = store
        self._settings = settings
        self._jobs = jobs
        self._index_jobs = index_jobs if settings.long_term_memory else None
        self._clock = clock

    def get_memory(self, session_id: str) -> MemoryOut:
        """The newest ``MOTORHEAD_MAX_WINDOW_SIZE`` messages, newest first; an unknown session is simply empty."""
        self._check_session_id(session_id)
        snapshot = self._store.read(session_id, limit=self._settings.max_window_size)
        return MemoryOut(
            messages=[
                MessageOut(role=m.role, content=m.content, id=m.id, created_at=m.created_at) for m in snapshot.messages
            ],
            context=snapshot.context,
            tokens=snapshot.tokens,
        )

    def add_memory(self, session_id: str, body: MemoryIn, *, namespace: str | None = None) -> StatusOut:
        """Append every message (or none) and replace the summary when ``context`` is given."""
        self._check_session_id(session_id)
        limits = self._settings
        if len(body.messages) > limits.max_messages_per_request:
            raise PayloadTooLargeError(
                f"{len(body.messages)} messages in one request; the limit is {limits.max_messages_per_request}"
            )
        for index, message in enumerate(body.messages):
            size = len(message.content.encode("utf-8"))
            if size > limits.max_message_bytes:
                raise PayloadTooLargeError(
                    f"messages[{index}].content is {size} bytes; the limit is {limits.max_message_bytes}"
                )
        if body.context is not None and len(body.context.encode("utf-8")) > limits.max_context_bytes:
            raise PayloadTooLargeError(f"context is over the limit of {limits.max_context_bytes} bytes")
        result = self._store.append(
            session_id,
            [(m.role, m.content) for m in body.messages],
            context=body.context,
            namespace=self._namespace(namespace),
            now_ms=self._clock(),
            summarize_above=limits.max_window_size if self._jobs is not None else None,
            index=self._index_jobs is not None,
        )
        job = SessionJob(session_id=session_id, last_id=result.last_id, generation=result.generation)
        if result.summary_due and self._jobs is not None and not self._send(self._jobs, job, "summary"):
            self._store.release_summary_lease(session_id)
        if result.index_due and self._index_jobs is not None and not self._send(self._index_jobs, job, "index"):
            self._store.release_index_lease(session_id, only_if_idle=False)
        return StatusOut()

    @staticmethod
    def _send(jobs: JobQueue, job: SessionJob, kind: str) -> bool:
        """Send the job; if that fails the messages are still stored (and, for indexing, still pending): the lease
        is released and the next POST asks again."""
        try:
            jobs.send(job)
        except Exception:
            logger.exception("could not queue a job; the next POST will retry", extra={"kind": kind})
            return False
        return True

    def delete_memory(self, session_id: str, *, namespace: str | None = None) -> StatusOut:
        """Forget the session: messages, summary, counters and its place in every session list."""
        self._check_session_id(session_id)
        self._store.delete(session_id, namespace=self._namespace(namespace))
        return StatusOut()

    def list_sessions(self, *, page: int, size: int, namespace: str | None = None) -> SessionPage:
        """Session ids, least recently written first, ``size`` per page, pages counted from 1."""
        ids, total = self._store.list_sessions(
            namespace=self._namespace(namespace), offset=(page - 1) * size, limit=size
        )
        return SessionPage(session_ids=ids, total=total, next_page=page + 1 if page * size < total else None)

    def _check_session_id(self, session_id: str) -> None:
        size = len(session_id.encode("utf-8"))
        if not session_id:
            raise InvalidInputError("session id must not be empty")
        if size > self._settings.max_session_id_bytes:
            raise InvalidInputError(f"session id is {size} bytes; the limit is {self._settings.max_session_id_bytes}")

    @staticmethod
    def _namespace(namespace: str | None) -> str:
        if namespace is None:
            return DEFAULT_NAMESPACE
        if len(namespace.encode("utf-8")) > MAX_NAMESPACE_BYTES:
            raise InvalidInputError(f"namespace is over {MAX_NAMESPACE_BYTES} bytes")
        return namespace
