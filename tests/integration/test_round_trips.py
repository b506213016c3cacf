"""Each hot route's Redis work, counted on a real Redis: its round trips and the commands the server runs (Lua's
included). A change that adds a round trip or a command to a route fails here; docs/benchmarks.md lists the figures
and `make bench-redis` measures what they cost the server. The routes run through their real services and store."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import redis

from devserver.embedded_redis import EmbeddedRedis, EmbeddedRedisCluster
from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.key_store import RedisKeyStore
from motorhead.adapters.redis_db.keys import Keys
from motorhead.adapters.redis_db.rate_limiter import RedisRateLimiter
from motorhead.adapters.redis_db.store import RedisMemoryStore
from motorhead.composition import long_term
from motorhead.core.api_keys import ApiKeys
from motorhead.core.auth import AccessControl, Credential, OpenAccess
from motorhead.core.clock import now_ms
from motorhead.core.memory import MemoryService
from motorhead.core.values import MemoryLimits, NewMessage, Quotas, SessionJob, SessionRef, UserRef
from motorhead.errors import AuthenticationError
from motorhead.ltm.indexing import IndexerService
from motorhead.ltm.retrieval import RetrievalService
from motorhead.settings import Settings
from tests.redis_counting import Count, counted


class Jobs:
    def __init__(self) -> None:
        self.sent: list[SessionJob] = []

    def send(self, job: SessionJob) -> None:
        self.sent.append(job)


@dataclass
class Routes:
    memory: MemoryService
    unquoted: MemoryService  # the same, with no quotas
    retrieval: RetrievalService
    indexer: IndexerService
    ports: list[int]
    cluster: bool
    connector: RedisConnector

    def count(self, route: object) -> Count:
        with counted(self.ports) as count:
            route()  # type: ignore[operator]
        return count


@pytest.fixture(params=["standalone", pytest.param("cluster", marks=pytest.mark.cluster)])
def routes(
    request: pytest.FixtureRequest, redis_server: EmbeddedRedis, redis_cluster: EmbeddedRedisCluster
) -> Iterator[Routes]:
    cluster = request.param == "cluster"
    with wired(redis_cluster.nodes if cluster else [redis_server], redis_cluster.url if cluster else redis_server.url,
               cluster=cluster, backend="exact") as built:  # fmt: skip
        yield built


@pytest.fixture
def search_routes(search_server: EmbeddedRedis) -> Iterator[Routes]:
    """The routes on Redis 8 with RediSearch, the `search` vector backend."""
    with wired([search_server], search_server.url, cluster=False, backend="search") as built:
        yield built


@contextmanager
def wired(nodes: Sequence[EmbeddedRedis], url: str, *, cluster: bool, backend: str) -> Iterator[Routes]:
    for node in nodes:
        with redis.Redis(port=node.port) as client:
            client.flushall()
    connector = RedisConnector(Settings(REDIS_URL=url, MOTORHEAD_REDIS_MODE="auto"))
    keys = Keys("mh")
    store = RedisMemoryStore(connector, keys)
    embedder = long_term.embedder(Settings(MOTORHEAD_EMBEDDER="local"))
    # as the composition root wires retrieval: the index serves the keyword side too (one read for both)
    chosen = Settings(REDIS_URL=url, MOTORHEAD_VECTOR_BACKEND=backend)
    index, keywords = long_term.retrieval_indexes(chosen, connector, dimensions=embedder.dimensions)
    index.ensure_ready(embedder=embedder.identity, dimensions=embedder.dimensions)
    limits = MemoryLimits(window=12, max_messages_per_request=100, max_message_bytes=65_536,
                          max_context_bytes=65_536, max_session_id_bytes=256)  # fmt: skip
    memory = MemoryService(store=store, limits=limits, summary_jobs=Jobs(), index_jobs=Jobs(), quotas=QUOTAS)
    try:
        yield Routes(
            memory=memory,
            unquoted=MemoryService(store=store, limits=limits, summary_jobs=Jobs(), index_jobs=Jobs()),
            retrieval=RetrievalService(embedder=embedder, index=index, keywords=keywords, users=store),
            indexer=IndexerService(store=store, embedder=embedder, index=index),
            ports=[node.port for node in nodes],
            cluster=cluster,
            connector=connector,
        )
    finally:
        connector.close()


def two(n: int) -> list[NewMessage]:
    return [NewMessage("Human", f"question {n} about peanuts"), NewMessage("AI", f"answer {n}")]


ANA = UserRef("acme", "ana")
QUOTAS = Quotas(sessions=1_000, messages=100_000, bytes=10_000_000, namespaces=10)  # on, as the template's are


def prepared(routes: Routes, session_id: str) -> SessionRef:
    """A session of ana's with six indexed messages, among three more of hers."""
    session = SessionRef("acme", session_id)
    for n in range(3):
        routes.memory.add_memory(session, two(n), user_id="ana")
        routes.indexer.run(SessionJob(session=session, last_id=2 * n + 2))
    routes.unquoted.add_memory(uncounted(session), two(0))  # as a deployment without quotas writes its sessions
    return session


