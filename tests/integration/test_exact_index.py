"""The `exact` vector backend and BM25 keyword search, on a standalone Redis and on a 3-node Redis Cluster."""

from __future__ import annotations

import numpy as np
import pytest

from motorhead.adapters.redis_db import index_record
from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.exact_index import ExactVectorIndex
from motorhead.adapters.redis_db.keys import Keys
from motorhead.adapters.redis_db.keyword_index import RedisKeywordIndex
from motorhead.adapters.redis_db.store import RedisMemoryStore
from motorhead.core.values import NewMessage, SessionJob, StoredMessage
from motorhead.errors import ConfigError
from motorhead.ltm.indexing import IndexerService
from motorhead.ltm.recipe import DenseText
from tests.fakes import FakeEmbedder
from tests.support import ref

DIMS = 16
HOSTILE_IDS = ["user@example.com:{chat} *1 ünï", "{", "}{", "a-b", "*", " ", "会话", "x" * 256]


@pytest.fixture
def keys() -> Keys:
    return Keys("mh")


@pytest.fixture
def index(connector: RedisConnector, keys: Keys) -> ExactVectorIndex:
    return ExactVectorIndex(connector, keys, dimensions=DIMS)


def unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=DIMS).astype(np.float32)
    return vector / np.linalg.norm(vector)


def session(store: RedisMemoryStore, session_id: str, contents: list[str]) -> tuple[str, list[StoredMessage]]:
    """Store messages as a POST with long-term memory would; return the generation and the pending messages."""
    store.append(
        ref(session_id), [NewMessage("Human", c) for c in contents], context=None, namespace="", now_ms=1, index=True
    )
    return store.pending(ref(session_id), limit=10_000)


@pytest.fixture
def store(connector: RedisConnector, keys: Keys) -> RedisMemoryStore:
    return RedisMemoryStore(connector, keys)


def test_vector_search_given_indexed_messages_returns_exact_nearest_first(
    index: ExactVectorIndex, store: RedisMemoryStore
) -> None:
    # Given 200 indexed messages with known vectors
    generation, messages = session(store, "s", [f"m{i}" for i in range(200)])
    vectors = np.stack([unit(i) for i in range(200)])
    assert index.add(ref("s"), generation, messages, vectors) == 200
    # When searching with a query vector
    query = unit(10_000)
    hits = index.vector_search(ref("s"), query, 5)
    # Then the 5 nearest by brute force come back, nearest first, with their cosine distances
    expected = np.argsort(-(vectors @ query))[:5]
    assert [h.message.content for h in hits] == [f"m{i}" for i in expected]
    assert [round(h.distance, 5) for h in hits] == [round(float(1 - vectors[i] @ query), 5) for i in expected]
    assert index.distances(ref("s"), [messages[3].id, 99_999], query) == pytest.approx(
        {messages[3].id: float(1 - vectors[3] @ query)}
    )


def test_add_given_the_same_messages_twice_indexes_them_once(
    index: ExactVectorIndex, store: RedisMemoryStore, keys: Keys, connector: RedisConnector
) -> None:
    generation, messages = session(store, "s", ["a", "b"])
    vectors = np.stack([unit(1), unit(2)])
    assert index.add(ref("s"), generation, messages, vectors) == 2
    assert index.add(ref("s"), generation, messages, vectors) == 0  # a redelivered index job
    assert connector.client().llen(keys.session(ref("s")).docs) == 2
    assert len(index.vector_search(ref("s"), unit(1), 10)) == 2


def test_add_given_a_deleted_session_writes_nothing(
    index: ExactVectorIndex, store: RedisMemoryStore, connector: RedisConnector, keys: Keys
) -> None:
    # Given an indexer that read pending messages, then the session was deleted and re-created
    generation, messages = session(store, "s", ["secret"])
    store.delete(ref("s"), namespace="")
    session(store, "s", ["new"])
    # When it adds what it read / Then nothing of the deleted session comes back
    assert index.add(ref("s"), generation, messages, np.stack([unit(1)])) == 0
    assert index.vector_search(ref("s"), unit(1), 10) == []


def test_vector_search_given_rows_added_after_a_search_sees_them(
    index: ExactVectorIndex, store: RedisMemoryStore
) -> None:
    # Given a search that cached the session's rows
    generation, first = session(store, "s", ["one"])
    index.add(ref("s"), generation, first, np.stack([unit(1)]))
    assert [h.message.content for h in index.vector_search(ref("s"), unit(1), 10)] == ["one"]
    # When more rows are indexed / Then the next search reads them too (only them)
    _, pending = session(store, "s", ["two"])
    index.add(ref("s"), generation, [m for m in pending if m.content == "two"], np.stack([unit(2)]))
    assert [h.message.content for h in index.vector_search(ref("s"), unit(2), 10)] == ["two", "one"]


def test_vector_search_given_session_deleted_and_recreated_forgets_the_old_rows(
    index: ExactVectorIndex, store: RedisMemoryStore
) -> None:
    generation, messages = session(store, "s", ["old"])
    index.add(ref("s"), generation, messages, np.stack([unit(1)]))
    assert len(index.vector_search(ref("s"), unit(1), 10)) == 1
    store.delete(ref("s"), namespace="")
    assert index.vector_search(ref("s"), unit(1), 10) == []
    generation, messages = session(store, "s", ["new"])
    index.add(ref("s"), generation, messages, np.stack([unit(2)]))
    assert [h.message.content for h in index.vector_search(ref("s"), unit(1), 10)] == ["new"]


