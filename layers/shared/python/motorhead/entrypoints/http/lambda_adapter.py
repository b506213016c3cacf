"""Mangum, told how API Gateway HTTP API events really look, so that a session id is decoded exactly once.

API Gateway decodes the request path once and hands the function that decoded path and the path parameters it
matched. Mangum's own HTTP API handler unquotes that path a second time: ``100%25`` became ``100%`` then nothing,
``%41lice`` became ``Alice``, and an id holding an encoded ``/`` was split in two. Here the ASGI path is rebuilt from
the route API Gateway matched (``routeKey``) with each path parameter percent-encoded once, and the session
dependency reads the parameter itself from ``pathParameters``: decoded once, by API Gateway (or by the local
gateway, which does the same).

The same functions also serve under ``MOUNT`` (``/motorhead``): n8n's Motorhead node prefixes every path with it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, unquote

from mangum import Mangum
from mangum.handlers.api_gateway import HTTPGateway
from mangum.types import ASGI, LambdaConfig, LambdaContext, LambdaEvent, Scope
from starlette.requests import Request

from motorhead.observability import LambdaHandler, lambda_entry

MOUNT = "/motorhead"
_PARAMETER = re.compile(r"\{(\w+)\+?\}")
MALFORMED_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")  # a "%" not followed by two hex digits


def routed_path(event: LambdaEvent) -> str:
    """The path to route on: the matched route's template with each parameter encoded once, without ``MOUNT``."""
    _, _, template = str(event.get("routeKey", "")).partition(" ")
    if not template.startswith("/"):  # $default: no route template, only the (once-decoded) path
        template = str(event.get("requestContext", {}).get("http", {}).get("path") or event.get("rawPath") or "/")
        return _unmounted(quote(template, safe="/"))
    parameters = event.get("pathParameters") or {}
    return _unmounted(_PARAMETER.sub(lambda found: quote(str(parameters.get(found.group(1), "")), safe=""), template))


def _unmounted(path: str) -> str:
    if path == MOUNT or path.startswith(MOUNT + "/"):
        return path[len(MOUNT) :] or "/"
    return path


def path_parameter(request: Request, name: str, routed_value: str) -> str:
    """A path parameter as API Gateway decoded it (``pathParameters``). On a ``$default`` route there are none, and
    the router's value comes from ``routed_path``'s once-encoded path: decoded here, once. Outside Lambda, the
    router's value as the ASGI server decoded it."""
    event: Any = request.scope.get("aws.event")
    if not isinstance(event, dict):
        return routed_value
    parameters = event.get("pathParameters") or {}
    if name in parameters:
        return str(parameters[name])
    return unquote(routed_value)


def requested_path(request: Request) -> str:
    """The path as the client asked for it: API Gateway's ``rawPath``, which keeps the trailing slash a route ignores
    (``/console/`` is routed as ``/console``). Outside Lambda, the ASGI path."""
    event: Any = request.scope.get("aws.event")
    if isinstance(event, dict) and isinstance(event.get("rawPath"), str):
        return str(event["rawPath"])
    return request.url.path


def malformed_escape(event: Any) -> str | None:
    """Which part of the request, ``"path"`` or ``"query"``, holds a ``%`` not followed by two hex digits, if one
    does: such a request is refused (400), never decoded by guessing (``100%`` would be the session ``100%25``).

    ``rawQueryString`` is always as the client sent it. ``rawPath`` is too in the sample events, but API Gateway HTTP
    APIs deliver it decoded once (as ``requestContext.http.path``): then a ``%`` in it is the client's ``%25``, and
    only a ``rawPath`` that differs from the decoded path is read as the client's encoding (the local gateway refuses
    a malformed path itself, before any function runs)."""
    if not isinstance(event, dict):
        return None
    raw_path = event.get("rawPath")
    decoded = event.get("requestContext", {}).get("http", {}).get("path")
    if isinstance(raw_path, str) and raw_path != decoded and MALFORMED_ESCAPE.search(raw_path):
        return "path"
    if MALFORMED_ESCAPE.search(str(event.get("rawQueryString") or "")):
        return "query"
    return None


class HttpApiGateway(HTTPGateway):
    """Mangum's HTTP API handler, with the ASGI path taken from the matched route (see the module's docstring)."""

    @classmethod
    def infer(cls, event: LambdaEvent, context: LambdaContext, config: LambdaConfig) -> bool:
        return event.get("version") == "2.0" and isinstance(event.get("requestContext"), dict)

    @property
    def scope(self) -> Scope:
        scope = super().scope
        path = routed_path(self.event)
        scope["path"] = path
        scope["raw_path"] = path.encode("ascii")
        return scope


def lambda_handler(app: ASGI) -> LambdaHandler:
    """The Lambda handler of one function's app, created once, at import: Mangum with the handler above, each
    invocation logged with its context and request id, its metrics flushed as it returns."""
    return lambda_entry(Mangum(app, lifespan="off", custom_handlers=[HttpApiGateway]), http=True)
