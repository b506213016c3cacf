"""Index jobs on a real Redis: a backlog bigger than one job fails the job on purpose, and the next delivery goes
on where it stopped."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pytest
import redis

from devserver.embedded_redis import EmbeddedRedis
from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.exact_index import ExactVectorIndex
from motorhead.adapters.redis_db.keys import Keys
from motorhead.adapters.redis_db.store import RedisMemoryStore
from motorhead.core.job_loop import StepBudget
from motorhead.core.values import NewMessage, SessionJob
from motorhead.errors import JobIncompleteError
from motorhead.ltm.indexing import IndexerService
from motorhead.ltm.ports import Vectors
from motorhead.settings import Settings
from tests.support import ref


@pytest.fixture
def store(redis_server: EmbeddedRedis, redis_client: redis.Redis) -> Iterator[RedisMemoryStore]:
    connector = RedisConnector(Settings(REDIS_URL=redis_server.url))
    yield RedisMemoryStore(connector, Keys("mh"))
    connector.close()


class Tiny:
    """Vectors are data here, not the point: the store and the index are real."""

    identity = "test:tiny:4"
    dimensions = 4

    def embed(self, texts: Sequence[str]) -> Vectors:
        return np.tile(np.array([1, 0, 0, 0], dtype=np.float32), (len(texts), 1))


def test_indexer_given_more_pending_than_one_job_takes_fails_the_job_and_the_next_delivery_finishes(
    store: RedisMemoryStore, redis_client: redis.Redis, redis_server: EmbeddedRedis
) -> None:
    # Given 300 pending messages and an indexer allowed 2 batches of 128 per job
    for i in range(300):
        store.append(ref("s"), [NewMessage("Human", f"m{i}")], context=None, namespace="", now_ms=i, index=True)

    connector = RedisConnector(Settings(REDIS_URL=redis_server.url))
    indexer = IndexerService(
        store=store,
        embedder=Tiny(),
        index=ExactVectorIndex(connector, Keys("mh"), dimensions=4),
        budget=StepBudget(max_rounds=2),
    )
    # When the job runs / Then it fails so that SQS delivers it again (messages stay pending, lease held)
    with pytest.raises(JobIncompleteError):
        indexer.run(SessionJob(session=ref("s"), last_id=300))
    assert redis_client.zcard(Keys("mh").session(ref("s")).pending) == 300 - 256
    # And the next delivery indexes the rest and lets go of the lease
    indexer.run(SessionJob(session=ref("s"), last_id=300))
    assert redis_client.zcard(Keys("mh").session(ref("s")).pending) == 0
    assert redis_client.llen(Keys("mh").session(ref("s")).docs) == 300
    assert not redis_client.hexists(Keys("mh").session(ref("s")).meta, "idx_at")
