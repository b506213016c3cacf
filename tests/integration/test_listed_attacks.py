"""Attacks on the tags kept beside a user's listing and on the user listing's clean-up: a session re-created for
another user, rebound between two reads, hostile ids, and a cluster's clean-up racing a first write."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
import redis

from devserver.embedded_redis import EmbeddedRedis, EmbeddedRedisCluster
from motorhead.adapters.redis_db import session_cache
from motorhead.adapters.redis_db import store as store_module
from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.keys import Keys
from motorhead.adapters.redis_db.store import RedisMemoryStore
from motorhead.core.values import NewMessage, SessionRef, UserRef
from motorhead.ltm.ports import Embedder
from motorhead.settings import Settings
from tests.integration.test_listed_sessions import (  # noqa: F401
    Wired,
    listed,
    on_connector,
    searched,
    tags_of,
    wired,
)

ANA, BRUNO = UserRef("acme", "ana"), UserRef("acme", "bruno")
KEYS = Keys("mh")


# --- a cluster's listing clean-up racing a first write ------------------------------------------------------


class _WriterConnector(RedisConnector):
    """Runs ``before_append`` once, right before the append script: after the write listed its session under its
    user (a cluster's first step), before the script binds it."""

    before_append: Callable[[], object] | None = None

    def run_script(
        self, source: str, keys: Sequence[str], args: Sequence[Any], *, binary: bool = False, charged: bool = True
    ) -> Any:
        if source == store_module._APPEND_SCRIPT and self.before_append is not None:
            hook, self.before_append = self.before_append, None
            hook()
        return super().run_script(source, keys, args, binary=binary, charged=charged)


@pytest.fixture
def cluster_url(redis_cluster: EmbeddedRedisCluster) -> Iterator[str]:
    for node in redis_cluster.nodes:
        with redis.Redis(port=node.port) as client:
            client.flushall()
    yield redis_cluster.url


@pytest.mark.cluster
def test_cluster_user_listing_racing_a_first_write_never_leaves_a_bound_session_unlisted(
    cluster_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = _WriterConnector(Settings(REDIS_URL=cluster_url))
    reader = RedisConnector(Settings(REDIS_URL=cluster_url))
    writes, reads = RedisMemoryStore(writer, KEYS), RedisMemoryStore(reader, KEYS)
    session = SessionRef("acme", "diary")
    # Given GET /sessions?user_id=ana reading ana's listing right after a first write listed the session under her
    # (a cluster's write lists first) and before the write bound it: the reader finds the entry "stale"...
    held: list[Callable[[], None]] = []
    drop = reads._drop_stale
    monkeypatch.setattr(reads, "_drop_stale", lambda user, stale: held.append(lambda: drop(user, stale)))
    writer.before_append = lambda: reads.list_user_sessions(ANA, namespace=None, offset=0, limit=10)
    writes.append(session, [NewMessage("Human", "my secret")], context=None, namespace="", now_ms=1, user_id="ana")
    # ...and drops it after the write finished (after it listed the session again)
    assert len(held) == 1
    held[0]()
    # Then the session, bound to ana, is still listed under her, and forgetting ana deletes it
    bound = writes.session_user(session)
    page = writes.list_user_sessions(ANA, namespace=None, offset=0, limit=10)
    forgotten = writes.delete_user(ANA)
    left = writes.session_user(session), len(writes.read(session, limit=10).messages)
    assert (bound, page, forgotten, left) == ("ana", (["diary"], 1), (1, True), (None, 0))
    writer.close()
    reader.close()


# --- attacks on the tags that held ------------------------------------------------------------------------------

HOSTILE_IDS = [
    "a}:meta",
    "{ana}",
    "x:u:{y}:sessions:tags",
    "100%25",
    "%41lice",
    "é\u202e\u0000nul",
    "ü" * 128,  # 256 UTF-8 bytes
    "*",
    "-1",
    "",
]


def test_user_listing_given_hostile_session_and_user_ids_lists_each_under_its_own_user_only(wired: Wired) -> None:  # noqa: F811
    hostile_user = UserRef("acme", "{ana}:sessions")
    ids = [i for i in HOSTILE_IDS if i]
    for n, session_id in enumerate(ids):
        wired.write(session_id, f"peanut {n}", ANA if n % 2 else hostile_user, now_ms=1_000 + n)
    for _ in range(2):  # cold (tags unknown), then warm
        mine = wired.store.list_user_sessions(ANA, namespace=None, offset=0, limit=100)
        theirs = wired.store.list_user_sessions(hostile_user, namespace=None, offset=0, limit=100)
        assert mine == ([i for n, i in enumerate(ids) if n % 2], len(ids) // 2)
        assert theirs == ([i for n, i in enumerate(ids) if not n % 2], len(ids) - len(ids) // 2)
        hits = searched(wired.retrieval)
        assert {session for session, _ in hits} <= set(mine[0])
        assert all(wired.store.session_user(SessionRef("acme", s)) == "ana" for s, _ in hits)


def test_user_retrieval_given_a_warm_cache_and_the_session_recreated_for_bruno_with_as_many_rows_returns_none(
    wired: Wired,  # noqa: F811
) -> None:
    # Given ana's session of 3 rows, searched (rows and tag cached, the offset 3 sent with her listing's reads)
    for n in range(3):
        wired.write("chat", f"ana peanut {n}", ANA, now_ms=1_000 + n)
    assert len(searched(wired.retrieval)) == 3
    # When it is deleted and re-created for bruno with as many rows, and ana's listing (and tag) forged to name it
    wired.store.delete(SessionRef("acme", "chat"), namespace="")
    for n in range(3):
        wired.write("chat", f"bruno peanut secret {n}", BRUNO, now_ms=2_000 + n)
    wired.client.zadd(KEYS.user_sessions(ANA), {"chat": 3_000})
    wired.client.hset(KEYS.user_session_tags(ANA), "chat", KEYS.session(SessionRef("acme", "chat")).tag)
    # Then ana's search and listing return nothing of bruno's, cold and warm
    for retrieval in (wired.retrieval, wired.fresh_retrieval()):
        assert searched(retrieval) == []
    assert listed(wired, ANA) == ([], 0)


class _DeleteBetweenReads(RedisConnector):
    meanwhile: Callable[[], None] | None = None

    def run_script(
        self, source: str, keys: Sequence[str], args: Sequence[Any], *, binary: bool = False, charged: bool = True
    ) -> Any:
        reply = super().run_script(source, keys, args, binary=binary, charged=charged)
        if source in (session_cache._READ_LISTED, store_module._USER_PAGE) and self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            meanwhile()
        return reply


@pytest.mark.parametrize("backend", ["exact", "search"])
def test_user_retrieval_given_tags_unknown_and_the_session_rebound_between_its_two_scripts_returns_none_of_it(
    redis_server: EmbeddedRedis,
    search_server: EmbeddedRedis,
    local_embedder: Embedder,  # noqa: F811
    backend: str,  # noqa: F811
) -> None:
    server = redis_server if backend == "exact" else search_server
    with redis.Redis(port=server.port) as client:
        client.flushall()
    connector = _DeleteBetweenReads(Settings(REDIS_URL=server.url))
    store, retrieval, write = on_connector(connector, server.url, backend, local_embedder)

    chat = SessionRef("acme", "chat")
    write(chat, "ana likes peanut butter", ANA)
    write(SessionRef("acme", "other"), "ana other peanut", ANA)
    # the tags not known: the first script reads nothing of them, the second is given them
    with redis.Redis(port=server.port) as client:
        client.delete(KEYS.user_session_tags(ANA))

    def rebind() -> None:
        store.delete(chat, namespace="")
        write(chat, "bruno private: peanut diagnosis", BRUNO)
        with redis.Redis(port=server.port) as client:  # and ana's listing forged to still name it
            client.zadd(KEYS.user_sessions(ANA), {"chat": 5_000})

    connector.meanwhile = rebind
    try:
        found = retrieval.retrieve_user(ANA, "peanut", 10)
        listing = store.list_user_sessions(ANA, namespace=None, offset=0, limit=10)
    finally:
        connector.close()
    assert [(hit.session_id, hit.hit.message.content) for hit in found] == [("other", "ana other peanut")]
    assert listing == (["other"], 1)
