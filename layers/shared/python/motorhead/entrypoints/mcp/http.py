"""MCP over streamable HTTP, stateless with JSON responses, behind the REST API's access control.

A request goes through the same middleware as a REST route: metrics, then ``AccessMiddleware`` (credential → caller →
rate; no scope: each tool checks its own), then the body limit, all before the SDK sees a byte, so a caller without a
valid credential gets the REST API's ``401`` JSON with ``WWW-Authenticate``. The admitted caller is what every tool
acts as (``acting_as``).

Stateless means that no MCP session outlives a request, so any Lambda instance can answer any request: each request
gets its own SDK session manager, run for that request alone (Mangum runs no lifespan, and the manager's task group
must live on the request's event loop). The SDK serves the current protocol revision (no ``initialize``, version in
each request) and clients of the previous ones, which initialize. ``GET`` and ``DELETE`` answer 405 (``Allow: POST``),
as the spec lets a server without event streams or sessions. Its Host check (DNS rebinding) accepts only
``MOTORHEAD_MCP_ALLOWED_HOSTS``; its refusals (``421``, ``403``) are JSON ``{"error": ...}``, as every error is.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Any

from mcp.server.auth.routes import build_resource_metadata_url, create_protected_resource_routes
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from pydantic import AnyHttpUrl
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from motorhead.core.auth import AccessControl, Caller
from motorhead.core.auth import Scope as AccessScope
from motorhead.entrypoints.http.app import (
    CALLER,
    REALM,
    AccessMiddleware,
    BodyLimitMiddleware,
    RequestMetricsMiddleware,
    challenge_for,
)
from motorhead.entrypoints.http.errors import error_response
from motorhead.entrypoints.http.lambda_adapter import MOUNT
from motorhead.entrypoints.mcp.tools import acting_as
from motorhead.settings import Settings

PATH = "/mcp"
METHODS = ("POST", "GET", "DELETE")  # POST carries every message; GET and DELETE answer 405
LOOPBACK = frozenset({"127.0.0.1", "localhost", "[::1]"})
METADATA = "/.well-known/oauth-protected-resource"  # RFC 9728 §3.1: the resource's path is appended to it
# The metadata of each resource, by the ASGI path it is asked at: ``/mcp``, and ``/motorhead/mcp`` (n8n's prefix;
# the Lambda adapter strips a leading ``/motorhead``, which the RFC's form does not start with).
METADATA_PATHS = {METADATA + PATH: PATH, METADATA + MOUNT + PATH: MOUNT + PATH}
STATELESS = "this MCP server is stateless: POST each JSON-RPC message; there is no event stream or session to end"


def transport_security(patterns: Sequence[str], host: str | None) -> TransportSecuritySettings:
    """The SDK's Host and Origin checks (DNS rebinding) for a request to ``host``. The SDK matches a host exactly or
    as ``host:*`` (any port); ``MOTORHEAD_MCP_ALLOWED_HOSTS`` may also hold wildcards (``*.execute-api.<region>.
    amazonaws.com``: the API's id is not known before the stack exists). A host that one of them matches is the one
    the SDK allows, with pages served from it; any other host leaves the SDK the patterns alone, and it answers 421."""
    name = (host or "").lower()
    matched = bool(name) and any(fnmatchcase(name, pattern.lower()) for pattern in patterns)
    hosts = [name] if matched else list(patterns)
    origins = [f"{scheme}://{allowed}" for allowed in hosts for scheme in ("https", "http")]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


class StatelessEndpoint:
    """``/mcp``: one SDK session manager per request, run for that request, with the admitted caller."""

    def __init__(self, server: MCPServer[Any], allowed_hosts: Sequence[str]) -> None:
        self.server = server
        self.allowed_hosts = tuple(allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] != PATH:
            await error_response(404, "not found")(scope, receive, send)
            return
        if scope["method"] != "POST":
            # No server-initiated stream (GET) and no session to end (DELETE) without sessions: 405, as the spec says
            # (the SDK would hold a GET open for events that never come, until the function timed out).
            await error_response(405, STATELESS, headers={"Allow": "POST"})(scope, receive, send)
            return
        caller: Caller = scope[CALLER]
        security = transport_security(self.allowed_hosts, Headers(scope=scope).get("host"))
        # The SDK's own checks (Content-Type, Host, Origin), run first so that a refusal is answered as every other
        # error, JSON {"error": ...} with its status (400, 421, 403), not the SDK's plain text.
        refused = await TransportSecurityMiddleware(security).validate_request(Request(scope), is_post=True)
        if refused is not None:
            text = bytes(refused.body).decode("utf-8", errors="replace")
            await error_response(refused.status_code, text)(scope, receive, send)
            return
        app = self.server.streamable_http_app(
            streamable_http_path=PATH, stateless_http=True, json_response=True, transport_security=security
        )
        client = scope.get("client")
        with acting_as(caller, key_id=caller.key_id, source_ip=client[0] if client else None):
            async with app.router.lifespan_context(app):
                await app(scope, receive, send)


class ProtectedResource:
    """RFC 9728 for a JWT deployment: ``GET /.well-known/oauth-protected-resource/mcp`` (public) names the issuer
    that MCP clients get their tokens from, served by the SDK's resource-server routes, and a ``401`` on ``/mcp``
    points to it (``resource_metadata`` in ``WWW-Authenticate``). With API keys there is no authorization server: the
    path answers 404 and the challenge is the REST routes'. Everything else goes through ``AccessMiddleware``."""

    def __init__(self, app: ASGIApp, *, settings: Settings, access: AccessControl) -> None:
        self.app = app
        self.access = access
        self.allowed_hosts = settings.mcp_allowed_host_list()
        self.issuer = settings.jwt_issuer if access.authenticator.method == "jwt" else None
        self.scopes = [f"{settings.jwt_scope_prefix}{scope.value}" for scope in AccessScope]
        self.challenge = challenge_for(access)

    def _resource(self, scope: Scope, path: str) -> str | None:
        """This server's resource URL at ``path`` as the client reached it (``https://<host>/mcp``), for an allowed
        host only."""
        headers = Headers(scope=scope)
        host = (headers.get("host") or "").lower()
        if self.issuer is None or not any(fnmatchcase(host, pattern.lower()) for pattern in self.allowed_hosts):
            return None
        # API Gateway serves HTTPS only; the local gateway, plain HTTP on loopback (its events say https, as AWS's do)
        scheme = "http" if host.rpartition(":")[0] in LOOPBACK or host in LOOPBACK else "https"
        return f"{scheme}://{host}{path}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        metadata_of = METADATA_PATHS.get(scope["path"])
        resource = self._resource(scope, metadata_of or _reached_path(scope))
        if metadata_of is not None:
            if resource is None or self.issuer is None:
                await error_response(404, "not found")(scope, receive, send)
                return
            (route,) = create_protected_resource_routes(
                resource_url=AnyHttpUrl(resource),
                authorization_servers=[AnyHttpUrl(self.issuer)],
                scopes_supported=self.scopes,
                resource_name="Motorhead memory",
            )
            await route.handle(scope, receive, send)
            return
        challenge = self.challenge
        if resource is not None:
            challenge = f'Bearer {REALM}, resource_metadata="{build_resource_metadata_url(AnyHttpUrl(resource))}"'
        admit = AccessMiddleware(self.app, access=self.access, scope=None, challenge=challenge, one_user_callers=True)
        await admit(scope, receive, send)


def _reached_path(scope: Scope) -> str:
    """The MCP endpoint's path as the client called it: ``/motorhead/mcp`` when the event's path was mounted."""
    event = scope.get("aws.event")
    raw = str(event.get("rawPath") or "") if isinstance(event, dict) else ""
    return MOUNT + PATH if raw.startswith(MOUNT + "/") else PATH


def mcp_app(server: MCPServer[Any], *, settings: Settings, access: AccessControl) -> RequestMetricsMiddleware:
    """The MCP function's ASGI app: ``server``'s tools at ``/mcp``, admitted as the REST routes are."""
    app: ASGIApp = StatelessEndpoint(server, settings.mcp_allowed_host_list())
    app = BodyLimitMiddleware(app, max_bytes=settings.max_body_bytes)
    app = ProtectedResource(app, settings=settings, access=access)
    return RequestMetricsMiddleware(app)
