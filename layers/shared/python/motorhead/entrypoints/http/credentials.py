"""Where a request carries its credential. Every client Motorhead has must work unchanged:

- ``Authorization: Bearer <key or JWT>`` (curl, LangChain JS with a header, any HTTP client);
- ``Authorization: Basic base64(<any user>:<key>)``: what Python's ``requests`` sends for a URL with user info,
  ``https://anyone:<key>@host``, so LangChain Python's ``MotorheadMemory`` works with nothing but its ``url``;
- ``x-api-key: <key>``;
- ``x-metal-api-key: <key>`` (with or without ``x-metal-client-id``): what Metal's SDKs and n8n send.

An ``Authorization`` header comes first; a malformed one is an error, never a reason to look further.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from motorhead.core.api_keys import key_id_of
from motorhead.core.auth import Credential
from motorhead.errors import AuthenticationError

MAX_CREDENTIAL_CHARS = 8_192


def credential_from(headers: Mapping[str, str]) -> Credential | None:
    """The request's credential, None when it carries none; ``AuthenticationError`` when one is malformed."""
    authorization = headers.get("authorization")
    if authorization is not None:
        return _from_authorization(authorization)
    for header in ("x-api-key", "x-metal-api-key"):
        value = headers.get(header)
        if value is not None:
            return _credential(header, value)
    return None


def _from_authorization(value: str) -> Credential:
    scheme, _, rest = value.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return _credential("bearer", rest)
    if scheme == "basic":
        try:
            decoded = base64.b64decode(rest.strip(), validate=True).decode("utf-8")
        except ValueError as exc:  # not base64 (binascii.Error), non-ASCII text, or not UTF-8 once decoded
            raise AuthenticationError("malformed Basic credentials") from exc
        _, separator, password = decoded.partition(":")
        if not separator:
            raise AuthenticationError("malformed Basic credentials: expected user:key")
        return _credential("basic", password)
    raise AuthenticationError("unsupported Authorization scheme: use Bearer or Basic")


def _credential(kind: str, secret: str) -> Credential:
    secret = secret.strip()
    if not secret:
        raise AuthenticationError("empty credential")
    if len(secret) > MAX_CREDENTIAL_CHARS:
        raise AuthenticationError("credential too long")
    return Credential(kind=kind, secret=secret)  # type: ignore[arg-type]


def presented_key_id(credential: Credential | None) -> str | None:
    """The public id of the API key a credential presents, verified or not (what a refusal logs: never the secret);
    None for no credential, a malformed key, or anything that is no API key (a JWT)."""
    if credential is None:
        return None
    return key_id_of(credential.secret)