def uncounted(session: SessionRef) -> SessionRef:
    """A sibling of ``session`` only ever written without quotas (a session counted once stays counted)."""
    return SessionRef(session.tenant, f"{session.id}-uncounted")


# Each hot route, what it does, and its budget on a single Redis and on a cluster: (round trips, commands), with the
# tenant's quotas on (as the template's are). A single Redis runs each write as one script (the tenant's usage and the
# listings included); on a cluster the usage and the listings are on other slots. A user's listing and a user-level
# search read the listing and the listed sessions in one script on a single Redis (the sessions' keys from the tags
# kept beside the listing: adapters/redis_db/listed.py); on a cluster the listing is read first.
ROUTES: dict[str, tuple[Callable[[Routes, SessionRef], object], tuple[int, int], tuple[int, int]]] = {
    "GET memory": (lambda r, s: r.memory.get_memory(s), (1, 2), (1, 2)),
    "POST memory": (lambda r, s: r.memory.add_memory(s, two(9)), (1, 9), (3, 11)),
    "POST memory?user_id": (lambda r, s: r.memory.add_memory(s, two(9), user_id="ana"), (1, 10), (5, 13)),
    "POST memory, no quotas": (lambda r, s: r.unquoted.add_memory(uncounted(s), two(9)), (1, 7), (2, 7)),
    "DELETE memory": (lambda r, s: r.memory.delete_memory(s), (1, 12), (5, 11)),
    "GET sessions": (lambda r, s: r.memory.list_sessions("acme", page=1, size=10), (1, 2), (1, 2)),
    "GET sessions?user_id": (
        lambda r, s: r.memory.list_sessions("acme", page=1, size=10, user_id="ana"),
        (1, 8),
        (3, 6),
    ),
    "POST retrieval": (lambda r, s: r.retrieval.retrieve(s, "peanuts", 10), (1, 5), (1, 5)),
    "POST users/{id}/retrieval": (lambda r, s: r.retrieval.retrieve_user(ANA, "peanuts", 10), (1, 11), (5, 17)),
}


@pytest.mark.parametrize("name", list(ROUTES))
def test_route_given_a_warm_process_makes_its_round_trips_and_commands(routes: Routes, name: str) -> None:
    route, standalone, cluster = ROUTES[name]
    # Given a few sessions of ana's, and the route run once already (its scripts loaded, its connections open)
    warm, counted_session = prepared(routes, "warm-up"), prepared(routes, "chat-1")
    for n in range(2):
        prepared(routes, f"other-{n}")
    route(routes, warm)
    # When it runs again
    count = routes.count(lambda: route(routes, counted_session))
    # Then it made its budget's round trips, and the server ran its budget's commands
    expected = cluster if routes.cluster else standalone
    assert (count.round_trips, count.total_commands) == expected, count.commands


@pytest.mark.parametrize("name", list(ROUTES))
def test_route_given_the_rate_limit_on_carries_the_tenants_token_in_its_own_round_trips(
    routes: Routes, name: str
) -> None:
    route, standalone, cluster = ROUTES[name]
    # Given the template's rate limit on (the bucket roomy enough for the whole test), admitted as a REST route admits
    limiter = RedisRateLimiter(routes.connector, Keys("mh"), rate=0.001, burst=1_000, now_ms=now_ms)
    access = AccessControl(OpenAccess(), limiter)

    def admitted(session: SessionRef) -> None:
        _, owed = access.admit_deferring(None, None)
        try:
            route(routes, session)
        finally:
            if owed is not None:
                owed.settle()

    warm, counted_session = prepared(routes, "warm-up"), prepared(routes, "chat-1")
    for n in range(2):
        prepared(routes, f"other-{n}")
    for _ in range(2):  # the first run may take its token apart (a first retrieval checks the index once)
        admitted(warm)
    # When it runs again
    count = routes.count(lambda: admitted(counted_session))
    # Then on a single Redis it makes the round trips it makes without the limit (the token rides on its first one),
    # on a cluster one more (the bucket is on a slot of its own); and exactly one token was taken for each request
    assert count.round_trips == (cluster[0] + 1 if routes.cluster else standalone[0]), count.commands
    with redis.Redis(port=routes.ports[0]) as client:
        if routes.cluster:
            client = redis.RedisCluster(host="127.0.0.1", port=routes.ports[0])
        tokens = float(client.get(Keys("mh").rate_bucket("")).split()[0])
    assert 996.9 < tokens < 997.1  # three requests: two to warm up, the one counted


