"""Per-tenant request rate limiting on Redis: a token bucket refilled at ``rate`` per second up to ``burst``, shared by
every function instance (``charge.py``). On a single Redis a request's token rides on the request's own first round
trip (``defer``); otherwise, and where a caller asks for it now (``acquire``), it costs a round trip of its own."""

from __future__ import annotations

from collections.abc import Callable

from motorhead.adapters.redis_db import charge
from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.keys import Keys


class RedisRateLimiter:
    """Implements ``motorhead.core.auth.RateLimiter``."""

    def __init__(
        self, connector: RedisConnector, keys: Keys, *, rate: float, burst: int, now_ms: Callable[[], int]
    ) -> None:
        self._connector = connector
        self._keys = keys
        self._rate = rate
        self._burst = burst
        self._now_ms = now_ms

    def acquire(self, tenant: str) -> float:
        return self._pay(self._charge(tenant)) / 1000

    def defer(self, tenant: str) -> charge.Charge | None:
        """The tenant's token, to be taken by the request's first Redis call (None on a cluster: ``acquire``)."""
        if self._connector.is_cluster():
            return None
        return charge.defer(self._charge(tenant))

    def _charge(self, tenant: str) -> charge.Charge:
        return charge.Charge(
            key=self._keys.rate_bucket(tenant), rate=self._rate, burst=self._burst, now_ms=self._now_ms(), pay=self._pay
        )

    def _pay(self, owed: charge.Charge) -> float:
        owed.taken = True
        return float(self._connector.run_script(charge.ACQUIRE, [owed.key], owed.arguments(), charged=False))
