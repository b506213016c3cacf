"""The per-tenant rate limit's token bucket, and how a request's token rides on its own first round trip.

The bucket (``L:rate``) holds "tokens ms", refilled at ``rate`` per second up to ``burst``; one atomic step takes a
token, or says how many ms until one is there. It exists in two forms, one logic (``_BUCKET``):

- ``ACQUIRE``, a script of its own (one round trip): what a request pays when its token cannot ride on anything;
- ``charged(source)``, the same step put in front of another script: the request's first Redis call carries the
  bucket as its last key and the bucket's arguments as its last three, takes the token, and runs the script only if
  one was there (else the script answers the error ``RATELIMITED <ms>`` before writing anything). So on a single
  Redis a rate-limited request costs no round trip of its own. (On a cluster the bucket is on another slot than the
  request's keys: the token is taken in a round trip of its own, first.)

A request's ``Charge`` is kept in a context variable from admission (``RedisRateLimiter.defer``) until the first Redis
call of that request takes it (``RedisConnector``); a request that makes no Redis call pays it when it ends
(``Charge.settle``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from contextvars import ContextVar, Token
from dataclasses import dataclass, field

# The bucket's step, on ``__key``, ``__rate``, ``__burst`` and ``__now`` (ms, from the caller, so that the script stays
# deterministic for replication); sets ``__wait`` (0: a token was taken). The bucket's time only moves forward
# (``math.max``): a request whose ``now`` is earlier than the bucket's (taken before a concurrent request's, or on an
# instance whose clock lags) would otherwise set it back, and the next request would be credited the same interval
# a second time (twice the rate under concurrency, far more with skew).
_BUCKET = """
local __state = redis.call('GET', __key)
local __tokens, __at = __burst, __now
if __state then
  local __space = string.find(__state, ' ')
  __tokens, __at = tonumber(string.sub(__state, 1, __space - 1)), tonumber(string.sub(__state, __space + 1))
  __tokens = math.min(__burst, __tokens + math.max(0, __now - __at) * __rate / 1000)
end
local __wait = 0
if __tokens >= 1 then
  __tokens = __tokens - 1
else
  __wait = math.ceil((1 - __tokens) * 1000 / __rate)
end
redis.call('SET', __key, __tokens .. ' ' .. math.max(__at, __now), 'PX', math.ceil(__burst * 1000 / __rate) + 1000)
"""

# KEYS: the bucket. ARGV: rate per second, burst, now in ms. Returns the ms to wait (0: allowed, one token taken).
ACQUIRE = (
    "local __key, __rate, __burst, __now = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    + _BUCKET
    + "return __wait\n"
)

# In front of a script: takes the bucket (the last key) and its arguments (the last three) off KEYS and ARGV, so the
# script reads its own as it always does.
_PRELUDE = (
    "local __now = tonumber(table.remove(ARGV))\n"
    "local __burst = tonumber(table.remove(ARGV))\n"
    "local __rate = tonumber(table.remove(ARGV))\n"
    "local __key = table.remove(KEYS)\n"
    + _BUCKET
    + "if __wait > 0 then\n  return redis.error_reply('RATELIMITED ' .. __wait)\nend\n"
)
REFUSED = "RATELIMITED"  # the error code a charged script answers with when the tenant has no token


def charged(source: str) -> str:
    """``source`` with the bucket's step in front of it (see the module's docstring)."""
    return _PRELUDE + source


@dataclass
class Charge:
    """One request's token, not taken yet: the bucket, its rate and burst, and the request's time."""

    key: str
    rate: float
    burst: int
    now_ms: int
    pay: Callable[[Charge], float]  # takes the token in a round trip of its own; the ms to wait (0: taken)
    taken: bool = False
    _token: Token[Charge | None] | None = field(default=None, repr=False)

    def arguments(self) -> list[float | int]:
        return [self.rate, self.burst, self.now_ms]

    def settle(self) -> None:
        """At the end of the request: pay the token if no Redis call of the request took it (a request that made no
        Redis call spends one all the same), and forget the charge."""
        try:
            if not self.taken:
                self.taken = True
                self.pay(self)
        finally:
            if self._token is not None:
                with suppress(ValueError):  # settled from another context than the one that deferred it
                    _pending.reset(self._token)
                self._token = None


_pending: ContextVar[Charge | None] = ContextVar("motorhead_rate_charge", default=None)


def defer(charge: Charge) -> Charge:
    """Keep ``charge`` for the current request's first Redis call."""
    charge._token = _pending.set(charge)
    return charge


def pending() -> Charge | None:
    """The current request's charge, if no Redis call has taken it yet."""
    charge = _pending.get()
    return None if charge is None or charge.taken else charge


def take() -> Charge | None:
    """The current request's charge, now taken by the caller (which must carry it in its round trip)."""
    charge = pending()
    if charge is not None:
        charge.taken = True
    return charge
