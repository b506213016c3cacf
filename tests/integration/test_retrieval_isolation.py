"""Property: whatever the session ids, no retrieval ever returns another session's message (both backends)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devserver.embedded_redis import EmbeddedRedis
from motorhead.adapters.onnx_local.embedder import LocalOnnxEmbedder
from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.exact_index import ExactVectorIndex
from motorhead.adapters.redis_db.keys import Keys, session_tag
from motorhead.adapters.redis_db.keyword_index import RedisKeywordIndex
from motorhead.adapters.redis_db.search_index import SearchVectorIndex
from motorhead.adapters.redis_db.store import RedisMemoryStore
from motorhead.core.values import NewMessage, SessionJob
from motorhead.ltm.indexing import IndexerService
from motorhead.ltm.ports import VectorIndex
from motorhead.ltm.retrieval import RetrievalService
from motorhead.settings import Settings
from tests.support import ref

HOSTILE = "-@:{}*? \t\\\"'%/ü会話🧠"
SESSION_IDS = st.text(alphabet=st.sampled_from(HOSTILE) | st.characters(codec="utf-8"), min_size=1, max_size=40).filter(
    lambda s: "/" not in s and len(s.encode()) <= 256
)
EMBEDDER = LocalOnnxEmbedder()


class Memory:
    def __init__(self, connector: RedisConnector, index: VectorIndex) -> None:
        keys = Keys("iso")
        self.store = RedisMemoryStore(connector, keys)
        self.indexer = IndexerService(store=self.store, embedder=EMBEDDER, index=index)
        self.retrieval = RetrievalService(embedder=EMBEDDER, index=index, keywords=RedisKeywordIndex(connector, keys))


@pytest.fixture(scope="module", params=["exact", "search"])
def memory(
    request: pytest.FixtureRequest, redis_server: EmbeddedRedis, search_server: EmbeddedRedis
) -> Iterator[Memory]:
    server = redis_server if request.param == "exact" else search_server
    with redis.Redis(port=server.port) as client:
        client.flushall()
    connector = RedisConnector(Settings(REDIS_URL=server.url))
    keys = Keys("iso")
    index: VectorIndex = (
        ExactVectorIndex(connector, keys, dimensions=EMBEDDER.dimensions)
        if request.param == "exact"
        else SearchVectorIndex(connector, keys)
    )
    yield Memory(connector, index)
    connector.close()


def marker(session_id: str) -> str:
    return f"zq{session_tag(ref(session_id))[:10]}"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(session_ids=st.lists(SESSION_IDS, min_size=2, max_size=4, unique=True))
def test_retrieval_given_many_hostile_sessions_never_returns_another_sessions_message(
    memory: Memory, session_ids: list[str]
) -> None:
    # Given several sessions with hostile ids, all talking about the same thing in the same words
    for session_id in session_ids:
        own = marker(session_id)
        memory.store.append(
            ref(session_id),
            [
                NewMessage("Human", f"{own} I water the tomato garden every morning"),
                NewMessage("AI", f"{own} tomatoes love sun"),
            ],
            context=None,
            namespace="",
            now_ms=1,
            index=True,
        )
        memory.indexer.run(SessionJob(session=ref(session_id), last_id=0))
    # When each session searches for the shared topic, with every mode
    for session_id in session_ids:
        for mode in ("fusion", "rrf", "vector", "keyword"):
            hits = memory.retrieval.search(ref(session_id), "watering the tomato garden", 10, mode=mode)
            # Then it only ever sees its own messages
            assert hits, (session_id, mode)
            assert all(hit.message.content.startswith(marker(session_id)) for hit in hits), (session_id, mode)
