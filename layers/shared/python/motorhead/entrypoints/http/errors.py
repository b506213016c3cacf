"""The one place that turns an error into an HTTP answer: each domain error class has its status and, for a failure on
our side (a 5xx), the fixed text a client reads. Every error body is ``{"error": "..."}``.

A 4xx answers with the error's own message, written for the client (which limit, which field, why the credential was
refused). A 5xx never does: whatever an adapter put in its message, the client reads the class's fixed text (or
"internal error"), and the message and the ``detail`` go to the log.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from motorhead.entrypoints.http.models import ErrorOut
from motorhead.errors import (
    AuthenticationError,
    AuthUnavailableError,
    ConfigError,
    ConflictError,
    EmbeddingError,
    EmbeddingUnavailableError,
    ForbiddenError,
    InvalidInputError,
    LongTermMemoryDisabledError,
    MotorheadError,
    NotFoundError,
    PayloadTooLargeError,
    QuotaExceededError,
    RateLimitedError,
    SecretUnavailableError,
    StoreUnavailableError,
    SummarizerError,
)
from motorhead.observability import logger

INTERNAL_ERROR = "internal error"


@dataclass(frozen=True, slots=True)
class Outcome:
    """A domain error's HTTP answer: its status, and for a 5xx the fixed text the client reads."""

    status: int
    public: str | None = None


# The nearest class of an error in its MRO decides (StoreDegradedError answers as StoreUnavailableError).
ERROR_TABLE: dict[type[MotorheadError], Outcome] = {
    InvalidInputError: Outcome(400),
    LongTermMemoryDisabledError: Outcome(400),
    AuthenticationError: Outcome(401),
    ForbiddenError: Outcome(403),
    NotFoundError: Outcome(404),
    ConflictError: Outcome(409),
    PayloadTooLargeError: Outcome(413),
    RateLimitedError: Outcome(429),
    QuotaExceededError: Outcome(429),
    EmbeddingError: Outcome(502, "the embedding provider failed"),
    EmbeddingUnavailableError: Outcome(503, "the embedding provider is unavailable"),
    StoreUnavailableError: Outcome(503, "redis unavailable"),
    AuthUnavailableError: Outcome(503, "the identity provider's signing keys could not be fetched"),
    SecretUnavailableError: Outcome(503, "a secret this deployment needs could not be read"),
    SummarizerError: Outcome(500, "the summary model failed"),
    ConfigError: Outcome(500, "the service is misconfigured"),
}

STATUS_OF: dict[type[MotorheadError], int] = {cls: outcome.status for cls, outcome in ERROR_TABLE.items()}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": text}
    for status, text in {
        400: "Malformed JSON or an unacceptable value",
        401: "Missing, malformed, unknown, revoked or expired credential",
        403: "The credential does not allow this route",
        409: "The session is bound to another user",
        413: "Body, message, context or message count over the configured limit",
        429: "The tenant is over its request rate (see Retry-After)",
        422: "Missing field or wrong type",
        500: "An internal error (the detail is in the log, never in the answer)",
        502: "The embedding provider failed",
        503: "Redis, the embedding provider, a secret or the identity provider unavailable (see Retry-After)",
    }.items()
}


def _outcome(exc: MotorheadError) -> Outcome:
    """The outcome of the nearest class of ``exc`` in the table; a 500 for a domain error that has none."""
    for cls in type(exc).__mro__:
        if cls in ERROR_TABLE:
            return ERROR_TABLE[cls]
    return Outcome(500)


def status_for(exc: MotorheadError) -> int:
    """The status of the nearest class of ``exc`` in the table; 500 for a domain error that has none."""
    return _outcome(exc).status


def message_for(exc: MotorheadError) -> str:
    """What the client reads: a 4xx's own message; a 5xx's fixed text, or "internal error" (never its message)."""
    outcome = _outcome(exc)
    if outcome.status < 500:
        return str(exc)
    return outcome.public or INTERNAL_ERROR


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


def domain_error_response(
    exc: MotorheadError, *, challenge: str, origin: Mapping[str, str | None] | None = None
) -> JSONResponse:
    """The answer to a domain error, wherever it was raised (admitting the caller, or in a route), logged once: a
    5xx with its message and detail (never in the answer), a refusal (401, 403, 429) with its reason and ``origin``
    (``key_id``: the API key's id, null for a JWT or a malformed key; ``source_ip``: the source address), never the
    secret, a session id or a namespace."""
    status = status_for(exc)
    if status >= 500:
        logger.error(
            "request failed",
            extra={"status": status, "kind": type(exc).__name__, "error": str(exc), "detail": exc.detail},
        )
    elif status in (401, 403, 429):
        # nested: the Logger drops a top-level None, and "no key id" (none sent, malformed, a JWT) is worth a null
        refusal = {"key_id": None, "source_ip": None, **(origin or {})}
        logger.info(
            "request refused", extra={"status": status, "reason": str(exc), "detail": exc.detail, "origin": refusal}
        )
    return error_response(status, message_for(exc), headers=headers_for(exc, status, challenge=challenge))


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
