"""The Redis client adapter: one lazily created client (standalone or cluster), bounded timeouts."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeAlias

from redis import Redis
from redis import exceptions as redis_errors
from redis.backoff import ExponentialBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from motorhead.errors import ConfigError, StoreUnavailableError
from motorhead.settings import Settings

RedisClient: TypeAlias = "Redis | RedisCluster"

_UNAVAILABLE = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
)


@contextmanager
def mapped_errors() -> Iterator[None]:
    """Redis unreachable, silent, loading or resharding becomes ``StoreUnavailableError`` (a 503, or a retried job)."""
    try:
        yield
    except _UNAVAILABLE as exc:
        raise StoreUnavailableError(f"redis unavailable: {type(exc).__name__}") from exc


class RedisConnector:
    """Creates the client on first use, so a cold start never blocks on the network.

    ``MOTORHEAD_REDIS_MODE=auto`` asks the server (``INFO cluster``) whether it runs in cluster mode, which is what
    MemoryDB and ElastiCache cluster-mode endpoints need; ``standalone``/``cluster`` skip that question.
    """

    def __init__(self, settings: Settings) -> None:
        if not settings.redis_url:
            raise ConfigError("REDIS_URL: not set (e.g. redis://host:6379/0, rediss:// for TLS)")
        self._url = settings.redis_url
        self._mode = settings.redis_mode
        self._options: dict[str, object] = {
            "decode_responses": True,
            "socket_connect_timeout": settings.redis_connect_timeout,
            "socket_timeout": settings.redis_socket_timeout,
            "health_check_interval": 30,
        }
        self._clients: dict[bool, Redis | RedisCluster] = {}
        self._scripts: dict[tuple[str, bool], Callable[..., Any]] = {}
        self._is_cluster: bool | None = None
        self._lock = threading.Lock()

    def client(self, *, binary: bool = False) -> Redis | RedisCluster:
        """The shared client; ``binary`` gives one that returns bytes (vectors) instead of decoded text."""
        found = self._clients.get(binary)
        if found is None:
            with self._lock:
                found = self._clients.get(binary)
                if found is None:
                    found = self._clients[binary] = self._connect(decode=not binary)
        return found

    def run_script(self, source: str, keys: Sequence[str], args: Sequence[Any], *, binary: bool = False) -> Any:
        """Run a Lua script (registered once per process; EVALSHA, reloaded if the server lost it), errors mapped."""
        script = self._scripts.get((source, binary))
        with mapped_errors():
            if script is None:
                script = self._scripts[(source, binary)] = self.client(binary=binary).register_script(source)
            return script(keys=list(keys), args=list(args))

    def is_cluster(self) -> bool:
        self.client()
        return bool(self._is_cluster)

    def _connect(self, *, decode: bool) -> Redis | RedisCluster:
        options = {**self._options, "decode_responses": decode}
        if self._is_cluster is None:
            if self._mode == "cluster":
                self._is_cluster = True
            elif self._mode == "standalone":
                self._is_cluster = False
            else:
                with Redis.from_url(self._url, **options) as probe:
                    self._is_cluster = int(probe.info("cluster").get("cluster_enabled", 0)) == 1
        if self._is_cluster:
            return RedisCluster.from_url(self._url, **options)
        return Redis.from_url(self._url, retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=1), **options)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
