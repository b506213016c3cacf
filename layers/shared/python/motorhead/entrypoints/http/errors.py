"""The one place that turns an error into an HTTP answer: each domain error class has its status, and every error
body is ``{"error": "..."}``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from motorhead.entrypoints.http.models import ErrorOut
from motorhead.errors import (
    AuthenticationError,
    AuthUnavailableError,
    ConfigError,
    EmbeddingError,
    ForbiddenError,
    InvalidInputError,
    LongTermMemoryDisabledError,
    MotorheadError,
    PayloadTooLargeError,
    RateLimitedError,
    SecretUnavailableError,
    StoreUnavailableError,
)

STATUS_OF: dict[type[MotorheadError], int] = {
    InvalidInputError: 400,
    LongTermMemoryDisabledError: 400,
    AuthenticationError: 401,
    ForbiddenError: 403,
    PayloadTooLargeError: 413,
    RateLimitedError: 429,
    EmbeddingError: 502,
    StoreUnavailableError: 503,
    AuthUnavailableError: 503,
    SecretUnavailableError: 503,
    ConfigError: 500,
}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": text}
    for status, text in {
        400: "Malformed JSON or an unacceptable value",
        401: "Missing, malformed, unknown, revoked or expired credential",
        403: "The credential does not allow this route",
        413: "Body, message, context or message count over the configured limit",
        429: "The tenant is over its request rate (see Retry-After)",
        422: "Missing field or wrong type",
        502: "The embedding provider failed",
        503: "Redis unavailable",
    }.items()
}


def status_for(exc: MotorheadError) -> int:
    """The status of the nearest class of ``exc`` in the table; 500 for a domain error that has none."""
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return 500


def headers_for(exc: MotorheadError, status: int, *, challenge: str) -> dict[str, str]:
    """``WWW-Authenticate`` on a 401, ``Retry-After`` on a 429 and on a 503."""
    if isinstance(exc, AuthenticationError):
        return {"WWW-Authenticate": challenge}
    if isinstance(exc, RateLimitedError):
        return {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
    if status == 503:
        return {"Retry-After": "1"}
    return {}


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(ErrorOut(error=message).model_dump(), status_code=status, headers=headers)


def validation_response(exc: RequestValidationError) -> JSONResponse:
    """400 for a body that is not JSON or not an object; 422 naming each missing or wrong field."""
    errors = exc.errors()
    for err in errors:
        if err.get("type") == "json_invalid":
            return error_response(400, f"malformed JSON: {err.get('ctx', {}).get('error', 'invalid')}")
        if tuple(err.get("loc", ())) == ("body",) and err.get("type") in {"model_attributes_type", "dict_type"}:
            return error_response(400, "the request body must be a JSON object")
    details = "; ".join(f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg')}" for err in errors)
    return error_response(422, details or "invalid request")
