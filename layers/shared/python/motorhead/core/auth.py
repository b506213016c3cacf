"""Who is calling, and what they may do: the caller's tenant and scopes, and the ports that establish them.

Every HTTP function authenticates its caller the same way (``motorhead.entrypoints.http.app``): the credential is
taken from the request, the configured ``Authenticator`` turns it into a ``Caller`` or refuses it, the caller must
hold the function's scope, and the session the request names is the pair (the caller's tenant, the id in the path).
No route reads a tenant from anywhere else, so no code path can forget it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol

from motorhead.core.values import NO_TENANT
from motorhead.errors import AuthenticationError, ForbiddenError, InvalidInputError, RateLimitedError

TENANT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class Scope(StrEnum):
    """What a credential allows: read a session (GET memory, retrieval), write (POST memory), delete (DELETE
    memory), list the tenant's sessions (GET /sessions)."""

    READ = "read"
    WRITE = "write"
    DELETE = "delete"
    LIST = "list"


ALL_SCOPES = frozenset(Scope)

CredentialKind = Literal["bearer", "basic", "x-api-key", "x-metal-api-key"]


@dataclass(frozen=True, slots=True)
class Credential:
    """What the request presented, and how (``bearer``: an API key or a JWT)."""

    kind: CredentialKind
    secret: str

    def __repr__(self) -> str:  # never print the secret, whatever logs the object
        return f"Credential(kind={self.kind!r}, secret=<{len(self.secret)} characters>)"


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller: the tenant every session of the request belongs to, and what it may do."""

    tenant: str
    scopes: frozenset[Scope]
    method: Literal["none", "api-key", "jwt"]
    key_id: str | None = None  # the API key's public id (never the key)
    user: str | None = None  # the user the credential names (a JWT's user claim): the MCP tools act as that user alone

    def may(self, scope: Scope) -> bool:
        return scope in self.scopes

    def require(self, scope: Scope) -> None:
        """``ForbiddenError`` (403) unless the caller holds ``scope``."""
        if not self.may(scope):
            raise ForbiddenError(f"this credential does not allow '{scope.value}'")


ANONYMOUS = Caller(tenant=NO_TENANT, scopes=ALL_SCOPES, method="none")


class Authenticator(Protocol):
    """Turns a request's credential into a caller; raises ``AuthenticationError`` (401) when it is missing,
    malformed, unknown, revoked, expired or names no tenant."""

    @property
    def method(self) -> Literal["none", "api-key", "jwt"]: ...

    def authenticate(self, credential: Credential | None) -> Caller: ...


class PendingCharge(Protocol):
    """A request's token, owed to the tenant's bucket: the request's first store call takes it in its own round trip
    (refused there: ``RateLimitedError``, before the call does anything)."""

    def settle(self) -> None:
        """At the end of the request: take the token if no store call did (the answer stands either way)."""
        ...


class RateLimiter(Protocol):
    """Requests per second with a burst, per tenant."""

    def acquire(self, tenant: str) -> float:
        """Take one request from the tenant's bucket: 0 when allowed, else the seconds until one is."""
        ...

    def defer(self, tenant: str) -> PendingCharge | None:
        """Owe the token to the request's first store call instead (no round trip of its own); None when this
        limiter cannot (then ``acquire``)."""
        ...


class OpenAccess:
    """``MOTORHEAD_AUTH=none``: every request is the tenant-less caller, with every scope (private networks only)."""

    method: Literal["none"] = "none"

    def authenticate(self, credential: Credential | None) -> Caller:
        return ANONYMOUS


def check_tenant(tenant: str) -> str:
    """A tenant name: 1 to 64 of ``A-Z a-z 0-9 . _ -``, starting with a letter or digit."""
    if not TENANT_PATTERN.fullmatch(tenant):
        raise InvalidInputError(
            "a tenant is 1 to 64 characters from A-Z a-z 0-9 . _ - (starting with a letter or digit)"
        )
    return tenant


def require_tenant(tenant: object) -> str:
    """The tenant a verified credential names; a credential naming none (or an unusable one) fails closed."""
    if not isinstance(tenant, str) or not TENANT_PATTERN.fullmatch(tenant):
        raise AuthenticationError("the credential names no valid tenant")
    return tenant


class AccessControl:
    """How a function lets requests in: who the caller is, and how fast a tenant may go (no limit when None)."""

    def __init__(self, authenticator: Authenticator, rate_limiter: RateLimiter | None = None) -> None:
        self.authenticator = authenticator
        self.rate_limiter = rate_limiter

    def admit(self, credential: Credential | None, scope: Scope | None) -> Caller:
        """The caller, once authenticated, allowed ``scope`` (any valid credential when None) and within its rate."""
        caller = self._authorized(credential, scope)
        if self.rate_limiter is not None:
            self._acquire(self.rate_limiter, caller.tenant)
        return caller

    def admit_deferring(
        self, credential: Credential | None, scope: Scope | None
    ) -> tuple[Caller, PendingCharge | None]:
        """``admit``, with the rate's token owed to the request's first store call where the limiter can (the
        caller must ``settle`` what is returned when the request ends): a rate-limited request then costs no round
        trip of its own, and one over its rate is still refused before it changes anything."""
        caller = self._authorized(credential, scope)
        if self.rate_limiter is None:
            return caller, None
        owed = self.rate_limiter.defer(caller.tenant)
        if owed is None:
            self._acquire(self.rate_limiter, caller.tenant)
        return caller, owed

    def _authorized(self, credential: Credential | None, scope: Scope | None) -> Caller:
        caller = self.authenticator.authenticate(credential)
        if scope is not None:
            caller.require(scope)
        return caller

    @staticmethod
    def _acquire(limiter: RateLimiter, tenant: str) -> None:
        wait = limiter.acquire(tenant)
        if wait > 0:
            raise RateLimitedError("too many requests for this tenant; retry later", retry_after=wait)
