"""HTTP glue shared by every function: the app factory, the body limit and the one error-to-status mapping."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

from aws_lambda_powertools.logging import Logger
from fastapi import FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from motorhead import __version__
from motorhead.errors import (
    ConfigError,
    EmbeddingError,
    InvalidInputError,
    LongTermMemoryDisabledError,
    MotorheadError,
    PayloadTooLargeError,
    StoreUnavailableError,
)
from motorhead.models import ErrorOut
from motorhead.settings import Settings

logger = Logger(service="motorhead")

STATUS_OF: dict[type[MotorheadError], int] = {
    InvalidInputError: 400,
    LongTermMemoryDisabledError: 400,
    EmbeddingError: 502,
    PayloadTooLargeError: 413,
    StoreUnavailableError: 503,
    ConfigError: 500,
}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": text}
    for status, text in {
        400: "Malformed JSON or an unacceptable value",
        413: "Body, message, context or message count over the configured limit",
        502: "The embedding provider failed",
        422: "Missing field or wrong type",
        503: "Redis unavailable",
    }.items()
}

SessionId = Annotated[str, Path(description="Any string up to 256 UTF-8 bytes; percent-encode it in the URL")]


def status_for(exc: MotorheadError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return 500


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(ErrorOut(error=message).model_dump(), status_code=status, headers=headers)


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
        return _validation_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error")
        return error_response(500, "internal error")

    return app


def _validation_response(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    for err in errors:
        if err.get("type") == "json_invalid":
            return error_response(400, f"malformed JSON: {err.get('ctx', {}).get('error', 'invalid')}")
        if tuple(err.get("loc", ())) == ("body",) and err.get("type") in {"model_attributes_type", "dict_type"}:
            return error_response(400, "the request body must be a JSON object")
    details = "; ".join(f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg')}" for err in errors)
    return error_response(422, details or "invalid request")


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