@pytest.mark.parametrize("session_id", HOSTILE_IDS)
def test_search_given_hostile_ids_never_returns_another_sessions_message(
    index: ExactVectorIndex, store: RedisMemoryStore, connector: RedisConnector, keys: Keys, session_id: str
) -> None:
    for sid, content in ((session_id, "mine"), ("neighbour", "theirs")):
        generation, messages = session(store, sid, [content])
        index.add(ref(sid), generation, messages, np.stack([unit(7)]))
    keyword = RedisKeywordIndex(connector, keys)
    assert [h.message.content for h in index.vector_search(ref(session_id), unit(7), 10)] == ["mine"]
    assert [m.content for m, _ in keyword.texts(ref(session_id)).search("mine theirs", 10)] == ["mine"]


def test_ensure_ready_given_another_embedder_recorded_refuses(index: ExactVectorIndex) -> None:
    index.ensure_ready(embedder="onnx:all-MiniLM-L6-v2-int8:16", dimensions=DIMS)
    index.ensure_ready(embedder="onnx:all-MiniLM-L6-v2-int8:16", dimensions=DIMS)  # same: fine
    with pytest.raises(ConfigError, match="openai:text-embedding-3-small"):
        index.ensure_ready(embedder="openai:text-embedding-3-small:16", dimensions=DIMS)


def test_keyword_search_given_messages_ranks_by_bm25(
    index: ExactVectorIndex, store: RedisMemoryStore, connector: RedisConnector, keys: Keys
) -> None:
    # Given messages where a rare word appears once and a common word everywhere
    contents = [
        "The flight to Bogotá leaves on Friday.",
        "I like flights.",
        "Salsa classes in Cali are on Friday and Saturday.",
        "Friday again, and Friday once more.",
    ]
    generation, messages = session(store, "s", contents)
    index.add(ref("s"), generation, messages, np.stack([unit(i) for i in range(4)]))
    # When searching for the rare word plus the common one
    texts = RedisKeywordIndex(connector, keys).texts(ref("s"))
    results = texts.search("Which day are salsa classes in Cali?", 10)
    # Then the message with the rare words and the one that reads it as context (the message after it) are found;
    # messages whose window shares no word are not returned
    assert {m.content for m, _ in results} == {contents[2], contents[3]}
    assert [m.content for m, _ in texts.search("friday", 10)][0] == contents[3]


def test_search_given_rows_lost_behind_the_cache_starts_over(
    index: ExactVectorIndex, store: RedisMemoryStore, connector: RedisConnector, keys: Keys
) -> None:
    # Given a search that cached two rows, then the last row vanished (as after a failover that lost a write)
    generation, messages = session(store, "s", ["one", "two"])
    index.add(ref("s"), generation, messages, np.stack([unit(1), unit(2)]))
    keyword = RedisKeywordIndex(connector, keys)
    assert len(index.vector_search(ref("s"), unit(1), 10)) == 2
    assert len(keyword.texts(ref("s")).search("one two", 10)) == 2
    client = connector.client(binary=True)
    client.rpop(keys.session(ref("s")).docs)
    vectors = keys.session(ref("s")).vectors
    client.set(vectors, client.getrange(vectors, 0, DIMS * 4 - 1))
    # When searching again / Then only what is really there comes back
    assert [h.message.content for h in index.vector_search(ref("s"), unit(1), 10)] == ["one"]
    assert [m.content for m, _ in keyword.texts(ref("s")).search("one two", 10)] == ["one"]


def test_ensure_ready_given_a_new_index_records_the_current_dense_text(
    index: ExactVectorIndex, connector: RedisConnector, keys: Keys
) -> None:
    assert index.ensure_ready(embedder="fake:16", dimensions=DIMS) is DenseText.ROLE_AND_CONTENT
    assert connector.client().hget(keys.ltm_meta(), "dense_text") == DenseText.ROLE_AND_CONTENT.value


def test_ensure_ready_given_an_index_of_the_previous_version_keeps_its_vectors_unmixed(
    connector: RedisConnector,
    keys: Keys,
    store: RedisMemoryStore,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(index_record, "_warned", set())  # the warning is once per process
    # Given an index recorded by the version before the recipe: embedder and dimensions, no dense text
    connector.client().hset(keys.ltm_meta(), mapping={"embedder": "fake:words:16", "dimensions": DIMS})
    embedder = FakeEmbedder(DIMS)
    store.append(
        ref("old"),
        [NewMessage("Caroline", "I went to the support group")],
        context=None,
        namespace="",
        now_ms=1,
        index=True,
    )
    # When the indexer of this version indexes a session
    with caplog.at_level("WARNING"):
        IndexerService(store=store, embedder=embedder, index=ExactVectorIndex(connector, keys, dimensions=DIMS)).run(
            SessionJob(session=ref("old"), last_id=1)
        )
    # Then the message is embedded as before (its content alone), the record is left as it was, and the log says why
    assert embedder.calls == [["I went to the support group"]]
    assert connector.client().hget(keys.ltm_meta(), "dense_text") is None
    assert any("before the retrieval recipe" in r.getMessage() for r in caplog.records)


def test_ensure_ready_given_an_unknown_dense_text_refuses(
    index: ExactVectorIndex, connector: RedisConnector, keys: Keys
) -> None:
    connector.client().hset(
        keys.ltm_meta(), mapping={"embedder": "fake:16", "dimensions": DIMS, "dense_text": "from-the-future"}
    )
    with pytest.raises(ConfigError, match="from-the-future"):
        index.ensure_ready(embedder="fake:16", dimensions=DIMS)
