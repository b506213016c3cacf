"""The HTTP app factory every function uses: the error contract, the body limit, and who the caller is.

Access is one mechanism for every route: ``create_app(access=..., scope=...)`` makes every request of the app go
through ``AccessControl.admit`` (credential → caller → scope → rate) before its handler runs, and the ``Session`` a
handler receives is always the pair (the caller's tenant, the id in the path), the id as API Gateway decoded it. A
handler cannot reach a session any other way. ``GET /`` is the only app built without ``access``: it is public.
"""

from __future__ import annotations

import time
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from motorhead import __version__
from motorhead.core.auth import AccessControl, Caller, Credential, PendingCharge
from motorhead.core.auth import Scope as AccessScope
from motorhead.core.memory import check_session_id, check_user_id
from motorhead.core.values import SessionRef, UserRef
from motorhead.entrypoints.http.credentials import credential_from, presented_key_id
from motorhead.entrypoints.http.errors import (
    ERROR_RESPONSES,
    INTERNAL_ERROR,
    domain_error_response,
    error_response,
    validation_response,
)
from motorhead.entrypoints.http.lambda_adapter import malformed_escape, path_parameter
from motorhead.errors import ConfigError, ForbiddenError, InvalidInputError, MotorheadError
from motorhead.observability import count, logger, metrics, milliseconds, session_hash, user_hash
from motorhead.settings import Settings

REALM = 'realm="motorhead"'
CALLER = "motorhead.caller"  # where AccessMiddleware leaves the admitted caller in the ASGI scope


def _caller(request: Request) -> Caller:
    """The request's caller, as ``AccessMiddleware`` admitted it before anything else ran."""
    caller: Caller | None = request.scope.get(CALLER)
    if caller is None:
        raise ConfigError("this route has no access control")  # a public app has no session, no tenant
    return caller


def _session(
    request: Request,
    caller: Annotated[Caller, Depends(_caller)],
    session_id: Annotated[str, Path(description="Any string up to 256 UTF-8 bytes; percent-encode it in the URL")],
) -> SessionRef:
    session = SessionRef(tenant=caller.tenant, id=path_parameter(request, "session_id", session_id))
    check_session_id(session.id, request.app.state.max_session_id_bytes)  # before any route spends a thing on it
    logger.append_keys(session=session_hash(session))  # never the id itself: ids are often e-mail addresses
    return session


def _user(
    request: Request,
    caller: Annotated[Caller, Depends(_caller)],
    user_id: Annotated[str, Path(description="Any string up to 256 UTF-8 bytes; percent-encode it in the URL")],
) -> UserRef:
    user = UserRef(tenant=caller.tenant, id=path_parameter(request, "user_id", user_id))
    check_user_id(user.id, request.app.state.max_session_id_bytes)  # the rules of a session id
    logger.append_keys(user=user_hash(user))  # never the id itself
    return user


def _user_id_query(
    request: Request,
    user_id: Annotated[str | None, Query(description="A user id, as a session id: up to 256 UTF-8 bytes")] = None,
) -> str | None:
    """The ``user_id`` of the query, refused (400) unless the whole query is percent-encoded UTF-8: the query parser
    would turn ``%FF`` into U+FFFD, and ``%FF``, ``%FE`` and U+FFFD would be one user (a malformed escape, ``%zz``,
    never gets this far: ``EscapeMiddleware``)."""
    if user_id is None:
        return None
    try:
        parse_qsl(bytes(request.scope.get("query_string", b"")).decode("utf-8"), errors="strict")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(NOT_PERCENT_ENCODED["query"]) from exc
    return user_id


def _tenant(caller: Annotated[Caller, Depends(_caller)]) -> str:
    return caller.tenant


CurrentCaller = Annotated[Caller, Depends(_caller)]
"""The authenticated caller."""

Session = Annotated[SessionRef, Depends(_session)]
"""The session a request names: its id from the path, its tenant from the caller."""

User = Annotated[UserRef, Depends(_user)]
"""The user a request names: its id from the path, its tenant from the caller."""

Tenant = Annotated[str, Depends(_tenant)]
"""The caller's tenant."""

UserIdQuery = Annotated[str | None, Depends(_user_id_query)]
"""The ``user_id`` a request's query names, if any (checked by the service as a session id is)."""


