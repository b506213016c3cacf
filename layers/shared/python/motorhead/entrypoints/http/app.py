"""The HTTP app factory every function uses: the error contract, the body limit, and the request's session."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import Depends, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from motorhead import __version__
from motorhead.core.values import NO_TENANT, SessionRef
from motorhead.entrypoints.http.errors import ERROR_RESPONSES, error_response, status_for, validation_response
from motorhead.errors import MotorheadError
from motorhead.observability import logger
from motorhead.settings import Settings


def _session(
    session_id: Annotated[str, Path(description="Any string up to 256 UTF-8 bytes; percent-encode it in the URL")],
) -> SessionRef:
    return SessionRef(tenant=NO_TENANT, id=session_id)


def _tenant() -> str:
    return NO_TENANT


Session = Annotated[SessionRef, Depends(_session)]
"""The session a request names: its id from the path, its tenant from the caller."""

Tenant = Annotated[str, Depends(_tenant)]
"""The caller's tenant."""


def create_app(*, title: str, settings: Settings) -> FastAPI:
    """A FastAPI app with the project's error contract; docs are served by the local server, not per function."""
    app = FastAPI(title=title, version=__version__, docs_url=None, redoc_url=None, responses=ERROR_RESPONSES)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)

    @app.exception_handler(MotorheadError)
    async def _domain_error(_: Request, exc: MotorheadError) -> JSONResponse:
        status = status_for(exc)
        if status >= 500:
            logger.error("request failed", extra={"error": str(exc), "kind": type(exc).__name__})
        return error_response(status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error")
        return error_response(500, "internal error")

    return app


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
                await _send_json(send, 413, f"request body is over the limit of {self.max_bytes} bytes")
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


async def _send_json(send: Send, status: int, message: str) -> None:
    payload = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
