"""Bearer JWTs from an identity provider: ``JwtAuthenticator`` implements ``motorhead.core.auth.Authenticator``
(``MOTORHEAD_AUTH=jwt``), checking each token against the provider's published public keys (its JWKS).

The keys are fetched on the first request, not at import or construction (a cold start must not wait on the
identity provider, and a function that never sees a token never fetches), then cached for
``MOTORHEAD_JWKS_CACHE_SECONDS``. A token naming a key id the cache does not hold makes PyJWT fetch the set again
(at most once per cooldown), so a key rotation is picked up without a restart.

The two ways a token can fail are kept apart: a token that is not good (malformed, forged, expired, for another
audience or issuer, signed with an algorithm or key we do not take, naming no tenant) is an ``AuthenticationError``
(a 401, the client must get a new token); keys that cannot be fetched (the JWKS URL down, slow, or answering
something that is not a key set) are an ``AuthUnavailableError`` (a 503, the same token may pass in a moment).
Reasons are short and fixed: never the token, nor anything read from it (a claim, a ``kid``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Literal

import jwt

from motorhead.core.auth import Caller, Credential, Scope, require_tenant
from motorhead.errors import AuthenticationError, AuthUnavailableError, ConfigError
from motorhead.settings import Settings

REQUIRED_CLAIMS = ["exp", "iss", "aud"]  # a token that never expires, or names no issuer or audience, is refused
TIME_CLAIMS = ("exp", "iat", "nbf")  # NumericDates: whole seconds, when present (exp always is)
DEFAULT_MAX_LIFETIME = 86_400  # seconds: a token that expires later than this from now is refused
DEFAULT_TIMEOUT = 2.0  # seconds for one JWKS fetch: well under API Gateway's 29 s, and an IdP answers in ms
DEFAULT_REFRESH_COOLDOWN = 30.0  # PyJWT's: at most one extra fetch per 30 s for tokens naming an unknown key id
SCOPE_NAMES = frozenset(scope.value for scope in Scope)


class _KeysUnavailable(Exception):
    """The key set could not be had: kept apart from PyJWT's ``PyJWKClientError``, which also means "no such kid"."""


class _JwksClient(jwt.PyJWKClient):
    """``PyJWKClient`` whose key-set fetch failures, whatever their shape, raise ``_KeysUnavailable``.

    PyJWT raises ``PyJWKClientError`` both for "the endpoint answered no usable key set" and "the set holds no key
    with this kid", and lets a body that is not JSON, or JSON of an odd shape, escape as a ``ValueError`` or a
    ``TypeError``. Every fetch, first or refresh, goes through ``get_signing_keys``, so wrapping it here leaves
    ``PyJWKClientError`` from ``get_signing_key`` meaning one thing only: an unknown key id."""

    def get_signing_keys(self, refresh: bool = False) -> list[jwt.PyJWK]:
        try:
            return super().get_signing_keys(refresh)
        # PyJWTError: HTTP errors, timeouts, no usable key; ValueError: not JSON; TypeError, KeyError: JSON of an
        # unexpected shape (an "alg" that is a list...); OSError: the connection dropped mid-body
        except (jwt.PyJWTError, ValueError, TypeError, KeyError, OSError) as exc:
            raise _KeysUnavailable(type(exc).__name__) from exc