def create_app(
    *,
    title: str,
    settings: Settings,
    access: AccessControl | None = None,
    scope: AccessScope | None = None,
    reaches_store: bool = True,
) -> FastAPI:
    """A FastAPI app with the project's error contract. With ``access``, every request is admitted first (``scope``:
    what the route needs; None: any valid credential); without, the app is public. ``reaches_store``: the route's
    handler calls the store, so the rate's token rides on its first call (else it is taken at admission, in a round
    trip of its own, and a tenant over its rate is answered 429 there). Docs are served by the local server, not per
    function."""
    app = FastAPI(
        title=title,
        version=__version__,
        docs_url=None,
        redoc_url=None,
        responses=ERROR_RESPONSES,
    )
    app.state.access = access
    app.state.max_session_id_bytes = settings.max_session_id_bytes
    challenge = challenge_for(access)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if access is not None:  # outside the body limit: a caller without a valid credential gets 401, never a 400/413
        app.add_middleware(AccessMiddleware, access=access, scope=scope, challenge=challenge, defer_rate=reaches_store)
    app.add_middleware(EscapeMiddleware)  # outside access control, as the gateway refuses such a request first
    app.add_middleware(RequestMetricsMiddleware)

    @app.exception_handler(MotorheadError)
    async def _domain_error(request: Request, exc: MotorheadError) -> JSONResponse:
        caller: Caller | None = request.scope.get(CALLER)
        return domain_error_response(
            exc, challenge=challenge, origin=origin(request.scope, caller.key_id if caller else None)
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Starlette's own 404/405 texts are for the client; a 5xx raised this way says nothing of its cause either
        if exc.status_code >= 500:
            logger.error("request failed", extra={"status": exc.status_code, "error": str(exc.detail)})
            return error_response(exc.status_code, INTERNAL_ERROR, headers=exc.headers)
        return error_response(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # e.g. a Redis reply error that is a bug of ours (a wrong type, a Lua error): its text and trace to the log
        logger.exception("unexpected error", extra={"kind": type(exc).__name__})
        return error_response(500, INTERNAL_ERROR)

    return app


def challenge_for(access: AccessControl | None) -> str:
    """What a 401 asks for: a bearer token, or (API keys) a key as bearer or as the password of Basic."""
    if access is not None and access.authenticator.method == "jwt":
        return f"Bearer {REALM}"
    return f"Bearer {REALM}, Basic {REALM}"


REFUSALS = {401: "AuthFailures", 403: "Forbidden", 429: "RateLimited"}
# What the local gateway answers too (devserver/server.py), before any function runs
NOT_PERCENT_ENCODED = {
    "path": "the path is not percent-encoded UTF-8",
    "query": "the query string is not percent-encoded UTF-8",
}
ONE_USER_ON_REST = "this credential acts as one user: use the MCP endpoint (/mcp), whose tools keep it to that user"


class AccessMiddleware:
    """Admits every request before its body is read or parsed: credential → caller → scope → rate. A refusal is
    answered here (401, 403 or 429 JSON); an admitted caller waits in the ASGI scope for the ``Session`` and
    ``Tenant`` dependencies."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        access: AccessControl,
        scope: AccessScope | None,
        challenge: str,
        one_user_callers: bool = False,
        defer_rate: bool = False,
    ) -> None:
        """``one_user_callers``: whether a credential that acts as one user (a JWT with the configured user claim) is
        admitted. Only the MCP endpoint admits one, since only its tools keep such a caller to that user's sessions;
        the REST routes answer it 403."""
        self.app = app
        self.access = access
        self.scope = scope
        self.challenge = challenge
        self.one_user_callers = one_user_callers
        # the rate's token owed to the route's first store call (a REST route's handler runs in this request's
        # context, so its store calls see what is owed); the MCP endpoint's tools run elsewhere and pay at admission
        self.defer_rate = defer_rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        credential: Credential | None = None
        owed: PendingCharge | None = None
        try:
            credential = credential_from(Headers(scope=scope))
            if self.defer_rate:
                caller, owed = self.access.admit_deferring(credential, self.scope)
            else:
                caller = self.access.admit(credential, self.scope)
            if caller.user is not None and not self.one_user_callers:
                raise ForbiddenError(ONE_USER_ON_REST)
            scope[CALLER] = caller
        except MotorheadError as exc:  # refused (401, 403, 429), or the credential could not be checked (503)
            if owed is not None:
                _settle(owed)
            key_id = presented_key_id(credential) if self.access.authenticator.method == "api-key" else None
            refused = domain_error_response(exc, challenge=self.challenge, origin=origin(scope, key_id))
            await refused(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            if owed is not None:
                _settle(owed)


def _settle(owed: PendingCharge) -> None:
    """Pay a request's token if its store calls did not; the request is answered, so a failure only goes to the log."""
    try:
        owed.settle()
    except MotorheadError as exc:
        logger.info("rate charge not settled", extra={"kind": type(exc).__name__})


def origin(scope: Scope, key_id: str | None) -> dict[str, str | None]:
    """Who a refusal came from, for its log line: the API key's id (never the key) and the source address (API
    Gateway's ``requestContext.http.sourceIp``, which Mangum hands the app as the client)."""
    client = scope.get("client")
    return {"key_id": key_id, "source_ip": str(client[0]) if client else None}


class EscapeMiddleware:
    """Refuses (400) a request whose path or query holds a ``%`` not followed by two hex digits, before anything
    reads it (``lambda_adapter.malformed_escape``): ``100%`` must not quietly be the session ``100%25``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        part = malformed_escape(scope.get("aws.event")) if scope["type"] == "http" else None
        if part is not None:
            refused = domain_error_response(InvalidInputError(NOT_PERCENT_ENCODED[part]), challenge="")
            await refused(scope, receive, send)
            return
        await self.app(scope, receive, send)


class RequestMetricsMiddleware:
    """``Requests`` and ``Latency`` (ms) of every request, by route and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            metrics.add_dimension("route", f"{scope.get('method', '')} {path}")
            metrics.add_dimension("status", str(status))
            count("Requests")
            milliseconds("Latency", (time.perf_counter() - started) * 1000)
            if status in REFUSALS:
                count(REFUSALS[status])


class BodyLimitMiddleware:
    """Refuses a body over ``max_bytes`` with 413 before any parsing, whatever Content-Length claims."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                too_big = error_response(413, f"request body is over the limit of {self.max_bytes} bytes")
                await too_big(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
