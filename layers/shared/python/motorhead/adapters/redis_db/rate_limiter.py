"""Per-tenant request rate limiting on Redis: a token bucket refilled at ``rate`` per second up to ``burst``, taken
from by one atomic script per request (so every function instance shares one bucket per tenant)."""

from __future__ import annotations

from collections.abc import Callable

from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.keys import Keys

# KEYS: the bucket. ARGV: rate per second, burst, now in ms. The bucket holds "tokens ms"; returns the ms to wait
# (0: allowed, one token taken). TIME comes from the caller so that the script stays deterministic for replication.
# The bucket's time only moves forward (``math.max``): a request whose ``now`` is earlier than the bucket's (taken
# before a concurrent request's, or on an instance whose clock lags) would otherwise set it back, and the next
# request would be credited the same interval a second time (twice the rate under concurrency, far more with skew).
_ACQUIRE = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('GET', KEYS[1])
local tokens, at = burst, now
if state then
  local space = string.find(state, ' ')
  tokens, at = tonumber(string.sub(state, 1, space - 1)), tonumber(string.sub(state, space + 1))
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
end
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('SET', KEYS[1], tokens .. ' ' .. math.max(at, now), 'PX', math.ceil(burst * 1000 / rate) + 1000)
return wait
"""


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
        now = self._now_ms()
        wait_ms = self._connector.run_script(_ACQUIRE, [self._keys.rate_bucket(tenant)], [self._rate, self._burst, now])
        return int(wait_ms) / 1000
