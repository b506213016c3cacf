"""The per-process cache of sessions' indexed rows: incremental, and bounded in sessions and in rows."""

from __future__ import annotations

import numpy as np

from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.exact_index import ExactVectorIndex
from motorhead.adapters.redis_db.keys import Keys
from motorhead.adapters.redis_db.session_cache import SessionRowCache
from motorhead.adapters.redis_db.store import RedisMemoryStore
from motorhead.core.values import NewMessage, StoredMessage
from tests.support import ref

DIMS = 8


def indexed(connector: RedisConnector, keys: Keys, session_id: str, count: int) -> None:
    store = RedisMemoryStore(connector, keys)
    store.append(
        ref(session_id), [NewMessage("Human", f"m{i}") for i in range(count)], context=None, namespace="", now_ms=1,
        index=True,
    )  # fmt: skip
    generation, messages = store.pending(ref(session_id), limit=10_000)
    vectors = np.ones((len(messages), DIMS), dtype=np.float32) / np.sqrt(DIMS)  # a batch already added is skipped
    ExactVectorIndex(connector, keys, dimensions=DIMS).add(ref(session_id), generation, messages, vectors)


def counting_cache(
    connector: RedisConnector, keys: Keys, **bounds: int
) -> tuple[SessionRowCache[list[int]], list[int]]:
    folded: list[int] = []  # how many rows each extend call folded in

    def extend(rows: list[int], messages: list[StoredMessage], _raw: bytes) -> None:
        rows.extend(m.id for m in messages)
        folded.append(len(messages))

    return SessionRowCache(connector, keys, new=list, extend=extend, **bounds), folded


def test_cache_given_more_rows_than_its_bound_drops_the_least_recently_used_sessions(connector: RedisConnector) -> None:
    # Given three sessions of 30, 40 and 50 rows and a cache bounded to 100 rows
    keys = Keys("mh")
    for session_id, count in (("a", 30), ("b", 40), ("c", 50)):
        indexed(connector, keys, session_id, count)
    cache, folded = counting_cache(connector, keys, max_rows=100)
    # When each is read in turn
    assert [len(cache.get(ref(s))) for s in ("a", "b", "c")] == [30, 40, 50]
    # Then the cache holds at most 100 rows: "a" was dropped, "b" and "c" are kept
    assert cache.cached_rows() == 90
    cache.get(ref("c"))
    cache.get(ref("b"))
    assert folded == [30, 40, 50]  # b and c were not read again
    cache.get(ref("a"))
    assert folded == [30, 40, 50, 30] and cache.cached_rows() <= 100


def test_cache_given_one_session_bigger_than_its_bound_keeps_it_alone(connector: RedisConnector) -> None:
    keys = Keys("mh")
    indexed(connector, keys, "small", 5)
    indexed(connector, keys, "huge", 120)
    cache, _ = counting_cache(connector, keys, max_rows=100)
    cache.get(ref("small"))
    assert len(cache.get(ref("huge"))) == 120 and cache.cached_rows() == 120


def test_cache_given_more_sessions_than_its_bound_keeps_the_most_recent(connector: RedisConnector) -> None:
    keys = Keys("mh")
    for i in range(4):
        indexed(connector, keys, f"s{i}", 2)
    cache, folded = counting_cache(connector, keys, max_sessions=3)
    for i in range(4):
        cache.get(ref(f"s{i}"))
    assert cache.cached_rows() == 6
    cache.get(ref("s0"))  # dropped, so read again
    assert folded == [2, 2, 2, 2, 2]


def test_exact_index_given_rows_read_in_steps_ranks_them_as_one_read(connector: RedisConnector) -> None:
    # Given a session indexed in 5 steps, searched after each (the vectors' buffer grows while it is read)
    keys = Keys("mh")
    index = ExactVectorIndex(connector, keys, dimensions=DIMS)
    store = RedisMemoryStore(connector, keys)
    rng = np.random.default_rng(1)
    every: list[np.ndarray] = []
    for step in range(5):
        store.append(ref("s"), [NewMessage("Human", f"m{step}-{i}") for i in range(40)], context=None, namespace="",
                     now_ms=1, index=True)  # fmt: skip
        generation, messages = store.pending(ref("s"), limit=10_000)
        vectors = rng.normal(size=(len(messages), DIMS)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        index.add(ref("s"), generation, messages, vectors)
        store.ack_indexed(ref("s"), generation, [m.id for m in messages])
        every.extend(vectors)
        index.vector_search(ref("s"), vectors[0], 3)
    # When searching / Then the result is the brute-force one over all 200 rows
    query = every[7]
    expected = np.argsort(-(np.stack(every) @ query))[:5] + 1
    assert [h.message.id for h in index.vector_search(ref("s"), query, 5)] == expected.tolist()


def test_cache_given_a_session_bigger_than_a_page_reads_it_in_pages_and_then_only_what_is_new(
    connector: RedisConnector,
) -> None:
    # Given a session of 50 rows and a cache reading 16 rows per call
    keys = Keys("mh")
    indexed(connector, keys, "s", 50)
    cache, folded = counting_cache(connector, keys, page_rows=16)
    # When it is read / Then it comes in pages, every row once, in order
    assert cache.get(ref("s")) == list(range(1, 51)) and folded == [16, 16, 16, 2]
    # And after 20 more rows, only those are read
    indexed(connector, keys, "s", 20)
    assert cache.get(ref("s")) == list(range(1, 71)) and folded[4:] == [16, 4]


def test_exact_index_given_a_session_read_in_pages_ranks_as_one_read(connector: RedisConnector) -> None:
    keys = Keys("mh")
    store = RedisMemoryStore(connector, keys)
    store.append(ref("s"), [NewMessage("Human", f"m{i}") for i in range(100)], context=None, namespace="", now_ms=1,
                 index=True)  # fmt: skip
    generation, messages = store.pending(ref("s"), limit=10_000)
    vectors = np.random.default_rng(3).normal(size=(100, DIMS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ExactVectorIndex(connector, keys, dimensions=DIMS).add(ref("s"), generation, messages, vectors)
    paged = ExactVectorIndex(connector, keys, dimensions=DIMS)
    paged._rows._page_rows = 7  # noqa: SLF001 - the page size is a module constant; a small one here
    expected = (np.argsort(-(vectors @ vectors[42]))[:5] + 1).tolist()
    assert [h.message.id for h in paged.vector_search(ref("s"), vectors[42], 5)] == expected
