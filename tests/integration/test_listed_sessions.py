"""A user's listing and user-level search in one script on a single Redis: the tags kept beside the listing
(``adapters/redis_db/listed.py``) are a cache that can cost a round trip, never an answer. Missing, forged or stale
tags; their bound; what a deletion leaves; a process whose cache was filled by other reads. On the store and the
retrieval service (the `exact` and `search` backends as the composition root wires them), on a real Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from redis.client import Pipeline

from devserver.embedded_redis import EmbeddedRedis
from motorhead.adapters.redis_db import session_cache
from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.keys import Keys
from motorhead.adapters.redis_db.store import RedisMemoryStore
from motorhead.composition import long_term
from motorhead.core.values import NewMessage, SearchFilters, SessionJob, SessionRef, UserRef
from motorhead.ltm.indexing import IndexerService
from motorhead.ltm.ports import Embedder
from motorhead.ltm.retrieval import RetrievalService
from motorhead.settings import Settings
from tests.redis_counting import counted

ANA, BRUNO = UserRef("acme", "ana"), UserRef("acme", "bruno")
KEYS = Keys("mh")


@dataclass
class Wired:
    connector: RedisConnector
    store: RedisMemoryStore
    retrieval: RetrievalService
    indexer: IndexerService
    client: redis.Redis
    port: int
    url: str
    embedder: Embedder

    def write(self, session_id: str, text: str, user: UserRef, now_ms: int = 1_000) -> SessionRef:
        session = SessionRef("acme", session_id)
        result = self.store.append(
            session, [NewMessage("Human", text)], context=None, namespace="", now_ms=now_ms, index=True,
            user_id=user.id,
        )  # fmt: skip
        self.indexer.run(SessionJob(session=session, last_id=result.last_id, generation=result.generation))
        return session

    def fresh_retrieval(self) -> RetrievalService:
        """Another process: its own caches, nothing read yet."""
        index, keywords = long_term.retrieval_indexes(
            Settings(REDIS_URL=self.url, MOTORHEAD_VECTOR_BACKEND=self.retrieval_backend),
            self.connector,
            dimensions=self.embedder.dimensions,
        )
        index.ensure_ready(embedder=self.embedder.identity, dimensions=self.embedder.dimensions)
        return RetrievalService(embedder=self.embedder, index=index, keywords=keywords, users=self.store)

    retrieval_backend: str = "exact"


@pytest.fixture(params=["exact", "search"])
def wired(
    request: pytest.FixtureRequest, redis_server: EmbeddedRedis, search_server: EmbeddedRedis, local_embedder: Embedder
) -> Iterator[Wired]:
    server = redis_server if request.param == "exact" else search_server
    client = redis.Redis(port=server.port, decode_responses=True)
    client.flushall()
    connector = RedisConnector(Settings(REDIS_URL=server.url))
    store = RedisMemoryStore(connector, KEYS)
    chosen = Settings(REDIS_URL=server.url, MOTORHEAD_VECTOR_BACKEND=request.param)
    index, keywords = long_term.retrieval_indexes(chosen, connector, dimensions=local_embedder.dimensions)
    index.ensure_ready(embedder=local_embedder.identity, dimensions=local_embedder.dimensions)
    retrieval = RetrievalService(embedder=local_embedder, index=index, keywords=keywords, users=store)
    indexer = IndexerService(store=store, embedder=local_embedder, index=index)
    yield Wired(connector, store, retrieval, indexer, client, server.port, server.url, local_embedder, request.param)
    connector.close()
    client.close()


def tags_of(wired: Wired, user: UserRef) -> dict[str, str]:
    return {str(field): str(tag) for field, tag in wired.client.hgetall(KEYS.user_session_tags(user)).items()}


def listed(wired: Wired, user: UserRef) -> tuple[list[str], int]:
    return wired.store.list_user_sessions(user, namespace=None, offset=0, limit=10)


def searched(retrieval: RetrievalService, user: UserRef = ANA) -> list[tuple[str, str]]:
    return [(hit.session_id, hit.hit.message.content) for hit in retrieval.retrieve_user(user, "peanut", 10)]


# --- the listing --------------------------------------------------------------------------------------------------


def test_user_listing_given_tags_not_known_yet_reads_twice_once_then_once(wired: Wired) -> None:
    # Given ana's three sessions, never listed (their tags not kept yet)
    for n in range(3):
        wired.write(f"chat-{n}", f"peanut {n}", ANA, now_ms=1_000 + n)
    assert tags_of(wired, ANA) == {}
    assert listed(wired, BRUNO) == ([], 0)  # the process's first listing (its script loaded)
    # When her sessions are listed, then listed again
    with counted([wired.port]) as first:
        assert listed(wired, ANA) == (["chat-0", "chat-1", "chat-2"], 3)
    with counted([wired.port]) as again:
        assert listed(wired, ANA) == (["chat-0", "chat-1", "chat-2"], 3)
    # Then the first listing read them again with their tags (kept), and the next one is one round trip
    assert first.round_trips == 2 and again.round_trips == 1
    assert tags_of(wired, ANA) == {f"chat-{n}": KEYS.session(SessionRef("acme", f"chat-{n}")).tag for n in range(3)}


def test_user_listing_given_forged_tags_answers_from_the_bindings_alone_and_repairs_them(wired: Wired) -> None:
    # Given ana's session, bruno's, ana's listing made to name bruno's, and forged tags for both: ana's entry names
    # bruno's keys, the forged entry names ana's keys, and a third entry a key that is not a tag at all
    wired.write("mine", "ana peanut", ANA, now_ms=1_000)
    wired.write("theirs", "bruno peanut", BRUNO, now_ms=2_000)
    wired.write("also-mine", "ana again", ANA, now_ms=3_000)
    wired.client.zadd(KEYS.user_sessions(ANA), {"theirs": 2_000})
    mine, theirs = (KEYS.session(SessionRef("acme", i)).tag for i in ("mine", "theirs"))
    wired.client.hset(KEYS.user_session_tags(ANA), mapping={"mine": theirs, "theirs": mine, "also-mine": "x}:meta"})
    # When ana's sessions are listed
    page = listed(wired, ANA)
    # Then only her sessions are listed, the forged entry is dropped from her listing, and the tags are right again
    assert page == (["mine", "also-mine"], 2)
    assert wired.client.zrange(KEYS.user_sessions(ANA), 0, -1) == ["mine", "also-mine"]
    assert tags_of(wired, ANA) == {"mine": mine, "also-mine": KEYS.session(SessionRef("acme", "also-mine")).tag}


def test_user_listing_given_more_stale_tags_than_its_bound_empties_them(wired: Wired) -> None:
    # Given ana's session and 500 stale tags beside her listing (sessions unlisted behind its back)
    wired.write("mine", "ana peanut", ANA)
    wired.client.hset(KEYS.user_session_tags(ANA), mapping={f"gone-{n}": "ab" * 24 for n in range(500)})
    # When her sessions are listed (her session's tag not kept yet: it is written)
    assert listed(wired, ANA) == (["mine"], 1)
    # Then the tags hold her listed session's alone: emptied past twice the listing and 64, before the write
    assert tags_of(wired, ANA) == {"mine": KEYS.session(SessionRef("acme", "mine")).tag}


def test_delete_given_listed_sessions_leaves_no_tag_of_them_nor_of_a_forgotten_user(wired: Wired) -> None:
    # Given ana's two sessions, listed (their tags kept)
    wired.write("one", "ana peanut", ANA)
    wired.write("two", "ana peanut again", ANA)
    assert listed(wired, ANA) == (["one", "two"], 2)
    # When one is deleted / Then its tag goes with its listing entry
    wired.store.delete(SessionRef("acme", "one"), namespace="")
    assert set(tags_of(wired, ANA)) == {"two"}
    # When ana is forgotten / Then no key of hers is left (the tags included)
    assert wired.store.delete_user(ANA) == (1, True)
    assert [key for key in wired.client.keys("*") if ":u:{" in key] == []


# --- user-level search -------------------------------------------------------------------------------------------


def test_user_retrieval_given_forged_tags_returns_each_message_under_its_own_session_only(wired: Wired) -> None:
    # Given ana's session, bruno's, ana's listing naming bruno's, and the tags swapped: each names the other's keys
    wired.write("mine", "ana peanut notes", ANA)
    wired.write("theirs", "bruno private peanut diagnosis", BRUNO)
    wired.client.zadd(KEYS.user_sessions(ANA), {"theirs": 9_999_999_999_999})
    mine, theirs = (KEYS.session(SessionRef("acme", i)).tag for i in ("mine", "theirs"))
    wired.client.hset(KEYS.user_session_tags(ANA), mapping={"mine": theirs, "theirs": mine})
    # When ana searches, then searches again warm
    for _ in range(2):
        # Then only her message answers, once, under her session
        assert searched(wired.retrieval) == [("mine", "ana peanut notes")]
    assert tags_of(wired, ANA) == {"mine": mine, "theirs": theirs}  # repaired; "theirs" is still bruno's, unread


def test_user_retrieval_given_tags_not_known_yet_answers_the_same_in_two_round_trips_then_one(wired: Wired) -> None:
    # Given ana's sessions, never listed, and the answer a warm process gives
    for n in range(3):
        wired.write(f"chat-{n}", f"peanut {n} for ana", ANA, now_ms=1_000 + n)
    wired.client.delete(KEYS.user_session_tags(ANA))
    # When a fresh process searches (the tags unknown), then searches again
    retrieval = wired.fresh_retrieval()
    assert searched(retrieval, BRUNO) == []  # its index checked once (a process's first search), nothing of ana's read
    with counted([wired.port]) as first:
        cold = searched(retrieval)
    with counted([wired.port]) as warm:
        again = searched(retrieval)
    # Then both answer the same hits, the first in one round trip more than the budget's (on `search`, two more: its
    # KNN query waits for the listing's sessions, which this process has not read before)
    assert cold == again and {session for session, _ in cold} == {"chat-0", "chat-1", "chat-2"}
    cold_trips = 2 if wired.retrieval_backend == "exact" else 3
    assert (first.round_trips, warm.round_trips) == (cold_trips, 1)


def test_user_retrieval_given_a_process_that_read_the_sessions_otherwise_answers_as_a_fresh_one(wired: Wired) -> None:
    # Given ana's sessions, one searched on its own by this process (its rows cached without the listing)
    sessions = [wired.write(f"chat-{n}", f"peanut {n} for ana", ANA, now_ms=1_000 + n) for n in range(3)]
    wired.retrieval.retrieve(sessions[1], "peanut", 10)
    wired.write("chat-1", "more peanut for ana", ANA, now_ms=2_000)
    # When she searches her history here, and in a fresh process
    here, fresh = searched(wired.retrieval), searched(wired.fresh_retrieval())
    # Then both answer the same, every message once
    assert here == fresh
    assert sorted(content for _, content in here) == sorted(
        ["peanut 0 for ana", "peanut 1 for ana", "more peanut for ana", "peanut 2 for ana"]
    )


def test_user_retrieval_given_session_ids_reads_only_those_in_one_round_trip(wired: Wired) -> None:
    # Given ana's three sessions, searched once (the tags kept)
    for n in range(3):
        wired.write(f"chat-{n}", f"peanut {n} for ana", ANA, now_ms=1_000 + n)
    searched(wired.retrieval)
    # When she searches two of them
    with counted([wired.port]) as count:
        found = wired.retrieval.retrieve_user(
            ANA, "peanut", 10, SearchFilters(session_ids=frozenset({"chat-0", "chat-2"}))
        )
    # Then only those answer, in the budget's round trips
    assert {hit.session_id for hit in found} == {"chat-0", "chat-2"}
    assert count.round_trips == (1 if wired.retrieval_backend == "exact" else 2)


def on_connector(
    connector: RedisConnector, url: str, backend: str, local_embedder: Embedder
) -> tuple[RedisMemoryStore, RetrievalService, Callable[[SessionRef, str, UserRef], None]]:
    """The store and user retrieval on ``connector`` (a test's own, that acts between reads), and a write of one
    indexed message to a session of a user."""
    store = RedisMemoryStore(connector, KEYS)
    index, keywords = long_term.retrieval_indexes(
        Settings(REDIS_URL=url, MOTORHEAD_VECTOR_BACKEND=backend), connector, dimensions=local_embedder.dimensions
    )
    index.ensure_ready(embedder=local_embedder.identity, dimensions=local_embedder.dimensions)
    indexer = IndexerService(store=store, embedder=local_embedder, index=index)
    retrieval = RetrievalService(embedder=local_embedder, index=index, keywords=keywords, users=store)

    def write(session: SessionRef, text: str, user: UserRef) -> None:
        done = store.append(session, [NewMessage("Human", text)], context=None, namespace="", now_ms=1_000,
                            index=True, user_id=user.id)  # fmt: skip
        indexer.run(SessionJob(session=session, last_id=done.last_id, generation=done.generation))

    return store, retrieval, write


class _RebindAfterListing(RedisConnector):
    """A connector that runs ``meanwhile`` once, right after the script that read a user's listing with its sessions
    returned: a concurrent request between that read and the `search` backend's KNN query; or, when the KNN query
    rides in the script's pipeline (a process that read the listing before), right before that pipeline: the
    sessions it read before are no longer those bound to the user."""

    meanwhile: Callable[[], None] | None = None

    def run_script_beside(
        self,
        source: str,
        keys: Sequence[str],
        args: Sequence[Any],
        beside: Callable[[Pipeline], object],
        *,
        binary: bool = False,
    ) -> tuple[Any, list[Any]]:
        if source == session_cache._READ_LISTED and self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            meanwhile()
        return super().run_script_beside(source, keys, args, beside, binary=binary)

    def run_script(
        self, source: str, keys: Sequence[str], args: Sequence[Any], *, binary: bool = False, charged: bool = True
    ) -> Any:
        reply = super().run_script(source, keys, args, binary=binary, charged=charged)
        if source == session_cache._READ_LISTED and self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            meanwhile()
        return reply


def test_user_retrieval_given_a_session_rebound_between_its_reads_returns_nothing_of_theirs(
    search_server: EmbeddedRedis, local_embedder: Embedder
) -> None:
    # Given ana's two sessions on the `search` backend, searched once (tags kept, texts cached)
    with redis.Redis(port=search_server.port) as client:
        client.flushall()
    connector = _RebindAfterListing(Settings(REDIS_URL=search_server.url))
    store, retrieval, write = on_connector(connector, search_server.url, "search", local_embedder)

    chat, other = SessionRef("acme", "chat"), SessionRef("acme", "other")
    write(chat, "ana likes peanut butter", ANA)
    write(other, "ana other peanut", ANA)
    assert len(retrieval.retrieve_user(ANA, "peanut", 10)) == 2

    # When, right after her listing and texts were read, the session is deleted and bound to bruno (indexed again)
    def rebind() -> None:
        store.delete(chat, namespace="")
        write(chat, "bruno private: peanut diagnosis", BRUNO)

    connector.meanwhile = rebind
    try:
        found = retrieval.retrieve_user(ANA, "peanut", 10)
    finally:
        connector.close()
    # Then the KNN query's bindings, read again after it, leave that session out: nothing of bruno's
    assert [(hit.session_id, hit.hit.message.content) for hit in found] == [("other", "ana other peanut")]


def test_search_user_retrieval_given_a_session_listed_since_the_process_last_read_finds_it_then_knows_it(
    search_server: EmbeddedRedis, local_embedder: Embedder
) -> None:
    # Given ana's session searched once on the `search` backend (this process knows her listing's sessions)
    with redis.Redis(port=search_server.port) as client:
        client.flushall()
    connector = RedisConnector(Settings(REDIS_URL=search_server.url))
    store, retrieval, write = on_connector(connector, search_server.url, "search", local_embedder)
    write(SessionRef("acme", "chat"), "ana likes peanut butter", ANA)
    assert len(retrieval.retrieve_user(ANA, "peanut", 10)) == 1
    # When a second session of hers is written, then found: the listing read again with the new session's tag (it
    # was not kept yet), and the KNN query sent beside the first read covered only the first session, so it is sent
    # again over both (3 round trips); the next search knows both (1)
    write(SessionRef("acme", "other"), "ana other peanut", ANA)
    trips = []
    for _ in range(2):
        with counted([search_server.port]) as count:
            found = retrieval.retrieve_user(ANA, "peanut", 10)
        trips.append(count.round_trips)
        assert sorted(hit.session_id for hit in found) == ["chat", "other"]
    connector.close()
    assert trips == [3, 1]
