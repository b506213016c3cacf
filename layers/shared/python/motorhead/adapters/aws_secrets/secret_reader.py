"""Secrets from AWS Secrets Manager, through powertools Parameters (cached for POWERTOOLS_PARAMETERS_MAX_AGE
seconds, so a rotated secret is picked up without a cold start). boto3 loads with the first read."""

from __future__ import annotations

import logging
from collections.abc import Callable

from pydantic import SecretStr

from motorhead.errors import SecretUnavailableError

logger = logging.getLogger(__name__)


def secret_value(name: str) -> str:
    """A secret's string. A failure is logged with its cause and raised as ``SecretUnavailableError``, whose message
    names neither the secret nor the cause (it may reach a client as a 503)."""
    from aws_lambda_powertools.utilities import parameters

    try:
        value = parameters.get_secret(name)
    except parameters.exceptions.GetParameterError as exc:
        logger.error("cannot read a secret", extra={"secret": name, "error": f"{type(exc).__name__}: {exc}"[:300]})
        raise SecretUnavailableError("a secret this deployment needs could not be read") from exc
    if isinstance(value, bytes):
        return value.decode("utf-8").strip()
    return str(value).strip()


def key_or_secret(value: SecretStr | None, secret_name: str | None) -> str | Callable[[], str] | None:
    """The key itself, or a getter that reads it from Secrets Manager on each call (cached by powertools)."""
    if value is not None:
        return value.get_secret_value()
    if secret_name:
        return lambda: secret_value(secret_name)
    return None