class JwtAuthenticator:
    """Verifies a bearer JWT with the issuer's JWKS and turns its claims into a ``Caller``.

    Only the listed (asymmetric) algorithms are taken: the header's ``alg`` is checked before any key is looked up,
    so ``none`` and HMAC tokens (whose "secret" would be the public key) never reach the verifier, and each key is
    bound by PyJWT to its own algorithm (the JWK's ``alg``, else the one its type implies: RS256 for RSA, the
    curve's for EC), so a token cannot pick another one for a known key.

    The tenant is the ``tenant_claim`` claim, which must be a valid tenant name (fails closed); the user, the
    ``user_claim`` claim when one is configured (the MCP tools then act as that user alone). The scopes are the
    ``scope_claim`` claim's entries starting with ``scope_prefix`` (``motorhead:read``...), the claim being an OAuth
    space-separated string (``scope``) or a list (``scp``); other entries are someone else's and are ignored."""

    method: Literal["jwt"] = "jwt"

    def __init__(
        self,
        *,
        jwks_url: str,
        issuer: str,
        audience: str,
        algorithms: Sequence[str],
        tenant_claim: str = "tenant",
        scope_claim: str = "scope",
        user_claim: str = "",
        scope_prefix: str = "motorhead:",
        leeway_seconds: float = 30,
        max_lifetime_seconds: float = DEFAULT_MAX_LIFETIME,
        jwks_cache_seconds: float = 300,
        timeout: float = DEFAULT_TIMEOUT,
        refresh_cooldown_seconds: float = DEFAULT_REFRESH_COOLDOWN,
    ) -> None:
        if not algorithms:
            raise ConfigError("MOTORHEAD_JWT_ALGORITHMS names no algorithm")
        self._issuer = issuer
        self._audience = audience
        self._algorithms = list(algorithms)
        self._tenant_claim = tenant_claim
        self._scope_claim = scope_claim
        self._user_claim = user_claim
        self._scope_prefix = scope_prefix
        self._leeway = leeway_seconds
        self._max_lifetime = max_lifetime_seconds
        try:  # builds no connection: the first fetch happens on the first token
            self._client = _JwksClient(
                jwks_url,
                cache_jwk_set=jwks_cache_seconds > 0,  # 0: fetch the set for every token (PyJWT wants lifespan > 0)
                lifespan=jwks_cache_seconds if jwks_cache_seconds > 0 else 1,
                timeout=timeout,
                cooldown_duration=refresh_cooldown_seconds,
            )
        except jwt.PyJWKClientError as exc:  # a URL that is not http(s), a negative cooldown
            raise ConfigError(f"MOTORHEAD_JWT_JWKS_URL: {exc}") from exc

    def authenticate(self, credential: Credential | None) -> Caller:
        if credential is None:
            raise AuthenticationError("missing credential")
        if credential.kind != "bearer":
            raise AuthenticationError("this deployment takes a bearer JWT (Authorization: Bearer <token>)")
        claims = self._verified_claims(credential.secret)
        tenant = require_tenant(claims.get(self._tenant_claim))
        return Caller(tenant=tenant, scopes=self._scopes(claims), method="jwt", user=self._user(claims))

    def _user(self, claims: dict[str, Any]) -> str | None:
        """The user the token names (``user_claim``, when configured); a token without it, or with one that is not a
        non-empty string, is refused (401)."""
        if not self._user_claim:
            return None
        user = claims.get(self._user_claim)  # configured: a token without it would act for every user (fails closed)
        if not isinstance(user, str) or not user:
            raise AuthenticationError(f"the token's {self._user_claim!r} claim is not a user id")
        return user

    def _verified_claims(self, token: str) -> dict[str, Any]:
        """The token's claims once its header, key, signature and registered claims are checked."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthenticationError("malformed token") from exc
        if header.get("alg") not in self._algorithms:  # before any fetch: "none", HS256, or one we do not take
            raise AuthenticationError("token algorithm not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthenticationError("token names no signing key (kid)")
        try:
            key = self._client.get_signing_key(kid)
        except _KeysUnavailable as exc:
            raise AuthUnavailableError("the issuer's signing keys could not be fetched", detail=str(exc)) from exc
        except jwt.PyJWTError as exc:  # PyJWKClientError: no key with this kid, even after a refresh
            raise AuthenticationError("token signed with an unknown key") from exc
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as exc:
            raise AuthenticationError(_reason(exc)) from exc
        self._check_times(claims)
        return claims

    def _check_times(self, claims: dict[str, Any]) -> None:
        """What PyJWT lets through: a time claim it reads with ``int()`` (``"1700000000"``, ``1.7e9 + 0.5``, ``true``)
        is refused unless it is a whole number; an ``exp`` more than ``max_lifetime`` from now, a token stolen once
        and good for years, is refused too. The reason is the usual one; which check failed goes in the detail."""
        for name in TIME_CLAIMS:
            if name in claims and not _is_whole_number(claims[name]):
                raise AuthenticationError("invalid token", detail=f"the {name} claim is not a whole number")
        if claims["exp"] > time.time() + self._max_lifetime:
            raise AuthenticationError("invalid token", detail="exp is beyond MOTORHEAD_JWT_MAX_LIFETIME_SECONDS")

    def _scopes(self, claims: dict[str, Any]) -> frozenset[Scope]:
        raw = claims.get(self._scope_claim)
        if isinstance(raw, str):
            entries = raw.split()
        elif isinstance(raw, list):
            entries = [entry for entry in raw if isinstance(entry, str)]
        else:  # absent, or a shape no provider uses: no Motorhead scope (the route answers 403)
            return frozenset()
        prefix = self._scope_prefix
        names = {entry[len(prefix) :] for entry in entries if entry.startswith(prefix)}
        return frozenset(Scope(name) for name in names & SCOPE_NAMES)


def _is_whole_number(value: object) -> bool:
    """An integer (never a bool), or a float with no fraction (JSON has one number type: some encoders write 1e9)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _reason(exc: jwt.PyJWTError) -> str:
    """A fixed reason per failure: PyJWT's own messages may quote the token's values."""
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "token expired"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "token not yet valid"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "token not issued for this audience"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "token not from the expected issuer"
    if isinstance(exc, jwt.MissingRequiredClaimError) and exc.claim in REQUIRED_CLAIMS:
        return f"token lacks the required {exc.claim} claim"
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return "token algorithm not allowed"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "token signature invalid"
    return "invalid token"


def jwt_authenticator(settings: Settings) -> JwtAuthenticator:
    """The authenticator ``MOTORHEAD_AUTH=jwt`` configures. ``Settings`` has already checked that the issuer, the
    audience and the JWKS URL are set and that only asymmetric algorithms are listed; the check here is for a
    ``Settings`` built with another ``MOTORHEAD_AUTH``."""
    if not (settings.jwt_jwks_url and settings.jwt_issuer and settings.jwt_audience):
        raise ConfigError(
            "MOTORHEAD_AUTH=jwt needs MOTORHEAD_JWT_JWKS_URL, MOTORHEAD_JWT_ISSUER, MOTORHEAD_JWT_AUDIENCE"
        )
    return JwtAuthenticator(
        jwks_url=settings.jwt_jwks_url,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        algorithms=settings.jwt_algorithm_list(),
        tenant_claim=settings.jwt_tenant_claim,
        scope_claim=settings.jwt_scope_claim,
        user_claim=settings.jwt_user_claim,
        scope_prefix=settings.jwt_scope_prefix,
        leeway_seconds=settings.jwt_leeway_seconds,
        max_lifetime_seconds=settings.jwt_max_lifetime_seconds,
        jwks_cache_seconds=settings.jwks_cache_seconds,
    )
