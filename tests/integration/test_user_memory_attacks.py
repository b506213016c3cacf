"""User-level memory attacked: another user's or tenant's messages read through user retrieval, hostile user ids,
namespace and prefix tricks, binding races, a session rebound while a search runs, GDPR erasure that leaves a key
behind or touches someone else's, limits, scopes, and what the logs say of a user. Over real HTTP through the local
gateway with real API keys where the attack is an HTTP one; on the store and the retrieval service where it is an
interleaving (made deterministic by a hook at the point where the race window lies).

Tests whose docstring starts "Fixed" showed a defect before its fix (the docstring says which).
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
import redis
import requests

from devserver.embedded_redis import EmbeddedRedis, EmbeddedRedisCluster, free_port
from devserver.local_sqs import LocalSqs
from motorhead.adapters.redis_db import store as store_module
from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.exact_index import ExactVectorIndex
from motorhead.adapters.redis_db.keys import Keys
from motorhead.adapters.redis_db.keyword_index import RedisKeywordIndex
from motorhead.adapters.redis_db.search_index import SearchVectorIndex
from motorhead.adapters.redis_db.store import RedisMemoryStore
from motorhead.adapters.redis_db.tenant_migration import RedisSessionAdopter
from motorhead.composition import long_term
from motorhead.core.values import NO_TENANT, NewMessage, SessionJob, SessionRef, UserRef
from motorhead.errors import ConflictError
from motorhead.ltm.indexing import IndexerService
from motorhead.ltm.ports import Embedder, KeywordIndex, VectorIndex
from motorhead.ltm.retrieval import RetrievalService
from motorhead.observability import logger, user_hash
from motorhead.settings import Settings
from tests.integration.conftest import HttpCaller, LtmDeployment, SecureApi, ltm_gateway
from tests.support import cold_start, load_event

VICTIM = "ana@example.com"


# --- fixtures and helpers ----------------------------------------------------------------------------------------


Deployment = LtmDeployment
As = HttpCaller


@pytest.fixture
def ltm(
    request: pytest.FixtureRequest, redis_server: EmbeddedRedis, search_server: EmbeddedRedis, local_sqs: LocalSqs
) -> Iterator[Deployment]:
    """The exact backend, or with ``indirect`` parametrization "search" the RediSearch one."""
    backend = getattr(request, "param", "exact")
    with ltm_gateway(search_server if backend == "search" else redis_server, local_sqs, backend) as running:
        yield running


@dataclass
class Stack:
    """The store, the indexer and user retrieval on one Redis, without HTTP."""

    connector: RedisConnector
    store: RedisMemoryStore
    indexer: IndexerService
    index: VectorIndex
    embedder: Embedder
    client: redis.Redis
    keywords: KeywordIndex | None = None  # the index itself, as the composition root wires it ("exact-owned")

    def retrieval(self, embedder: Embedder | None = None) -> RetrievalService:
        return RetrievalService(
            embedder=embedder or self.embedder,
            index=self.index,
            keywords=self.keywords or RedisKeywordIndex(self.connector, Keys("mh")),
            users=self.store,
        )

    def write(self, session: SessionRef, text: str, user_id: str | None) -> None:
        result = self.store.append(
            session, [NewMessage("Human", text)], context=None, namespace="", now_ms=1_000, index=True, user_id=user_id
        )
        self.indexer.run(SessionJob(session=session, last_id=result.last_id, generation=result.generation))


@pytest.fixture(scope="module")
def local_embedder() -> Embedder:
    return long_term.embedder(Settings(MOTORHEAD_EMBEDDER="local"))


@pytest.fixture(params=["exact", "exact-owned", "search", "search-owned"])
def stack(
    request: pytest.FixtureRequest, redis_server: EmbeddedRedis, search_server: EmbeddedRedis, local_embedder: Embedder
) -> Iterator[Stack]:
    """``exact-owned`` and ``search-owned``: the index serving the keyword side too (production's wiring), whose
    user-level search reads the listing with each session's binding and rows (the search one the bindings again after
    its KNN query); the others check the bindings before and after their reads."""
    server = redis_server if not request.param.startswith("search") else search_server
    client = redis.Redis(port=server.port, decode_responses=True)
    client.flushall()
    connector = RedisConnector(Settings(REDIS_URL=server.url))
    keys = Keys("mh")
    store = RedisMemoryStore(connector, keys)
    index: VectorIndex
    keywords: KeywordIndex | None = None
    if request.param == "exact":
        index = ExactVectorIndex(connector, keys, dimensions=local_embedder.dimensions)
    elif request.param.endswith("-owned"):
        index, keywords = long_term.retrieval_indexes(
            Settings(REDIS_URL=server.url, MOTORHEAD_VECTOR_BACKEND=request.param.removesuffix("-owned")),
            connector,
            dimensions=local_embedder.dimensions,
        )
        assert index.checks_owner == (request.param == "exact-owned")
    else:
        index = SearchVectorIndex(connector, keys)
    index.ensure_ready(embedder=local_embedder.identity, dimensions=local_embedder.dimensions)
    indexer = IndexerService(store=store, embedder=local_embedder, index=index)
    yield Stack(connector, store, indexer, index, local_embedder, client, keywords)
    connector.close()
    client.close()


def contents(response: requests.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [hit["content"] for hit in response.json()]


def snapshot(client: redis.Redis) -> dict[str, Any]:
    return {str(key): client.dump(key) for key in client.keys("*")}


def is_json_error(response: requests.Response, status: int) -> bool:
    return response.status_code == status and set(response.json()) == {"error"}


# --- reading another user's or tenant's messages -----------------------------------------------------------------


@pytest.mark.parametrize("ltm", ["exact", "search"], indirect=True)
def test_user_retrieval_given_other_users_and_tenants_session_ids_returns_nothing_of_theirs(ltm: Deployment) -> None:
    acme, globex = As(ltm.base_url, ltm.key("acme")), As(ltm.base_url, ltm.key("globex"))
    # Given Ana of acme, Bruno of acme, and globex's Ana, each with a secret, globex's session ids equal to acme's
    assert acme.post("ana-1", [("Human", "ana secret: peanut allergy")], user_id="ana").status_code == 200
    assert acme.post("bruno-1", [("Human", "bruno secret: peanut debts")], user_id="bruno").status_code == 200
    assert acme.post("loose", [("Human", "unbound secret: peanut farm")]).status_code == 200
    assert globex.post("ana-1", [("Human", "globex secret: peanut merger")], user_id="ana").status_code == 200
    assert globex.post("g-2", [("Human", "globex secret two: peanut fund")], user_id="ana").status_code == 200
    assert ltm.indexer.drain() == 5
    every_id = ["ana-1", "bruno-1", "loose", "g-2", "ana-1 ", "ANA-1"]
    # When acme's Ana names every session id she can think of, with the biggest limit, and every filter combination
    for body in ({}, {"session_ids": every_id}, {"session_ids": every_id, "namespace": ""}, {"roles": ["Human"]}):
        found = acme.search("ana", "peanut secret", limit=100, **body)
        # Then only her own message comes back
        assert contents(found) == ["ana secret: peanut allergy"], body
        assert {hit["session_id"] for hit in found.json()} == {"ana-1"}
    # And another user's session ids alone find nothing; the unbound session belongs to no user
    assert acme.search("ana", "peanut", session_ids=["bruno-1", "loose", "g-2"]).json() == []
    # And globex's Ana sees her two sessions only, under the prefix too
    mounted = As(ltm.base_url, globex.headers["Authorization"].split()[1], prefix="/motorhead")
    assert sorted(contents(mounted.search("ana", "peanut secret", limit=100, session_ids=every_id))) == [
        "globex secret two: peanut fund",
        "globex secret: peanut merger",
    ]
    # And the tenant-wide listing under the prefix is per tenant too
    assert mounted.sessions(user_id="ana").json() == ["ana-1", "g-2"]


HOSTILE_IDS = [
    "%41na",  # a percent-escape: must stay literally "%41na", never "Ana"
    "Ana",
    "ana",
    "{ana}",
    "ana}{",
    "*",
    "ana/retrieval",  # an encoded slash: never the retrieval route of user "ana"
    "..%2F..%2Fsessions",
    "caf\u00e9",  # NFC
    "cafe\u0301",  # NFD: another user
    "\u202eana",  # right-to-left override
    "ana\x00bruno",
    " ana ",
    "u" * 256,
    "\U0001f600" * 64,  # 256 UTF-8 bytes
]


def test_user_routes_given_hostile_user_ids_keep_every_user_apart(ltm: Deployment) -> None:
    acme = As(ltm.base_url, ltm.key("acme"))
    # Given one session per hostile user id, each with its own secret
    for n, user_id in enumerate(HOSTILE_IDS):
        assert acme.post(f"s{n}", [("Human", f"secret number {n} peanut")], user_id=user_id).status_code == 200, n
    assert ltm.indexer.drain() == len(HOSTILE_IDS)
    # Then each user lists and finds exactly its own session, through both mounts
    for n, user_id in enumerate(HOSTILE_IDS):
        assert acme.sessions(user_id=user_id).json() == [f"s{n}"], user_id
        assert contents(acme.search(user_id, "secret peanut", limit=100)) == [f"secret number {n} peanut"], user_id
    mounted = As(ltm.base_url, acme.headers["Authorization"].split()[1], prefix="/motorhead")
    assert contents(mounted.search("ana/retrieval", "secret", limit=100)) == ["secret number 6 peanut"]
    # When "*", "ana/retrieval" and the percent-escape are forgotten (the last under the prefix)
    assert acme.forget("*").json() == {"status": "Ok", "deleted_sessions": 1}
    assert acme.forget("ana/retrieval").json() == {"status": "Ok", "deleted_sessions": 1}
    assert mounted.forget("%41na").json() == {"status": "Ok", "deleted_sessions": 1}
    # Then only those three are gone
    for n, user_id in enumerate(HOSTILE_IDS):
        gone = user_id in {"*", "ana/retrieval", "%41na"}
        assert acme.sessions(user_id=user_id).json() == ([] if gone else [f"s{n}"]), user_id
        assert len(contents(acme.search(user_id, "secret", limit=100))) == (0 if gone else 1), user_id
    # And an id over 256 UTF-8 bytes is a clear 400 on every route, storing nothing
    too_long = "\U0001f600" * 64 + "x"
    for response in (
        acme.post("new", [("Human", "x")], user_id=too_long),
        acme.sessions(user_id=too_long),
        acme.search(too_long, "x"),
        acme.forget(too_long),
    ):
        assert is_json_error(response, 400) and "user id" in response.json()["error"], response.text
    assert acme.call("GET", "/sessions/new/memory").json()["messages"] == []


def test_user_retrieval_given_namespace_tricks_admits_only_the_users_sessions_in_it(ltm: Deployment) -> None:
    acme = As(ltm.base_url, ltm.key("acme"))
    # Given Bruno's session in namespace "health", Ana's in none, and Ana's in "support"
    assert acme.post("b", [("Human", "bruno health peanut")], user_id="bruno", namespace="health").status_code == 200
    assert acme.post("a", [("Human", "ana default peanut")], user_id="ana").status_code == 200
    assert acme.post("c", [("Human", "ana support peanut")], user_id="ana", namespace="support").status_code == 200
    assert ltm.indexer.drain() == 3
    # Then a namespace of someone else's, a pattern, or one never used finds nothing of anyone
    for namespace in ("health", "*", "?", "heal*", "health\x00", "nope"):
        assert acme.search("ana", "peanut", namespace=namespace, limit=100).json() == [], namespace
        assert acme.sessions(user_id="ana", namespace=namespace).json() == [], namespace
    # And "" is the sessions written without a namespace; "support" is hers in it
    assert contents(acme.search("ana", "peanut", namespace="", limit=100)) == ["ana default peanut"]
    assert contents(acme.search("ana", "peanut", namespace="support", limit=100)) == ["ana support peanut"]
    assert acme.sessions(user_id="ana", namespace="support").json() == ["c"]


# --- limits and bad input: JSON errors, never a 5xx -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"text": "x", "limit": 101}, 422),
        ({"text": "x", "limit": 10**12}, 422),
        ({"text": "x", "limit": -1}, 422),
        ({"text": "x", "limit": "all"}, 422),
        ({"text": "x" * 8_193}, 422),
        ({"text": "\ud800"}, 422),
        ({"text": "x", "session_ids": ["\ud800"]}, 422),
        ({"text": "x", "session_ids": ["s" * 257]}, 422),
        ({"text": "x", "session_ids": [""]}, 422),
        ({"text": "x", "session_ids": "s"}, 422),
        ({"text": "x", "namespace": "\udfff"}, 422),
        ({"text": "x", "roles": ["r"] * 65}, 422),
        ({"text": "x", "roles": [""]}, 422),
        ({"text": "x", "until": -5}, 422),
        ({"text": "x", "since": "yesterday"}, 422),
        ({"text": "x", "session_ids": None, "namespace": None, "roles": None}, 200),
        ({"text": "x", "session_ids": []}, 200),
        ({"text": "x", "since": 10**30, "until": 10**31}, 200),
        ({"text": "x", "since": 5, "until": 4}, 200),
        ({"text": "\x00\u202e\U0001f600 {*} %00"}, 200),
    ],
)
def test_user_retrieval_given_hostile_bodies_answers_json_never_a_5xx(
    ltm: Deployment, body: dict[str, Any], status: int
) -> None:
    acme = As(ltm.base_url, ltm.key("acme"))
    assert acme.post("s", [("Human", "hello peanut")], user_id="ana").status_code == 200
    assert ltm.indexer.drain() == 1
    response = acme.call("POST", "/users/ana/retrieval", body)
    assert response.status_code == status, response.text
    if status != 200:
        assert set(response.json()) == {"error"}
    elif body.get("session_ids") == [] or "since" in body:
        assert response.json() == []


def test_user_retrieval_given_huge_bodies_refuses_or_answers_fast(ltm: Deployment) -> None:
    acme = As(ltm.base_url, ltm.key("acme"))
    assert acme.post("s", [("Human", "hello peanut")], user_id="ana").status_code == 200
    assert ltm.indexer.drain() == 1
    # A thousand 256-byte session ids of nobody: 200 and nothing (the body is about 260 kB, under the 1 MiB limit)
    many = [f"{n:04d}" + "x" * 252 for n in range(1_000)]
    assert acme.search("ana", "peanut", session_ids=many, limit=100).json() == []
    # And with hers among them, hers only
    assert contents(acme.search("ana", "peanut", session_ids=[*many[:999], "s"], limit=100)) == ["hello peanut"]
    assert is_json_error(acme.search("ana", "peanut", session_ids=[*many, "s"]), 422)
    # A body over the limit: 413 before anything is parsed
    assert is_json_error(acme.search("ana", "x", padding="p" * 1_100_000), 413)
    # Paging far beyond the end of a user's listing, and the listing's own limits
    assert acme.call("GET", "/sessions", user_id="ana", page=1_000_000, size=100).json() == []
    assert is_json_error(acme.call("GET", "/sessions", user_id="ana", size=101), 422)


def test_post_given_an_invalid_utf8_user_id_in_the_query_answers_400(ltm: Deployment) -> None:
    """Fixed (low): ``?user_id=%FF`` is not percent-encoded UTF-8, yet it is not refused: the query parser replaces
    the byte with U+FFFD and binds the session to user "\ufffd", so ``%FF`` and ``%FE`` (and the real "\ufffd")
    are one user. A session id that is not UTF-8 is a 400 at the gateway; the spec says a user id follows the same
    rules ("decoded once ..., clear 400 otherwise"). functions/post_memory/app.py:17 and
    functions/list_sessions/app.py:26 take ``user_id`` as a plain ``str`` query parameter."""
    acme = As(ltm.base_url, ltm.key("acme"))
    raw = requests.post(
        f"{ltm.base_url}/sessions/s1/memory?user_id=%FF",
        json={"messages": [{"role": "Human", "content": "for user 0xFF"}]},
        headers=acme.headers,
        timeout=30,
    )
    bound = ltm.client.hget(Keys("mh").session(SessionRef("acme", "s1")).meta, "user")
    assert raw.status_code == 400 and bound is None, (raw.status_code, raw.text, bound)


# --- binding races -------------------------------------------------------------------------------------------------


def test_post_given_concurrent_first_writes_of_different_users_binds_exactly_one(secure: SecureApi) -> None:
    acme = As(secure.base_url, secure.key("acme"))
    users = [f"user-{n}" for n in range(8)]
    rounds = 6
    for r in range(rounds):
        session_id = f"race-{r}"
        barrier = threading.Barrier(len(users))
        answers: dict[str, int] = {}

        def write(user_id: str, session_id: str, barrier: threading.Barrier, answers: dict[str, int]) -> None:
            barrier.wait()
            answers[user_id] = acme.post(session_id, [("Human", f"by {user_id}")], user_id=user_id).status_code

        threads = [threading.Thread(target=write, args=(user_id, session_id, barrier, answers)) for user_id in users]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # Then exactly one user won, every other got 409
        winners = [user_id for user_id, status in answers.items() if status == 200]
        assert len(winners) == 1 and sorted(answers.values()) == [200] + [409] * (len(users) - 1), answers
        # And the session holds the winner's message only, and only the winner lists it
        memory = acme.call("GET", f"/sessions/{session_id}/memory").json()
        assert [m["content"] for m in memory["messages"]] == [f"by {winners[0]}"]
        for user_id in users:
            listed = acme.sessions(user_id=user_id).json()
            assert (session_id in listed) == (user_id == winners[0]), (user_id, listed)


def test_store_given_racing_binds_on_standalone_and_cluster_leaves_losers_nothing(connector: RedisConnector) -> None:
    store = RedisMemoryStore(connector, Keys("mh"))
    session = SessionRef("acme", "contested")
    users = [f"u{n}" for n in range(6)]
    barrier = threading.Barrier(len(users))
    outcome: dict[str, str] = {}

    def write(user_id: str) -> None:
        barrier.wait()
        try:
            store.append(session, [NewMessage("Human", user_id)], context=None, namespace="", now_ms=1, user_id=user_id)
            outcome[user_id] = "bound"
        except ConflictError:
            outcome[user_id] = "refused"

    threads = [threading.Thread(target=write, args=(user_id,)) for user_id in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (winner,) = [user_id for user_id, result in outcome.items() if result == "bound"]
    assert [m.content for m in store.read(session, limit=10).messages] == [winner]
    for user_id in users:
        listed, total = store.list_user_sessions(UserRef("acme", user_id), namespace=None, offset=0, limit=10)
        assert (listed, total) == ((["contested"], 1) if user_id == winner else ([], 0)), user_id


# --- a session deleted and rebound while another user's search runs ----------------------------------------------


class _RebindDuringEmbedding:
    """The query's embedding (a network call with a hosted embedder: the longest step of a search, after the user's
    sessions were checked and before their rows are read), during which ``meanwhile`` runs once."""

    def __init__(self, inner: Embedder, meanwhile: Callable[[], None]) -> None:
        self._inner = inner
        self._meanwhile: Callable[[], None] | None = meanwhile
        self.identity = inner.identity
        self.dimensions = inner.dimensions

    def embed(self, texts: Sequence[str]) -> Any:
        if self._meanwhile is not None:
            meanwhile, self._meanwhile = self._meanwhile, None
            meanwhile()
        return self._inner.embed(texts)


def test_user_retrieval_given_the_session_rebound_to_another_user_mid_search_returns_nothing_of_theirs(
    stack: Stack,
) -> None:
    """Fixed (medium): a user's search checks which sessions are bound to the user (store.user_sessions,
    adapters/redis_db/store.py:291-316), then embeds the query, then reads those sessions' rows
    (ltm/retrieval.py:121-136: texts_many / vector_search_many; session_cache.py:50 _READ_MANY, :125 get_many;
    search_index.py:281 FT.SEARCH by tag), and nothing checks the binding (or the session's generation) again. A
    session deleted and bound to another user in between is read as the first user's: Ana's search returns Bruno's
    message. The window is the query's embedding call (up to 2 x 5 s with a hosted embedder) plus the reads."""
    chat = SessionRef("acme", "chat")
    stack.write(chat, "ana likes peanut butter", "ana")

    def rebind() -> None:
        stack.store.delete(chat, namespace="")
        stack.write(chat, "bruno private: peanut diagnosis", "bruno")

    found = stack.retrieval(_RebindDuringEmbedding(stack.embedder, rebind)).retrieve_user(
        UserRef("acme", "ana"), "peanut", 10
    )
    leaked = [hit.hit.message.content for hit in found]
    assert leaked == [], f"Ana's search returned Bruno's messages: {leaked}"


def test_user_retrieval_given_the_session_deleted_mid_search_returns_nothing_of_it(stack: Stack) -> None:
    chat = SessionRef("acme", "chat")
    stack.write(chat, "ana likes peanut butter", "ana")
    stack.write(SessionRef("acme", "other"), "ana other peanut", "ana")
    found = stack.retrieval(
        _RebindDuringEmbedding(stack.embedder, lambda: stack.store.delete(chat, namespace=""))
    ).retrieve_user(UserRef("acme", "ana"), "peanut", 10)
    assert [hit.session_id for hit in found] == ["other"]


def test_user_retrieval_given_a_listing_naming_another_users_session_returns_nothing_of_it(stack: Stack) -> None:
    # Given Bruno's session, and Ana's listing made to name it too (a stale or forged entry: the listing is a hint)
    stack.write(SessionRef("acme", "mine"), "ana peanut notes", "ana")
    stack.write(SessionRef("acme", "theirs"), "bruno private peanut diagnosis", "bruno")
    stack.client.zadd(Keys("mh").user_sessions(UserRef("acme", "ana")), {"theirs": 9_999_999_999_999})
    # When Ana searches (and searches again, warm, with the rows of both sessions cached)
    for _ in range(2):
        found = stack.retrieval().retrieve_user(UserRef("acme", "ana"), "peanut", 10)
        # Then only her own session answers: the binding decides, read with the rows
        assert {hit.session_id for hit in found} == {"mine"}, [hit.hit.message.content for hit in found]


# --- forgetting a user --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ltm", ["exact", "search"], indirect=True)
def test_delete_user_given_twins_of_the_victim_removes_every_key_of_the_victim_and_nothing_else(
    ltm: Deployment,
) -> None:
    acme, globex = As(ltm.base_url, ltm.key("acme")), As(ltm.base_url, ltm.key("globex"))
    client = ltm.client
    # Given the victim's twins: the same id in another tenant, ids that differ by case, a space, a brace; an unbound
    # session; another user's session in the victim's namespace. Their keys must survive byte for byte
    assert globex.post("v-1", [("Human", "globex twin")], user_id=VICTIM, namespace="health").status_code == 200
    for n, twin in enumerate([VICTIM.upper(), VICTIM + " ", "{" + VICTIM + "}", VICTIM[:-1]]):
        assert acme.post(f"twin-{n}", [("Human", f"twin {n}")], user_id=twin, namespace="health").status_code == 200
    assert acme.post("loose", [("Human", "no user")], namespace="health").status_code == 200
    assert acme.post("bruno", [("Human", "bruno")], user_id="bruno", namespace="health").status_code == 200
    assert ltm.indexer.drain() == 7
    survivors = snapshot(client)
    # And the victim's sessions, indexed, in two namespaces, one with a summary, one written again without a user
    assert acme.post("v-1", [("Human", "victim one")], user_id=VICTIM, namespace="health").status_code == 200
    assert acme.post("v-2", [("Human", "victim two")], user_id=VICTIM).status_code == 200
    body = {"messages": [{"role": "Human", "content": "x"}], "context": "victim summary"}
    assert acme.call("POST", "/sessions/v-3/memory", body, user_id=VICTIM).status_code == 200
    assert acme.post("v-1", [("AI", "unnamed write")], namespace="other").status_code == 200
    assert ltm.indexer.drain() == 3  # v-1's second write rides on its first one's index job (the lease)
    assert ltm.client.llen(Keys("mh").session(SessionRef("acme", "v-1")).docs) == 2
    added = set(client.keys("*")) - set(survivors)
    assert any(":u:{" in key for key in added) and len(added) > 10
    # When the victim is forgotten (under the prefix)
    mounted = As(ltm.base_url, acme.headers["Authorization"].split()[1], prefix="/motorhead")
    assert mounted.forget(VICTIM).json() == {"status": "Ok", "deleted_sessions": 3}
    # Then every key is as before the victim's writes: nothing of theirs left, nothing of anyone else changed
    assert snapshot(client) == survivors
    assert acme.forget(VICTIM).json() == {"status": "Ok", "deleted_sessions": 0}
    assert snapshot(client) == survivors


class _Hooked(RedisConnector):
    """A connector that runs ``after_append`` once, right after the append script returned (before the store's
    next step): the interleaving of a concurrent request at that point."""

    after_append: Callable[[], None] | None = None

    def run_script(
        self, source: str, keys: Sequence[str], args: Sequence[Any], *, binary: bool = False, charged: bool = True
    ) -> Any:
        reply = super().run_script(source, keys, args, binary=binary, charged=charged)
        if source.startswith(store_module._APPEND[:40]) and self.after_append is not None:
            hook, self.after_append = self.after_append, None
            hook()
        return reply


@pytest.fixture
def hooked(redis_server: EmbeddedRedis, redis_client: redis.Redis) -> Iterator[tuple[_Hooked, RedisMemoryStore]]:
    connector = _Hooked(Settings(REDIS_URL=redis_server.url))
    yield connector, RedisMemoryStore(connector, Keys("mh"))
    connector.close()


def test_delete_user_given_a_concurrent_write_without_user_leaves_no_key_of_the_user(
    hooked: tuple[_Hooked, RedisMemoryStore], redis_client: redis.Redis
) -> None:
    """Fixed (low): a write that names no user to a session bound to Ana re-lists the session under Ana *after* its
    script (store.py:250-253, ``if bound and (cluster or named is None)``), outside the atomic step. A DELETE /users
    (or DELETE /sessions) that lands between the two leaves Ana's listing key ``L:u:{U}:sessions`` behind, holding
    the session id (often an e-mail address): after the GDPR erasure answered Ok."""
    connector, store = hooked
    ana = UserRef("acme", VICTIM)
    chat = SessionRef("acme", "ana@example.com/chat")
    store.append(chat, [NewMessage("Human", "hi")], context=None, namespace="", now_ms=1, user_id=VICTIM)

    def erase() -> None:  # the erasure runs between the script and the re-listing
        store.delete_user(ana)

    connector.after_append = erase
    store.append(chat, [NewMessage("Human", "an unnamed write")], context=None, namespace="", now_ms=2)
    left = [key for key in redis_client.keys("*") if ":u:{" in key]
    assert left == [], {key: redis_client.zrange(key, 0, -1) for key in left}


def test_list_user_sessions_given_a_stale_listing_entry_lists_only_sessions_bound_to_the_user(
    hooked: tuple[_Hooked, RedisMemoryStore],
) -> None:
    """Fixed (low): ``list_user_sessions`` (store.py:318-337) returns the listing as it is, without the binding check
    that ``user_sessions`` makes ("the listing is a hint"). With the stale entry of the test above, once the session
    id is bound to Bruno, GET /sessions?user_id=ana lists Bruno's session."""
    connector, store = hooked
    ana, bruno = UserRef("acme", "ana"), UserRef("acme", "bruno")
    chat = SessionRef("acme", "chat")
    store.append(chat, [NewMessage("Human", "hi")], context=None, namespace="", now_ms=1, user_id="ana")
    connector.after_append = lambda: store.delete(chat, namespace="")  # DELETE /sessions/chat meanwhile
    store.append(chat, [NewMessage("Human", "unnamed")], context=None, namespace="", now_ms=2)
    store.append(chat, [NewMessage("Human", "bruno's now")], context=None, namespace="", now_ms=3, user_id="bruno")
    assert store.list_user_sessions(bruno, namespace=None, offset=0, limit=10) == (["chat"], 1)
    assert store.user_sessions(ana, limit=10) == []  # the search checks the binding ...
    assert store.list_user_sessions(ana, namespace=None, offset=0, limit=10) == ([], 0)  # ... the listing does not


@pytest.mark.cluster
def test_list_user_sessions_given_a_refused_write_on_a_cluster_never_lists_the_session_under_the_loser(
    redis_cluster: EmbeddedRedisCluster,
) -> None:
    """Fixed (low, Redis Cluster): a write naming Bruno to Ana's session lists it under Bruno *before* its script
    runs (store.py:217-223) and unlists it after the refusal (store.py:243-245). Meanwhile, GET /sessions?user_id=bruno
    lists Ana's session (list_user_sessions checks no binding); and if the script call fails (a timeout, the Lambda
    killed) the entry stays for good."""
    for node in redis_cluster.nodes:
        with redis.Redis(port=node.port) as client:
            client.flushall()
    connector = _Hooked(Settings(REDIS_URL=redis_cluster.url, MOTORHEAD_REDIS_MODE="auto"))
    store = RedisMemoryStore(connector, Keys("mh"))
    chat = SessionRef("acme", "ana-chat")
    store.append(chat, [NewMessage("Human", "hi")], context=None, namespace="", now_ms=1, user_id="ana")
    seen: list[tuple[list[str], int]] = []
    connector.after_append = lambda: seen.append(
        store.list_user_sessions(UserRef("acme", "bruno"), namespace=None, offset=0, limit=10)
    )
    with pytest.raises(ConflictError):
        store.append(chat, [NewMessage("Human", "bruno")], context=None, namespace="", now_ms=2, user_id="bruno")
    connector.close()
    assert seen == [([], 0)], f"Bruno's listing showed Ana's session while his write was refused: {seen}"


def test_delete_user_given_more_sessions_than_its_rounds_does_not_answer_done(
    hooked: tuple[_Hooked, RedisMemoryStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by this review: ``delete_user`` stopped after its rounds and answered as if done. Now it says whether
    it is done (DELETE /users answers 202 ``Partial`` then), and a second call finishes. Shown with small bounds."""
    _, store = hooked
    monkeypatch.setattr(store_module, "DELETE_BATCH", 2)
    monkeypatch.setattr(store_module, "MAX_DELETE_ROUNDS", 1)
    ana = UserRef("acme", "ana")
    for n in range(3):
        store.append(SessionRef("acme", f"s{n}"), [NewMessage("Human", "x")], context=None, namespace="", now_ms=n,
                     user_id="ana")  # fmt: skip
    assert store.delete_user(ana) == (2, False)
    assert store.delete_user(ana) == (1, True)
    assert store.user_sessions(ana, limit=10) == []


# --- tenants: adoption, and the same user id in two tenants ---------------------------------------------------------


def test_adoption_given_a_bound_tenantless_session_lists_it_under_that_tenants_user_only(
    redis_server: EmbeddedRedis, redis_client: redis.Redis
) -> None:
    connector = RedisConnector(Settings(REDIS_URL=redis_server.url))
    keys = Keys("mh")
    store = RedisMemoryStore(connector, keys)
    # Given tenant-less sessions bound to Ana, and globex's own Ana
    for session_id in ("chat", "{chat}"):
        store.append(SessionRef(NO_TENANT, session_id), [NewMessage("Human", "old")], context=None, namespace="",
                     now_ms=1, user_id="ana")  # fmt: skip
    store.append(SessionRef("globex", "g"), [NewMessage("Human", "g")], context=None, namespace="", now_ms=1,
                 user_id="ana")  # fmt: skip
    # When acme adopts the tenant-less sessions
    report = RedisSessionAdopter(connector, keys).adopt("acme", dry_run=False, keep_going=lambda: True)
    assert report.sessions_moved == 2 and report.complete
    # Then acme's Ana has them (bound, searchable), globex's Ana still only hers, and no tenant-less listing is left
    assert sorted(sid for sid, _ in store.user_sessions(UserRef("acme", "ana"), limit=10)) == ["chat", "{chat}"]
    assert [sid for sid, _ in store.user_sessions(UserRef("globex", "ana"), limit=10)] == ["g"]
    assert store.user_sessions(UserRef(NO_TENANT, "ana"), limit=10) == []
    assert not redis_client.exists(keys.user_sessions(UserRef(NO_TENANT, "ana")))
    # And globex forgetting its Ana leaves acme's adopted sessions
    assert store.delete_user(UserRef("globex", "ana")) == (1, True)
    assert store.delete_user(UserRef("acme", "ana")) == (2, True)
    assert [key for key in redis_client.keys("*") if not str(key).startswith("mh:apikey")] == []
    connector.close()


# --- scopes -------------------------------------------------------------------------------------------------------


def test_user_routes_given_keys_without_the_scope_change_and_reveal_nothing(ltm: Deployment) -> None:
    writer = As(ltm.base_url, ltm.key("acme"))
    assert writer.post("chat", [("Human", "peanut")], user_id="ana").status_code == 200
    assert ltm.indexer.drain() == 1
    before = snapshot(ltm.client)
    read_only = As(ltm.base_url, ltm.key("acme", "read"))
    list_only = As(ltm.base_url, ltm.key("acme", "list"))
    write_only = As(ltm.base_url, ltm.key("acme", "write"))
    delete_only = As(ltm.base_url, ltm.key("acme", "delete"))
    keys_made = set(ltm.client.keys("mh:apikey*")) - set(before)
    # Then each route refuses a key without its scope with 403 JSON, under both mounts
    assert is_json_error(read_only.forget("ana"), 403)
    assert is_json_error(list_only.forget("ana"), 403)
    assert is_json_error(write_only.forget("ana"), 403)
    assert is_json_error(list_only.search("ana", "peanut"), 403)
    assert is_json_error(write_only.search("ana", "peanut"), 403)
    assert is_json_error(delete_only.search("ana", "peanut"), 403)
    assert is_json_error(read_only.sessions(user_id="ana"), 403)
    assert is_json_error(write_only.sessions(user_id="ana"), 403)
    assert is_json_error(read_only.post("chat", [("Human", "x")], user_id="bruno"), 403)
    assert is_json_error(delete_only.post("new", [("Human", "x")], user_id="bruno"), 403)
    assert is_json_error(As(ltm.base_url, ltm.key("acme", "read"), "/motorhead").forget("ana"), 403)
    # And nothing changed (beyond the keys made for the test)
    now = snapshot(ltm.client)
    assert {k: v for k, v in now.items() if k not in keys_made and not k.startswith("mh:apikey")} == {
        k: v for k, v in before.items() if not k.startswith("mh:apikey")
    }
    # While the scopes that are needed work: read searches, list lists, delete forgets
    assert contents(read_only.search("ana", "peanut")) == ["peanut"]
    assert list_only.sessions(user_id="ana").json() == ["chat"]
    assert delete_only.forget("ana").json() == {"status": "Ok", "deleted_sessions": 1}


# --- what the logs say of a user ------------------------------------------------------------------------------------


def _records(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, Any]]:
    out = []
    for record in caplog.records:
        if record.name.startswith(name):
            try:
                out.append(json.loads(logger.registered_formatter.format(record)))
            except (TypeError, ValueError):
                out.append({"message": record.getMessage()})
    return out


def test_logs_given_user_routes_hold_only_the_users_hash(
    ltm: Deployment, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    acme = As(ltm.base_url, ltm.key("acme"))
    caplog.set_level(logging.INFO)
    capfd.readouterr()
    # When a user whose id is an e-mail address writes, lists, searches, is refused and is forgotten
    assert acme.post("s", [("Human", "hi")], user_id=VICTIM).status_code == 200
    assert acme.post("s", [("Human", "hi")], user_id="other@example.com").status_code == 409
    assert acme.sessions(user_id=VICTIM).status_code == 200
    assert ltm.indexer.drain() == 1
    assert acme.search(VICTIM, "hi").status_code == 200
    assert acme.forget(VICTIM).status_code == 200
    printed = capfd.readouterr()
    functions = _records(caplog, "motorhead") + [
        json.loads(line) for line in (printed.out + printed.err).splitlines() if line.startswith("{")
    ]
    # Then no line of the functions holds the id, in clear or percent-encoded
    for needle in (VICTIM, quote(VICTIM, safe=""), "other@example.com"):
        assert all(needle not in json.dumps(record) for record in functions), needle
    # And a failure of a user route names the user by its hash only
    with cold_start(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", MOTORHEAD_AUTH="none") as down:
        event = copy.deepcopy(load_event("user_retrieval-ok"))
        event["pathParameters"] = {"user_id": VICTIM}
        event["rawPath"] = event["requestContext"]["http"]["path"] = f"/users/{VICTIM}/retrieval"
        caplog.clear()
        answer = down.invoke("UserRetrievalFunction", event)
        records = _records(caplog, "motorhead") + [
            json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith("{")
        ]
    assert answer["statusCode"] in {500, 503}, answer
    failed = [r for r in records if r.get("message") in {"request failed", "unexpected error"}]
    assert failed and all(r.get("user") == user_hash(UserRef(NO_TENANT, VICTIM)) for r in failed), failed
    assert all(VICTIM not in json.dumps(record) for record in records)


def test_local_gateway_given_user_routes_its_access_log_holds_no_user_id(
    ltm: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    """Fixed (low, local gateway only; not new: session ids are logged the same way): the local gateway's access
    log writes the raw request line (devserver/server.py:297-304), so ``/users/ana%40example.com`` and
    ``?user_id=ana%40example.com`` reach the log. The deployed API's access log writes ``routeKey`` only
    (template.yaml:433), and the functions log ``user_hash`` only; the local one could log the route the same way."""
    caplog.set_level(logging.INFO, logger="devserver")
    acme = As(ltm.base_url, ltm.key("acme"))
    assert acme.post("s", [("Human", "hi")], user_id=VICTIM).status_code == 200
    assert acme.forget(VICTIM).status_code == 200
    ltm.indexer.drain()
    lines = [record.getMessage() for record in caplog.records if record.name == "devserver"]
    for _ in range(40):  # the access log is written a batch at a time (every 50 ms)
        if any("DELETE" in line for line in lines):
            break
        time.sleep(0.05)
        lines = [record.getMessage() for record in caplog.records if record.name == "devserver"]
    leaked = [line for line in lines if quote(VICTIM, safe="") in line or VICTIM in line]
    assert leaked == [], leaked


def test_user_routes_given_no_user_id_or_a_wrong_shape_answer_404_and_change_nothing(ltm: Deployment) -> None:
    acme = As(ltm.base_url, ltm.key("acme"))
    assert acme.post("s", [("Human", "hi")], user_id="ana").status_code == 200
    before = snapshot(ltm.client)
    for method, path in [
        ("DELETE", "/users/"),
        ("DELETE", "/users"),
        ("DELETE", "/users//"),
        ("DELETE", "/users/ana/retrieval"),
        ("POST", "/users//retrieval"),
        ("POST", "/users/ana/retrieval/x"),
        ("DELETE", "/motorhead/users/"),
        ("GET", "/users/ana"),
    ]:
        response = acme.call(method, path, {"text": "x"})
        assert response.status_code in {404, 405} and set(response.json()) == {"error"}, (method, path, response.text)
    assert snapshot(ltm.client) == before
