"""The Redis client adapter: one lazily created client (standalone or cluster), bounded timeouts."""

from __future__ import annotations

import threading
from typing import TypeAlias

from redis import Redis
from redis.backoff import ExponentialBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from motorhead.errors import ConfigError
from motorhead.settings import Settings

RedisClient: TypeAlias = "Redis | RedisCluster"


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
        self._client: Redis | RedisCluster | None = None
        self._lock = threading.Lock()

    def client(self) -> Redis | RedisCluster:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._connect()
        return self._client

    def _connect(self) -> Redis | RedisCluster:
        if self._mode == "cluster":
            return self._cluster()
        standalone = Redis.from_url(
            self._url, retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=1), **self._options
        )
        if self._mode == "auto" and int(standalone.info("cluster").get("cluster_enabled", 0)) == 1:
            standalone.close()
            return self._cluster()
        return standalone

    def _cluster(self) -> RedisCluster:
        return RedisCluster.from_url(self._url, **self._options)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
