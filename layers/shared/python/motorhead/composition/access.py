"""Wiring of access control: the authenticator ``MOTORHEAD_AUTH`` names, and the per-tenant rate limit."""

from __future__ import annotations

from functools import lru_cache

from motorhead.adapters.redis_db.keys import Keys
from motorhead.composition.memory import shared_connector
from motorhead.core.api_keys import ApiKeys
from motorhead.core.auth import AccessControl, Authenticator, OpenAccess, RateLimiter
from motorhead.core.clock import now_ms
from motorhead.core.tenancy import SessionAdopter
from motorhead.settings import Settings, get_settings


@lru_cache(maxsize=1)
def access_control() -> AccessControl:
    """Built once per process, without touching the network (Redis and the JWKS are reached on first use)."""
    settings = get_settings()
    return AccessControl(authenticator(settings), rate_limiter(settings))


def authenticator(settings: Settings) -> Authenticator:
    if settings.auth == "none":
        return OpenAccess()
    if settings.auth == "jwt":
        from motorhead.adapters.jwt_tokens.verifier import jwt_authenticator  # PyJWT only in JWT deployments

        return jwt_authenticator(settings)
    return api_keys(settings)


def api_keys(settings: Settings) -> ApiKeys:
    """The API key service on Redis (the admin function uses it too)."""
    from motorhead.adapters.redis_db.key_store import RedisKeyStore

    store = RedisKeyStore(shared_connector(), Keys(settings.key_prefix))
    return ApiKeys(store, cache_seconds=settings.api_key_cache_seconds)


def session_adopter(settings: Settings) -> SessionAdopter:
    """The move of tenant-less sessions into a tenant (the admin function's ``adopt``), on the process's Redis."""
    from motorhead.adapters.redis_db.tenant_migration import RedisSessionAdopter

    return RedisSessionAdopter(shared_connector(), Keys(settings.key_prefix))


def rate_limiter(settings: Settings) -> RateLimiter | None:
    if settings.rate_limit_rps <= 0:
        return None
    from motorhead.adapters.redis_db.rate_limiter import RedisRateLimiter

    return RedisRateLimiter(
        shared_connector(),
        Keys(settings.key_prefix),
        rate=settings.rate_limit_rps,
        burst=settings.rate_limit_burst_or_default(),
        now_ms=now_ms,
    )
