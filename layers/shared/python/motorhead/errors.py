"""The small exception hierarchy of the domain. ``motorhead.entrypoints.http.errors`` maps each class to an HTTP
status, in one place.

An error's message (``str(exc)``) may reach a client, so it is written for one: which limit, which field, why the
credential was refused, or for a failure of ours a fixed sentence ("redis unavailable"). What only helps an operator
(an outside system's own text, an exception type, a host, a key or a secret's name) goes in ``detail``: it is logged,
never returned.
"""

from __future__ import annotations


class MotorheadError(Exception):
    """Base of every error the service raises on purpose.

    ``detail`` is the private half of the error, for the log: the HTTP layer logs it and answers with the message
    (for a 5xx, with its table's fixed text). It is also added as a note, so that any log line of the error with its
    traceback (a job's failure, an unexpected error) shows it too; ``str(exc)`` never does.
    """

    def __init__(self, message: str = "", *, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail
        if detail:
            self.add_note(f"detail: {detail}")


class ConfigError(MotorheadError):
    """The environment holds a missing or invalid setting (raised at cold start). Its message is for the operator,
    naming the variable; a request that meets one anyway gets the HTTP table's fixed 500."""


class InvalidInputError(MotorheadError):
    """The request is well-formed JSON but its values are not acceptable."""


class NotFoundError(MotorheadError):
    """The request names something that does not exist: a file of the console (a 404). A session is never "not
    found": one never written, or deleted, or another tenant's, is simply empty."""


class ConflictError(MotorheadError):
    """The request contradicts what is stored: a write naming another user than the one its session is bound to (a
    409); nothing was stored."""


class PayloadTooLargeError(MotorheadError):
    """The body, a message, the context or the session id exceeds a configured limit."""


class StoreUnavailableError(MotorheadError):
    """Redis could not be reached or did not answer in time (a 503, or a retried job)."""


class StoreDegradedError(StoreUnavailableError):
    """Redis answered, but its state refuses the command for now: out of memory, a read-only replica after a
    failover, loading its data, a script running, too few replicas, a cluster down or resharding. A class of its own
    so that code and logs can tell it from an unreachable Redis; a client sees the same 503 and retries the same."""


class SummarizerError(MotorheadError):
    """The summary could not be produced (LLM outage, timeout, malformed answer); the job is retried by SQS."""


class SummaryConflictError(MotorheadError):
    """The summary kept changing under the job; the job is retried by SQS."""


class EmbeddingError(MotorheadError):
    """Texts could not be embedded (the provider refused the call, or answered something unusable: a 502); an index
    job is retried by SQS."""


class EmbeddingUnavailableError(EmbeddingError):
    """The embedding provider timed out, could not be reached, is over its rate limit or failed with a 5xx, after the
    client's own retries: likely to pass, so a 503 with ``Retry-After`` rather than a 502."""


class LongTermMemoryDisabledError(MotorheadError):
    """Retrieval was asked for while MOTORHEAD_LONG_TERM_MEMORY is off."""


class JobIncompleteError(MotorheadError):
    """A background job ran out of rounds or time with work left; SQS delivers it again to go on.

    Not a failure: what the job did before it stopped is committed and kept, in ``outcome`` (the job's own outcome,
    e.g. the batches it indexed), so that the SQS handler can count it as well as the unfinished job."""

    def __init__(self, message: str = "", *, outcome: object = None, detail: str | None = None) -> None:
        super().__init__(message, detail=detail)
        self.outcome = outcome


class AuthenticationError(MotorheadError):
    """The credential is missing, malformed, unknown, revoked or expired, or names no tenant (a 401)."""


class ForbiddenError(MotorheadError):
    """The credential is valid but lacks the scope the route needs (a 403)."""


class RateLimitedError(MotorheadError):
    """The tenant is over its request rate (a 429); ``retry_after`` seconds until a request is allowed."""

    def __init__(self, message: str, *, retry_after: float, detail: str | None = None) -> None:
        super().__init__(message, detail=detail)
        self.retry_after = retry_after


class QuotaExceededError(MotorheadError):
    """The write would take the tenant past one of its quotas (a 429); nothing was stored."""


class AuthUnavailableError(MotorheadError):
    """The identity provider's keys (JWKS) could not be fetched: the credential cannot be checked now (a 503)."""


class SecretUnavailableError(MotorheadError):
    """A secret (a provider key, the Redis password) could not be read from Secrets Manager; the detail is logged,
    never returned (a 503, or a retried job)."""
