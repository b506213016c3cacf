"""The Redis store, run twice: on a standalone Redis and on a 3-node Redis Cluster (all started by fixtures)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import redis
from redis.cluster import RedisCluster

from devserver.embedded_redis import EmbeddedRedis, EmbeddedRedisCluster
from motorhead.keys import Keys
from motorhead.redis_client import RedisConnector
from motorhead.redis_store import RedisMemoryStore
from motorhead.settings import Settings

HOSTILE_IDS = ["user@example.com:{chat} *1 ünï", "{", "}", "a-b", "*", " ", "会话", "x" * 256, "s:1", "s:{1}"]


@pytest.fixture(params=["standalone", pytest.param("cluster", marks=pytest.mark.cluster)])
def connector(
    request: pytest.FixtureRequest, redis_server: EmbeddedRedis, redis_cluster: EmbeddedRedisCluster
) -> Iterator[RedisConnector]:
    """A connector in auto mode on an emptied server of each kind."""
    url = redis_server.url if request.param == "standalone" else redis_cluster.url
    for node in [redis_server] if request.param == "standalone" else redis_cluster.nodes:
        with redis.Redis(port=node.port) as client:
            client.flushall()
    conn = RedisConnector(Settings(REDIS_URL=url, MOTORHEAD_REDIS_MODE="auto"))
    yield conn
    conn.close()


@pytest.fixture
def store(connector: RedisConnector) -> RedisMemoryStore:
    return RedisMemoryStore(connector, Keys("mh"))


def test_connector_given_auto_mode_picks_the_right_client(
    request: pytest.FixtureRequest, connector: RedisConnector
) -> None:
    is_cluster = "cluster" in request.node.callspec.id
    assert isinstance(connector.client(), RedisCluster) is is_cluster


def test_append_given_messages_assigns_increasing_ids_and_counts(store: RedisMemoryStore) -> None:
    # Given two appends / When the session is read
    assert store.append("s", [("Human", "a"), ("AI", "b")], context=None, namespace="", now_ms=1) == 2
    assert store.append("s", [("Human", "c")], context="sum", namespace="", now_ms=2) == 3
    snapshot = store.read("s", limit=10)
    # Then ids follow the order of arrival and the newest comes first
    assert [(m.id, m.content) for m in snapshot.messages] == [(3, "c"), (2, "b"), (1, "a")]
    assert (snapshot.context, snapshot.tokens) == ("sum", 0)
    assert [m.created_at for m in snapshot.messages] == [2, 1, 1]


def test_read_given_limit_returns_exactly_that_many_newest(store: RedisMemoryStore) -> None:
    store.append("s", [("Human", str(i)) for i in range(20)], context=None, namespace="", now_ms=1)
    assert [m.content for m in store.read("s", limit=5).messages] == ["19", "18", "17", "16", "15"]


def test_append_given_concurrent_writers_loses_and_duplicates_nothing(store: RedisMemoryStore) -> None:
    # Given 8 writers posting 40 batches of 3 messages each into one session
    writers, batches = 8, 40

    def write(writer: int) -> None:
        for batch in range(batches):
            store.append(
                "busy",
                [("Human", f"{writer}:{batch}:{k}") for k in range(3)],
                context=None,
                namespace="",
                now_ms=1,
            )

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # When everything is read back
    stored = store.read("busy", limit=10_000).messages
    # Then every message is there once, ids are 1..N, and each batch kept consecutive ids in its own order
    assert sorted(m.id for m in stored) == list(range(1, writers * batches * 3 + 1))
    by_content = {m.content: m.id for m in stored}
    assert len(by_content) == writers * batches * 3
    for writer in range(writers):
        for batch in range(batches):
            ids = [by_content[f"{writer}:{batch}:{k}"] for k in range(3)]
            assert ids == list(range(ids[0], ids[0] + 3))


@pytest.mark.parametrize("session_id", HOSTILE_IDS)
def test_store_given_hostile_id_keeps_sessions_apart(store: RedisMemoryStore, session_id: str) -> None:
    # Given a hostile session and a neighbour
    store.append(session_id, [("Human", "mine")], context="ctx", namespace="ns", now_ms=1)
    store.append("neighbour", [("Human", "theirs")], context=None, namespace="ns", now_ms=2)
    # Then each reads only its own, and deleting one leaves the other whole
    assert [m.content for m in store.read(session_id, limit=10).messages] == ["mine"]
    store.delete(session_id, namespace="ns")
    assert store.read(session_id, limit=10).messages == []
    assert [m.content for m in store.read("neighbour", limit=10).messages] == ["theirs"]
    assert store.list_sessions(namespace="ns", offset=0, limit=10) == (["neighbour"], 1)


def test_delete_given_session_in_several_namespaces_unlists_it_everywhere(store: RedisMemoryStore) -> None:
    for ns in ("", "a", "b"):
        store.append("s", [("Human", ns)], context=None, namespace=ns, now_ms=1)
    store.delete("s", namespace="")
    assert [store.list_sessions(namespace=ns, offset=0, limit=10) for ns in ("", "a", "b")] == [([], 0)] * 3
    assert store.read("s", limit=10).messages == []


def test_list_sessions_given_offset_pages_in_write_order(store: RedisMemoryStore) -> None:
    for i in range(5):
        store.append(f"s{i}", [("Human", "x")], context=None, namespace="", now_ms=100 + i)
    store.append("s0", [("Human", "again")], context=None, namespace="", now_ms=200)
    assert store.list_sessions(namespace="", offset=0, limit=2) == (["s1", "s2"], 5)
    assert store.list_sessions(namespace="", offset=4, limit=2) == (["s0"], 5)
