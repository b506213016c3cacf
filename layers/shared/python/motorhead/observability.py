"""The one place that knows about powertools' Logger, Metrics and Tracer.

- **Logs**: one powertools ``Logger`` (service "motorhead"). Every other module logs through the standard library,
  ``logging.getLogger(__name__)``: their names start with ``motorhead.``, so their records reach this Logger's handler
  and come out as the same structured JSON lines, extras included. Each invocation is logged with its Lambda context
  and, for HTTP, the API Gateway request id as the correlation id (``lambda_entry``). A session appears only as
  ``session_hash(...)``: session ids are often e-mail addresses.
- **Metrics**: one ``Metrics`` (CloudWatch embedded metric format, namespace ``Motorhead``), flushed at the end of
  every invocation; locally the EMF lines print to the function's output.
- **Traces**: Lambda traces every invocation (``Tracing: Active``). Subsegments around Redis, LLM and embedding calls
  (``subsegment``) need the X-Ray SDK, whose import costs a cold start a few hundred ms; so only the functions that
  already load heavy clients (summarizer, indexer, retrieval) turn it on (``enable_tracing``), and elsewhere a
  subsegment is a no-op.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import wraps
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.logging import Logger, correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from motorhead.core.values import SessionRef, UserRef

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

SERVICE = "motorhead"
NAMESPACE = "Motorhead"

logger = Logger(service=SERVICE)
# Our lines go out through this Logger's handler alone. Powertools keeps them out of the root logger's handlers that
# exist when it starts; a library that configures the root logger later (the MCP SDK does, with logging.basicConfig)
# would print each line a second time.
logging.getLogger(SERVICE).propagate = False
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
# An invocation that emits no metric (a health check, the admin function) is normal here, not worth a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
_tracer: Tracer | None = None

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def session_hash(session: SessionRef) -> str:
    """48 bits of the session's digest: enough to follow one session through the logs, not to read its id."""
    return hashlib.sha256(f"{session.tenant}\x00{session.id}".encode()).hexdigest()[:12]


def user_hash(user: UserRef) -> str:
    """48 bits of the user's digest, as ``session_hash``: never the id (an e-mail address, often)."""
    return hashlib.sha256(f"user\x00{user.tenant}\x00{user.id}".encode()).hexdigest()[:12]


def count(name: str, value: float = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def milliseconds(name: str, value: float) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=value)


def lambda_entry(handler: LambdaHandler, *, http: bool) -> LambdaHandler:
    """``handler`` with the invocation's context in every log line (the API Gateway request id as the correlation
    id for HTTP), and its metrics flushed when it returns."""
    correlation = correlation_paths.API_GATEWAY_HTTP if http else None

    @wraps(handler)
    # log_event=False whatever POWERTOOLS_LOGGER_LOG_EVENT says: an event carries the caller's credentials
    @logger.inject_lambda_context(correlation_id_path=correlation, clear_state=True, log_event=False)
    @metrics.log_metrics
    def entry(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return handler(event, context)

    return entry


def enable_tracing(environment: Mapping[str, str] = os.environ) -> bool:
    """Turn on subsegments in this process, when it runs on Lambda with active tracing (Lambda then sets
    ``AWS_XRAY_DAEMON_ADDRESS``): the X-Ray SDK loads here, once. Elsewhere (tests, ``make run``) nothing loads."""
    global _tracer
    if _tracer is None and environment.get("AWS_XRAY_DAEMON_ADDRESS"):
        from aws_lambda_powertools import Tracer

        _tracer = Tracer(service=SERVICE)
    return _tracer is not None


@contextmanager
def subsegment(name: str) -> Iterator[None]:
    """A traced subsegment ``## name`` when tracing is on in this process and active; otherwise nothing."""
    tracer = _tracer
    if tracer is None or tracer._config.get("disabled"):  # powertools disables itself outside Lambda
        yield
        return
    with tracer.provider.in_subsegment(f"## {name}"):
        yield
