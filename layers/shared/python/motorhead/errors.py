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
