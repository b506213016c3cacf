"""The memory service: Motorhead's session semantics on top of a ``MemoryStore``, and the jobs a POST asks for."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from motorhead.core.clock import now_ms
from motorhead.core.ports import NO_QUOTAS, JobQueue, MemoryStore
from motorhead.core.values import (
    DEFAULT_NAMESPACE,
    NO_STATS,
    MemoryLimits,
    NewMessage,
    Quotas,
    SessionJob,
    SessionPage,
    SessionRef,
    SessionSnapshot,
    SessionStatus,
    UserRef,
)
from motorhead.errors import InvalidInputError, PayloadTooLargeError

logger = logging.getLogger(__name__)


class MemoryService:
    def __init__(
        self,
        *,
        store: MemoryStore,
        limits: MemoryLimits,
        summary_jobs: JobQueue | None = None,
        index_jobs: JobQueue | None = None,
        quotas: Quotas = NO_QUOTAS,
        clock: Callable[[], int] = now_ms,
        long_term_memory: bool | None = None,
    ) -> None:
        """``long_term_memory``: whether the deployment indexes messages (a function that sends no index job, as
        GET /sessions/{id}, still says so); by default, whether this service has ``index_jobs``."""
        self._store = store
        self._limits = limits
        self._quotas = quotas
        self._summary_jobs = summary_jobs
        self._index_jobs = index_jobs
        self._long_term_memory = index_jobs is not None if long_term_memory is None else long_term_memory
        self._clock = clock

    def get_memory(self, session: SessionRef) -> SessionSnapshot:
        """The newest ``window`` messages, newest first; an unknown session is simply empty."""
        self._check_session_id(session)
        return self._store.read(session, limit=self._limits.window)

    def session_status(self, session: SessionRef) -> SessionStatus:
        """The session's stats (counts, times, user, namespaces) and whether a summary or an index job still has work
        on it; a session that does not exist is empty (``exists`` False), as GET memory answers it."""
        self._check_session_id(session)
        found = self._store.session_stats(session)
        stats = found or NO_STATS
        return SessionStatus(
            stats=stats,
            exists=found is not None,
            summary_pending=self._summary_jobs is not None and stats.messages > self._limits.window,
            index_pending=stats.unindexed > 0,
            long_term_memory=self._long_term_memory,
        )

    def add_memory(
        self,
        session: SessionRef,
        messages: Sequence[NewMessage],
        *,
        context: str | None = None,
        namespace: str | None = None,
        user_id: str | None = None,
        adopt: bool = True,
    ) -> None:
        """Append every message (or none) and replace the summary when ``context`` is given; then ask for the
        summary and index jobs that are due. With ``user_id``, the session is bound to that user of the caller's
        tenant on this write if it is bound to none; bound to another user, the write is refused (``ConflictError``)
        and nothing is stored. ``adopt=False`` (a caller that acts as one user only) refuses, too, a session that
        exists bound to no user: such a caller may start sessions of its user, never take over others'."""
        self._check_session_id(session)
        if user_id is not None:
            check_user_id(user_id, self._limits.max_session_id_bytes)
        self._check_size(messages, context)
        result = self._store.append(
            session,
            messages,
            context=context,
            namespace=self._namespace(namespace),
            now_ms=self._clock(),
            summarize_above=self._limits.window if self._summary_jobs is not None else None,
            index=self._index_jobs is not None,
            user_id=user_id,
            adopt=adopt,
            quotas=self._quotas,
        )
        job = SessionJob(session=session, last_id=result.last_id, generation=result.generation)
        if result.summary_due and self._summary_jobs is not None and not _send(self._summary_jobs, job, "summary"):
            self._store.release_summary_lease(session)
        if result.index_due and self._index_jobs is not None and not _send(self._index_jobs, job, "index"):
            self._store.release_index_lease(session, only_if_idle=False)

    def delete_memory(self, session: SessionRef, *, namespace: str | None = None) -> None:
        """Forget the session: messages, summary, counters, long-term data and its place in every session list."""
        self._check_session_id(session)
        self._store.delete(session, namespace=self._namespace(namespace))

    def list_sessions(
        self, tenant: str, *, page: int, size: int, namespace: str | None = None, user_id: str | None = None
    ) -> SessionPage:
        """The tenant's session ids (with ``user_id``, those bound to that user), least recently written first,
        ``size`` per page, pages counted from 1."""
        offset = (page - 1) * size
        if user_id is None:
            ids, total = self._store.list_sessions(
                tenant, namespace=self._namespace(namespace), offset=offset, limit=size
            )
        else:
            user = self.user(tenant, user_id)
            chosen = None if namespace is None else self._namespace(namespace)
            ids, total = self._store.list_user_sessions(user, namespace=chosen, offset=offset, limit=size)
        return SessionPage(session_ids=ids, total=total, next_page=page + 1 if page * size < total else None)

    def delete_user(self, user: UserRef) -> tuple[int, bool]:
        """Forget the user: every session bound to it (messages, summaries, long-term data, listings), and nothing of
        any other user. Idempotent; how many sessions were deleted, and whether none is left (else call again)."""
        check_user_id(user.id, self._limits.max_session_id_bytes)
        return self._store.delete_user(user)

    def user(self, tenant: str, user_id: str) -> UserRef:
        """The user ``user_id`` of ``tenant``, its id checked."""
        check_user_id(user_id, self._limits.max_session_id_bytes)
        return UserRef(tenant=tenant, id=user_id)

    def is_users(self, user: UserRef, session: SessionRef) -> bool:
        """Whether the session is bound to the user now (a session of no user, or of another, is not)."""
        self._check_session_id(session)
        return session.tenant == user.tenant and self._store.session_user(session) == user.id

    def _check_size(self, messages: Sequence[NewMessage], context: str | None) -> None:
        limits = self._limits
        if len(messages) > limits.max_messages_per_request:
            raise PayloadTooLargeError(
                f"{len(messages)} messages in one request; the limit is {limits.max_messages_per_request}"
            )
        for index, message in enumerate(messages):
            size = len(message.content.encode("utf-8"))
            if size > limits.max_message_bytes:
                raise PayloadTooLargeError(
                    f"messages[{index}].content is {size} bytes; the limit is {limits.max_message_bytes}"
                )
        if context is not None and len(context.encode("utf-8")) > limits.max_context_bytes:
            raise PayloadTooLargeError(f"context is over the limit of {limits.max_context_bytes} bytes")

    def _check_session_id(self, session: SessionRef) -> None:
        check_session_id(session.id, self._limits.max_session_id_bytes)

    def _namespace(self, namespace: str | None) -> str:
        if namespace is None:
            return DEFAULT_NAMESPACE
        if len(namespace.encode("utf-8")) > self._limits.max_namespace_bytes:
            raise InvalidInputError(f"namespace is over {self._limits.max_namespace_bytes} bytes")
        return namespace


def _send(jobs: JobQueue, job: SessionJob, kind: str) -> bool:
    """Send the job; if that fails the messages are still stored (and, for indexing, still pending): the caller
    releases the lease and the next POST asks again."""
    try:
        jobs.send(job)
    except Exception:
        logger.exception("could not queue a job; the next POST will retry", extra={"kind": kind})
        return False
    return True


def check_session_id(session_id: str, max_bytes: int) -> None:
    """A session id is 1 to ``max_bytes`` UTF-8 bytes: checked where a request names one (every route with a session,
    retrieval included) and again by the service."""
    _check_id("session id", session_id, max_bytes)


def check_user_id(user_id: str, max_bytes: int) -> None:
    """A user id follows the rules of a session id: 1 to ``max_bytes`` UTF-8 bytes."""
    _check_id("user id", user_id, max_bytes)


def _check_id(kind: str, value: str, max_bytes: int) -> None:
    if not value:
        raise InvalidInputError(f"{kind} must not be empty")
    size = len(value.encode("utf-8"))
    if size > max_bytes:
        raise InvalidInputError(f"{kind} is {size} bytes; the limit is {max_bytes}")