# On the `search` backend (Redis 8 + RediSearch): a session retrieval sends the texts' read and the KNN query in one
# pipeline (the keyword-only candidates' vectors, when there are any, in a second); a user-level search reads the
# listing with the texts and bindings in one script, then sends the KNN query with the bindings read again after it.
SEARCH_ROUTES: dict[str, tuple[Callable[[Routes, SessionRef], object], tuple[int, int]]] = {
    "POST retrieval": (ROUTES["POST retrieval"][0], (1, 5)),
    "POST users/{id}/retrieval": (ROUTES["POST users/{id}/retrieval"][0], (1, 16)),
}


@pytest.mark.parametrize("name", list(SEARCH_ROUTES))
def test_search_backend_route_given_a_warm_process_makes_its_round_trips_and_commands(
    search_routes: Routes, name: str
) -> None:
    route, budget = SEARCH_ROUTES[name]
    warm, counted_session = prepared(search_routes, "warm-up"), prepared(search_routes, "chat-1")
    for n in range(2):
        prepared(search_routes, f"other-{n}")
    route(search_routes, warm)
    count = search_routes.count(lambda: route(search_routes, counted_session))
    assert (count.round_trips, count.total_commands) == budget, count.commands


# --- credentials ----------------------------------------------------------------------------------------------------


def test_api_keys_given_bad_credentials_refuse_them_with_no_redis_work(routes: Routes) -> None:
    # Given a process that has checked a good key (its copy of the key directory loaded)
    store = RedisKeyStore(routes.connector, Keys("mh"))
    keys = ApiKeys(store, cache_seconds=60)
    key, info = ApiKeys(store).create("acme")
    keys.authenticate(Credential(kind="bearer", secret=key))
    bad = [f"mhk_{n:016x}_{'A' * 43}" for n in range(200)] + [f"mhk_{info.key_id}_{'B' * 43}", "mhk_nope", ""]
    # When unknown ids, a wrong secret and malformed keys come, and the good key again
    with counted(routes.ports) as count:
        for secret in bad:
            with pytest.raises(AuthenticationError):
                keys.authenticate(Credential(kind="bearer", secret=secret))
        keys.authenticate(Credential(kind="bearer", secret=key))
    # Then none of them cost Redis anything
    assert (count.round_trips, count.total_commands) == (0, 0), count.commands


def test_api_keys_given_a_key_revoked_elsewhere_refuse_it_within_a_second(routes: Routes) -> None:
    # Given a process using a key with the default period, and an admin process
    store = RedisKeyStore(routes.connector, Keys("mh"))
    api, admin = ApiKeys(store), ApiKeys(store)
    key, info = admin.create("acme")
    assert api.authenticate(Credential(kind="bearer", secret=key)).tenant == "acme"
    # When the admin revokes it / Then a second later the process refuses it
    assert admin.revoke(info.key_id)
    time.sleep(1.05)
    with pytest.raises(AuthenticationError):
        api.authenticate(Credential(kind="bearer", secret=key))


def test_api_keys_given_keys_changed_elsewhere_read_only_their_records_whatever_the_directory_holds(
    routes: Routes,
) -> None:
    # Given a process holding a directory of 500 keys, checked once per second
    store = RedisKeyStore(routes.connector, Keys("mh"))
    clock = [0.0]
    api, admin = ApiKeys(store, clock=lambda: clock[0]), ApiKeys(store)
    made = [admin.create(f"tenant-{n}") for n in range(500)]
    assert api.authenticate(Credential(kind="bearer", secret=made[0][0])).tenant == "tenant-0"
    # When another process revokes one key and creates one, and a second passes
    assert admin.revoke(made[1][1].key_id)
    new, _ = admin.create("globex")
    clock[0] += 1
    with counted(routes.ports) as count:
        assert api.authenticate(Credential(kind="bearer", secret=made[0][0])).tenant == "tenant-0"
    # Then the check read the revision, the log of the two changes, and those two records: no directory load
    assert count.commands == {"get": 1, "zrangebyscore": 1, "hgetall": 2}, count.commands
    assert count.round_trips in ((3, 4) if routes.cluster else (3,))  # a cluster's two records: one node or two
    with pytest.raises(AuthenticationError):
        api.authenticate(Credential(kind="bearer", secret=made[1][0]))
    assert api.authenticate(Credential(kind="bearer", secret=new)).tenant == "globex"


def test_search_backend_given_its_index_dropped_answers_from_the_index_made_again(search_routes: Routes) -> None:
    # Given a session indexed on the `search` backend, searched once (the process holds the index as ready)
    session = prepared(search_routes, "chat-1")
    before = [hit.message.content for hit in search_routes.retrieval.retrieve(session, "peanuts", 10)]
    # When the index is dropped behind the process's back (its documents stay), and the session searched again
    with redis.Redis(port=search_routes.ports[0]) as client:
        client.execute_command("FT.DROPINDEX", Keys("mh").search_index())
    after = [hit.message.content for hit in search_routes.retrieval.retrieve(session, "peanuts", 10)]
    # Then the KNN query that failed beside the texts' read is run again on the index made again: the same hits
    assert before and after == before
