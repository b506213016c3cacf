"""Fixtures of the integration tests: the local gateway on a free port, in front of a real Redis."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
import redis

from devserver.embedded_redis import EmbeddedRedis, EmbeddedRedisCluster
from devserver.local_sqs import LocalQueue, LocalSqs
from devserver.server import LocalGateway, merged_openapi
from devserver.template import load_queue_consumers
from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.settings import Settings
from tests.support import cold_start


@pytest.fixture
def base_url(redis_server: EmbeddedRedis, redis_client: redis.Redis) -> Iterator[str]:
    with cold_start(REDIS_URL=redis_server.url, MOTORHEAD_MAX_WINDOW_SIZE="4") as api:
        gateway = LocalGateway(("127.0.0.1", 0), api.functions, merged_openapi(api.functions, title="t", version="0"))
        thread = threading.Thread(target=gateway.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{gateway.server_address[1]}"
        gateway.shutdown()
        gateway.server_close()
        thread.join()


@pytest.fixture(scope="session")
def local_sqs() -> Iterator[LocalSqs]:
    """moto's SQS server on loopback, for the whole run (each test makes its own queues)."""
    sqs = LocalSqs().start()
    yield sqs
    sqs.stop()


def fresh_queue(sqs: LocalSqs, function_id: str) -> LocalQueue:
    """A new copy of the template's queue (and dead-letter queue) of ``function_id``, for one test only."""
    consumer = next(c for c in load_queue_consumers() if c.function_id == function_id)
    return sqs.create_queues(consumer, prefix=f"t{uuid.uuid4().hex[:12]}-")


@pytest.fixture(params=["standalone", pytest.param("cluster", marks=pytest.mark.cluster)])
def connector(
    request: pytest.FixtureRequest, redis_server: EmbeddedRedis, redis_cluster: EmbeddedRedisCluster
) -> Iterator[RedisConnector]:
    """A connector in auto mode on an emptied server of each kind: standalone, then a 3-node cluster."""
    url = redis_server.url if request.param == "standalone" else redis_cluster.url
    for node in [redis_server] if request.param == "standalone" else redis_cluster.nodes:
        with redis.Redis(port=node.port) as client:
            client.flushall()
    conn = RedisConnector(Settings(REDIS_URL=url, MOTORHEAD_REDIS_MODE="auto"))
    yield conn
    conn.close()
