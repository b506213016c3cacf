"""`make -s mcp`: the memory's MCP tools over stdio, for desktop clients (Claude Desktop, Cursor).

The same server as the MCP function (``motorhead.entrypoints.mcp``), in-process, against ``REDIS_URL`` or, when it is
unset, the embedded Redis of ``make run`` (the running one, or its data folder started for as long as this runs). It
acts as the tenant of the API key in ``MOTORHEAD_API_KEY``, checked against the same key store, with that key's
scopes: once at start (a wrong key is a one-line reason on stderr and exit status 2), then again on every call, as
an HTTP request is, so a key revoked while this runs stops working as it does over HTTP. With ``MOTORHEAD_AUTH=none``
(the default here, as for ``make run``) it acts as the tenant-less caller. Nothing but MCP goes to stdout: every log
line goes to stderr.

With no queues (no ``MOTORHEAD_SUMMARY_QUEUE_URL`` / ``MOTORHEAD_INDEX_QUEUE_URL``), the jobs a write asks for run in
this process right after it, with the same services the summarizer and the indexer run: what ``add_memory`` saves
is summarized, and indexed when ``MOTORHEAD_LONG_TERM_MEMORY=true``, so ``search_memory`` finds it.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any, Protocol

from devserver.keys import admin_redis

API_KEY = "MOTORHEAD_API_KEY"
log = logging.getLogger("devserver.mcp")


class _Job(Protocol):
    def run(self, job: Any, *, time_left: Any = None) -> Any: ...


class InlineJobs:
    """A job queue that runs each job at once, in this process (a job that fails is logged; the next write asks
    again, as after a failed send)."""

    def __init__(self, service: _Job, kind: str) -> None:
        self._service = service
        self._kind = kind

    def send(self, job: Any) -> None:
        try:
            self._service.run(job)
        except Exception as exc:  # noqa: BLE001 - as a job that SQS would redeliver: logged, never the tool's error
            log.warning("%s job failed: %s", self._kind, exc)


def _logs_to_stderr() -> None:
    """The powertools Logger writes to stdout (Lambda's log stream): here stdout is the protocol's."""
    from motorhead.observability import logger

    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)


def main() -> int:
    os.environ.setdefault("MOTORHEAD_AUTH", "none")  # a laptop's default, as `make run`'s
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # EMF lines are for CloudWatch, not for a terminal
    data_dir = Path(os.environ.get("MOTORHEAD_DATA_DIR", ".data")).resolve() / "redis"
    with admin_redis(data_dir) as url:
        os.environ["REDIS_URL"] = url
        _logs_to_stderr()

        from motorhead.composition.access import access_control
        from motorhead.composition.long_term import retrieval_service
        from motorhead.core.auth import Credential
        from motorhead.entrypoints.mcp.tools import acting_as, memory_server
        from motorhead.errors import MotorheadError
        from motorhead.settings import get_settings

        settings = get_settings()
        key = os.environ.get(API_KEY, "").strip()
        access = access_control()
        credential = Credential(kind="bearer", secret=key) if key else None

        def admit() -> Any:
            return access.admit(credential, None)

        try:
            caller = admit()
        except MotorheadError as exc:
            print(f"motorhead: {API_KEY}: {exc}", file=sys.stderr)
            return 2
        server = memory_server(memory=local_memory(settings), retrieval=retrieval_service(), settings=settings)
        print(f"motorhead: MCP over stdio as tenant {caller.tenant or '(none)'}", file=sys.stderr)
        with acting_as(admit, key_id=caller.key_id):
            server.run("stdio")
    return 0


def local_memory(settings: Any) -> Any:
    """The memory service of the MCP function, with the jobs it asks for run in this process when there are no
    queues."""
    from motorhead.composition.long_term import indexer_service
    from motorhead.composition.memory import memory_limits, memory_quotas, memory_service, redis_store, shared_connector
    from motorhead.composition.summarization import summarizer_service
    from motorhead.core.memory import MemoryService

    if settings.summary_queue_url or settings.index_queue_url:
        return memory_service()
    return MemoryService(
        store=redis_store(settings, shared_connector()),
        limits=memory_limits(settings),
        quotas=memory_quotas(settings),
        summary_jobs=InlineJobs(summarizer_service(), "summary"),
        index_jobs=InlineJobs(indexer_service(), "index") if settings.long_term_memory else None,
    )


if __name__ == "__main__":
    sys.exit(main())
