"""The small exception hierarchy of the domain. ``motorhead.entrypoints.http.errors`` maps each class to an HTTP
status, in one place."""

from __future__ import annotations


class MotorheadError(Exception):
    """Base of every error the service raises on purpose."""


class ConfigError(MotorheadError):
    """The environment holds a missing or invalid setting (raised at cold start)."""


class InvalidInputError(MotorheadError):
    """The request is well-formed JSON but its values are not acceptable."""


class PayloadTooLargeError(MotorheadError):
    """The body, a message, the context or the session id exceeds a configured limit."""


class StoreUnavailableError(MotorheadError):
    """Redis could not be reached or did not answer in time."""


class SummarizerError(MotorheadError):
    """The summary could not be produced (LLM outage, timeout, malformed answer); the job is retried by SQS."""


class SummaryConflictError(MotorheadError):
    """The summary kept changing under the job; the job is retried by SQS."""


class EmbeddingError(MotorheadError):
    """Texts could not be embedded (provider outage, timeout, malformed answer); an index job is retried by SQS."""


class LongTermMemoryDisabledError(MotorheadError):
    """Retrieval was asked for while MOTORHEAD_LONG_TERM_MEMORY is off."""


class JobIncompleteError(MotorheadError):
    """A background job ran out of rounds or time with work left; SQS delivers it again to go on."""


class AuthenticationError(MotorheadError):
    """The credential is missing, malformed, unknown, revoked or expired, or names no tenant (a 401)."""


class ForbiddenError(MotorheadError):
    """The credential is valid but lacks the scope the route needs (a 403)."""


class RateLimitedError(MotorheadError):
    """The tenant is over its request rate (a 429); ``retry_after`` seconds until a request is allowed."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthUnavailableError(MotorheadError):
    """The identity provider's keys (JWKS) could not be fetched: the credential cannot be checked now (a 503)."""


class SecretUnavailableError(MotorheadError):
    """A secret (a provider key, the Redis password) could not be read from Secrets Manager; the detail is logged,
    never returned (a 503, or a retried job)."""
