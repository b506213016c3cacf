"""User-level memory, as a user and as an attacker would try it: sessions bound to a user on their first write that
names one, a user's whole history searched from any session, a user forgotten (GDPR) with every key of theirs gone
and nobody else's touched; over real HTTP through the local gateway with real API keys, with long-term memory on
(the real local model), on both vector backends; the store's part again on a 3-node Redis Cluster.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from devserver.embedded_redis import EmbeddedRedis
from devserver.local_sqs import LocalSqs
from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.exact_index import ExactVectorIndex
from motorhead.adapters.redis_db.keys import Keys
from motorhead.adapters.redis_db.keyword_index import RedisKeywordIndex
from motorhead.adapters.redis_db.store import RedisMemoryStore
from motorhead.composition import long_term
from motorhead.core.values import NewMessage, SearchFilters, SessionJob, SessionRef, UserRef
from motorhead.errors import ConflictError
from motorhead.ltm.indexing import IndexerService
from motorhead.ltm.retrieval import RetrievalService
from motorhead.settings import Settings
from tests.integration.conftest import HttpCaller, LtmDeployment, ltm_gateway

HOSTILE_USER = "ana@example.com:{u} *1 ünï/%25"
ANA_WEEK_ONE = [
    ("Human", "I'm allergic to peanuts, please remember that."),
    ("AI", "Noted: no peanuts."),
    ("Human", "My daughter is called Ana Lucia."),
    ("AI", "What a lovely name."),
]
ANA_WEEK_TWO = [
    ("Human", "Can you plan a dinner menu for Saturday?"),
    ("AI", "Grilled fish, rice and a green salad."),
]
BRUNO = [
    ("Human", "I am allergic to shellfish and peanuts too."),
    ("AI", "Understood, Bruno."),
]


Deployment = LtmDeployment


class As(HttpCaller):
    """One caller of ``deployment`` over real HTTP."""

    def __init__(self, deployment: Deployment, key: str, prefix: str = "") -> None:
        super().__init__(deployment.base_url, key, prefix)


@pytest.fixture(params=["exact", "search"])
def deployment(
    request: pytest.FixtureRequest, redis_server: EmbeddedRedis, search_server: EmbeddedRedis, local_sqs: LocalSqs
) -> Iterator[Deployment]:
    server = redis_server if request.param == "exact" else search_server
    with ltm_gateway(server, local_sqs, "auto") as running:
        running.backend = request.param
        yield running


def contents(response: requests.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [hit["content"] for hit in response.json()]


# --- binding ---------------------------------------------------------------------------------------------------


def test_post_given_a_user_binds_the_session_and_another_user_is_refused_with_nothing_stored(
    deployment: Deployment,
) -> None:
    acme = As(deployment, deployment.key("acme"))
    # Given a session bound to Ana by its first write that names her
    assert acme.post("chat-1", ANA_WEEK_ONE[:2], user_id="ana").status_code == 200
    # When the same user, or no user, writes again / Then it is fine
    assert acme.post("chat-1", ANA_WEEK_ONE[2:3], user_id="ana").status_code == 200
    assert acme.post("chat-1", ANA_WEEK_ONE[3:]).status_code == 200
    before = {key: deployment.client.dump(key) for key in deployment.client.keys("*")}
    # When a write names another user / Then 409 JSON, and no key changed at all
    refused = acme.post("chat-1", [("Human", "I am Bruno now")], user_id="bruno")
    assert refused.status_code == 409 and refused.json() == {"error": "this session belongs to another user"}
    assert {key: deployment.client.dump(key) for key in deployment.client.keys("*")} == before
    # And the session holds Ana's four messages only; Bruno lists nothing, Ana lists the session
    memory = acme.call("GET", "/sessions/chat-1/memory").json()
    assert [m["content"] for m in reversed(memory["messages"])] == [c for _, c in ANA_WEEK_ONE]
    assert acme.sessions(user_id="bruno").json() == []
    assert acme.sessions(user_id="ana").json() == ["chat-1"]


def test_post_given_an_unbound_session_binds_it_at_the_first_write_that_names_a_user(deployment: Deployment) -> None:
    acme = As(deployment, deployment.key("acme"))
    # Given a session written by a client that never sends a user (as every Motorhead client)
    assert acme.post("legacy", ANA_WEEK_ONE[:2]).status_code == 200
    assert acme.sessions(user_id="ana").json() == []
    # When a write names Ana / Then the session, with its earlier messages, is hers from then on
    assert acme.post("legacy", ANA_WEEK_ONE[2:], user_id="ana").status_code == 200
    assert acme.sessions(user_id="ana").json() == ["legacy"]
    assert acme.post("legacy", BRUNO, user_id="bruno").status_code == 409


@pytest.mark.parametrize(
    ("user_id", "status"),
    [("", 400), ("u" * 257, 400), ("é" * 129, 400), ("u" * 256, 200), (HOSTILE_USER, 200)],
    ids=["empty", "257-bytes", "258-utf8-bytes", "256-bytes", "hostile"],
)
def test_post_given_user_ids_checks_them_as_session_ids(deployment: Deployment, user_id: str, status: int) -> None:
    acme = As(deployment, deployment.key("acme"))
    # When a write names the user / Then ids follow the session id rules: 1 to 256 UTF-8 bytes, anything else 400
    response = acme.post("s", [("Human", "hello")], user_id=user_id)
    assert response.status_code == status, response.text
    if status == 400:
        assert set(response.json()) == {"error"} and "user id" in response.json()["error"]
        assert deployment.client.keys("mh:t:*:messages") == []  # nothing half-written
    else:  # the id decoded exactly once: listing and searching under the same id find the session
        assert acme.sessions(user_id=user_id).json() == ["s"]


def test_users_given_the_same_user_id_in_two_tenants_are_two_users(deployment: Deployment) -> None:
    acme, globex = As(deployment, deployment.key("acme")), As(deployment, deployment.key("globex"))
    # Given Ana of acme and Ana of globex, with the same session id too
    assert acme.post("chat", ANA_WEEK_ONE, user_id="ana").status_code == 200
    assert globex.post("chat", BRUNO, user_id="ana").status_code == 200
    assert deployment.indexer.drain() == 2
    # Then each tenant sees only its own Ana: listing, search, forgetting
    assert acme.sessions(user_id="ana").json() == globex.sessions(user_id="ana").json() == ["chat"]
    assert "Understood, Bruno." not in contents(acme.search("ana", "allergic", limit=100))
    assert "Noted: no peanuts." not in contents(globex.search("ana", "allergic", limit=100))
    assert globex.forget("ana").json() == {"status": "Ok", "deleted_sessions": 1}
    assert ANA_WEEK_ONE[0][1] in contents(acme.search("ana", "peanuts"))


def test_list_sessions_given_a_user_pages_and_filters_by_namespace(deployment: Deployment) -> None:
    acme = As(deployment, deployment.key("acme"))
    # Given Ana's five sessions, two in namespace "support", and someone else's
    for n in range(5):
        namespace = {"namespace": "support"} if n % 2 else {}
        assert acme.post(f"s{n}", [("Human", f"turn {n}")], user_id="ana", **namespace).status_code == 200
    assert acme.post("other", [("Human", "x")], user_id="bruno").status_code == 200
    # When her sessions are listed two per page / Then least recently written first, with the total and next page
    first = acme.call("GET", "/sessions", user_id="ana", size=2, page=1)
    assert first.json() == ["s0", "s1"]
    assert first.headers["x-total-count"] == "5" and first.headers["x-next-page"] == "2"
    assert acme.call("GET", "/sessions", user_id="ana", size=2, page=3).json() == ["s4"]
    # And with the namespace filter, only hers in it
    assert acme.sessions(user_id="ana", namespace="support").json() == ["s1", "s3"]
    assert acme.sessions(user_id="bruno", namespace="support").json() == []
    assert acme.call("GET", "/sessions", user_id="").status_code == 400


# --- search across sessions ------------------------------------------------------------------------------------


def test_user_retrieval_given_two_sessions_finds_last_weeks_message_from_this_week(deployment: Deployment) -> None:
    acme = As(deployment, deployment.key("acme"))
    # Given what Ana said last week in one session, this week in another, and Bruno in a third
    assert acme.post("week-1", ANA_WEEK_ONE, user_id="ana").status_code == 200
    assert acme.post("week-2", ANA_WEEK_TWO, user_id="ana").status_code == 200
    assert acme.post("bruno-1", BRUNO, user_id="bruno").status_code == 200
    assert deployment.indexer.drain() == 3
    # When this week's chat asks about her allergy
    response = acme.search("ana", "what food is she allergic to?", limit=3)
    # Then last week's exchange about it comes first (the recipe lifts a turn by its answer and reads each turn with
    # the two before it), in session retrieval's shape plus its session id
    hits = response.json()
    assert response.status_code == 200 and ANA_WEEK_ONE[0][1] in [h["content"] for h in hits[:2]]
    assert hits[0]["session_id"] == hits[1]["session_id"] == "week-1"
    assert set(hits[0]) == {"role", "content", "dist", "id", "created_at", "score", "session_id"}
    assert len(hits) == 3 and [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    # And nothing of Bruno's, whatever the limit
    everything = acme.search("ana", "allergic peanuts shellfish", limit=100).json()
    assert {h["session_id"] for h in everything} == {"week-1", "week-2"}
    assert len(everything) == len(ANA_WEEK_ONE) + len(ANA_WEEK_TWO)
    # And the same under n8n's /motorhead prefix
    mounted = As(deployment, acme.headers["Authorization"].split()[1], prefix="/motorhead")
    assert contents(mounted.search("ana", "what food is she allergic to?", limit=3)) == [h["content"] for h in hits]


def test_user_retrieval_given_filters_returns_only_what_they_admit(deployment: Deployment) -> None:
    acme = As(deployment, deployment.key("acme"))
    assert acme.post("week-1", ANA_WEEK_ONE, user_id="ana", namespace="health").status_code == 200
    assert acme.post("week-2", ANA_WEEK_TWO, user_id="ana").status_code == 200
    assert acme.post("bruno-1", BRUNO, user_id="bruno").status_code == 200
    assert deployment.indexer.drain() == 3
    every = acme.search("ana", "peanuts dinner", limit=100).json()
    # Then: one session only; another user's session id finds nothing of it
    assert {h["session_id"] for h in acme.search("ana", "peanuts", session_ids=["week-2"]).json()} == {"week-2"}
    assert acme.search("ana", "peanuts", session_ids=["bruno-1"]).json() == []
    # namespace; roles; a time range
    assert {h["session_id"] for h in acme.search("ana", "peanuts", namespace="health").json()} == {"week-1"}
    assert {h["role"] for h in acme.search("ana", "peanuts", roles=["AI"], limit=100).json()} == {"AI"}
    newest = max(h["created_at"] for h in every)
    assert {h["session_id"] for h in acme.search("ana", "peanuts", since=newest).json()} <= {"week-2"}
    assert acme.search("ana", "peanuts", until=min(h["created_at"] for h in every) - 1).json() == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"text": "x", "limit": 101}, 422),
        ({"text": "x", "limit": 0}, 422),
        ({"text": ""}, 422),
        ({"text": "x", "session_ids": ["s"] * 1001}, 422),
        ({"text": "x", "since": -1}, 422),
        ({"limit": 5}, 422),
        ("not an object", 400),
    ],
)
def test_user_retrieval_given_bad_input_answers_a_json_error(deployment: Deployment, body: Any, status: int) -> None:
    acme = As(deployment, deployment.key("acme"))
    response = acme.call("POST", "/users/ana/retrieval", body)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"}


def test_user_retrieval_given_an_unknown_user_answers_200_with_no_results(deployment: Deployment) -> None:
    acme = As(deployment, deployment.key("acme"))
    assert acme.search("nobody", "anything").json() == []
    too_long = acme.search("u" * 257, "anything")
    assert too_long.status_code == 400 and "user id" in too_long.json()["error"]


# --- forgetting a user ------------------------------------------------------------------------------------------


def test_delete_user_given_a_gdpr_request_removes_every_key_of_the_user_and_nothing_else(
    deployment: Deployment,
) -> None:
    acme, globex = As(deployment, deployment.key("acme")), As(deployment, deployment.key("globex"))
    client = deployment.client
    # Given Bruno's session, a user-less session, globex's Ana: the keys that must survive, as they are
    assert acme.post("bruno-1", BRUNO, user_id="bruno").status_code == 200
    assert acme.post("anonymous", BRUNO).status_code == 200
    assert globex.post("week-1", ANA_WEEK_ONE, user_id="ana").status_code == 200
    assert deployment.indexer.drain() == 3
    survivors = {key: client.dump(key) for key in client.keys("*")}
    # And Ana of acme's three sessions, indexed, one in a namespace, with a summary given
    assert acme.post("week-1", ANA_WEEK_ONE, user_id="ana", namespace="health").status_code == 200
    assert acme.post("week-2", ANA_WEEK_TWO, user_id="ana").status_code == 200
    body = {"messages": [{"role": "Human", "content": "hi"}], "context": "Ana: peanut allergy, daughter Ana Lucia"}
    assert acme.call("POST", "/sessions/week-3/memory", body, user_id="ana").status_code == 200
    assert deployment.indexer.drain() == 3
    ana_keys = set(client.keys("*")) - set(survivors)
    assert len(ana_keys) > 10  # messages, meta, vectors or documents, listings...
    # When Ana is forgotten
    response = acme.forget("ana")
    # Then her three sessions are gone and every key that was added for her with them; the others are unchanged
    assert response.status_code == 200 and response.json() == {"status": "Ok", "deleted_sessions": 3}
    assert {key: client.dump(key) for key in client.keys("*")} == survivors
    # And nothing of hers is found any more, however asked
    assert acme.search("ana", "peanuts").json() == []
    assert acme.sessions(user_id="ana").json() == []
    assert acme.call("GET", "/sessions/week-1/memory").json() == {"messages": [], "context": None, "tokens": 0}
    assert "week-1" not in acme.sessions().json() and "week-1" not in acme.sessions(namespace="health").json()
    # And it is idempotent; a session id may then be used again, by anyone
    assert acme.forget("ana").json() == {"status": "Ok", "deleted_sessions": 0}
    assert acme.post("week-1", [("Human", "new owner")], user_id="carla").status_code == 200


def test_delete_session_given_a_bound_session_unlists_it_from_its_user_and_it_can_be_rebound(
    deployment: Deployment,
) -> None:
    acme = As(deployment, deployment.key("acme"))
    assert acme.post("chat", ANA_WEEK_ONE, user_id="ana").status_code == 200
    assert deployment.indexer.drain() == 1
    # When the session is deleted, then written again for Bruno
    assert acme.call("DELETE", "/sessions/chat/memory").status_code == 200
    assert acme.sessions(user_id="ana").json() == []
    assert acme.post("chat", BRUNO, user_id="bruno").status_code == 200
    assert deployment.indexer.drain() == 1
    # Then it is Bruno's alone: Ana finds none of it, nor of her old messages
    assert acme.sessions(user_id="bruno").json() == ["chat"]
    assert acme.search("ana", "peanuts").json() == []
    assert {h["content"] for h in acme.search("bruno", "peanuts", limit=100).json()} == {c for _, c in BRUNO}


def test_user_routes_given_keys_without_their_scope_or_of_nobody_are_refused(deployment: Deployment) -> None:
    writer = As(deployment, deployment.key("acme"))
    assert writer.post("chat", ANA_WEEK_ONE, user_id="ana").status_code == 200
    reader = As(deployment, deployment.key("acme", scopes="read,list"))
    nobody = As(deployment, "mhk_0123456789abcdef_" + "x" * 43)
    # Then retrieval needs read, forgetting needs delete, and no key is 401 on both
    assert reader.search("ana", "peanuts").status_code == 200
    assert reader.forget("ana").status_code == 403
    assert As(deployment, deployment.key("acme", scopes="write,delete,list")).search("ana", "x").status_code == 403
    assert nobody.search("ana", "peanuts").status_code == 401 and nobody.forget("ana").status_code == 401
    assert writer.sessions(user_id="ana").json() == ["chat"]


def test_delete_user_given_concurrent_writes_leaves_no_session_of_the_user_unlisted(deployment: Deployment) -> None:
    acme = As(deployment, deployment.key("acme"))
    # Given a client writing to Ana's sessions, new and old, while she is forgotten
    stop = threading.Event()
    written: list[str] = []

    def write() -> None:
        n = 0
        while not stop.is_set() and n < 200:
            session_id = f"s{n % 7}"
            if acme.post(session_id, [("Human", f"turn {n}")], user_id="ana").status_code == 200:
                written.append(session_id)
            n += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for _ in range(5):
            assert acme.forget("ana").status_code == 200
    finally:
        stop.set()
        writer.join()
    # Then every session bound to Ana is in her listing (a later forget reaches it), and forgetting again is total
    keys = Keys("mh")
    bound = {
        sid
        for sid in {f"s{n}" for n in range(7)}
        for tenant in ["acme"]
        if deployment.client.hget(keys.session(SessionRef(tenant, sid)).meta, "user") == "ana"
    }
    assert bound <= set(acme.sessions(user_id="ana").json())
    assert acme.forget("ana").json()["deleted_sessions"] == len(bound)
    assert not [key for key in deployment.client.keys("mh:t:*") if ":messages" in key or ":meta" in key]


# --- the store and retrieval on a cluster ------------------------------------------------------------------------


def test_store_given_a_cluster_binds_lists_searches_and_forgets_a_users_sessions(connector: RedisConnector) -> None:
    # Given the store and exact retrieval on standalone Redis and on a 3-node cluster (sessions on many slots)
    keys = Keys("mh")
    store = RedisMemoryStore(connector, keys)
    embedder = long_term.embedder(Settings(MOTORHEAD_EMBEDDER="local"))
    index = ExactVectorIndex(connector, keys, dimensions=embedder.dimensions)
    indexer = IndexerService(store=store, embedder=embedder, index=index)
    ana, bruno = UserRef("acme", "ana"), UserRef("acme", "bruno")
    turns = {f"week-{n}": [("Human", f"note {n}: I am allergic to peanuts")] for n in range(12)}
    for session_id, messages in turns.items():
        session = SessionRef("acme", session_id)
        store.append(
            session, [NewMessage(r, c) for r, c in messages], context=None, namespace="", now_ms=1, index=True,
            user_id="ana",
        )  # fmt: skip
        indexer.run(SessionJob(session=session, last_id=1))
    store.append(SessionRef("acme", "b"), [NewMessage("Human", "peanuts")], context=None, namespace="", now_ms=2,
                 index=True, user_id="bruno")  # fmt: skip
    indexer.run(SessionJob(session=SessionRef("acme", "b"), last_id=1))
    # Then a conflicting write is refused, the listing holds the twelve, a search spans them all
    with pytest.raises(ConflictError):
        store.append(SessionRef("acme", "b"), [NewMessage("Human", "x")], context=None, namespace="", now_ms=3,
                     user_id="ana")  # fmt: skip
    assert sorted(store.list_user_sessions(ana, namespace=None, offset=0, limit=100)[0]) == sorted(turns)
    service = RetrievalService(embedder=embedder, index=index, keywords=RedisKeywordIndex(connector, keys), users=store)
    found = service.retrieve_user(ana, "peanut allergy", 100)
    assert sorted(hit.session_id for hit in found) == sorted(turns)
    only = service.retrieve_user(ana, "peanut allergy", 100, SearchFilters(session_ids=frozenset({"week-3", "b"})))
    assert [hit.session_id for hit in only] == ["week-3"]
    # And forgetting Ana removes her twelve sessions, never Bruno's
    assert store.delete_user(ana) == (12, True)
    assert service.retrieve_user(ana, "peanut allergy", 100) == []
    assert [hit.session_id for hit in service.retrieve_user(bruno, "peanut allergy", 10)] == ["b"]


def test_store_given_a_write_that_may_not_adopt_refuses_a_session_of_no_user_in_the_same_step(
    connector: RedisConnector,
) -> None:
    # Given a session written with no user, and one that does not exist yet
    store = RedisMemoryStore(connector, Keys("mh"))
    ana = UserRef("acme", "ana")
    unbound, new = SessionRef("acme", "shared"), SessionRef("acme", "fresh")
    store.append(unbound, [NewMessage("Human", "not ana's")], context=None, namespace="", now_ms=1)
    # When a write naming ana may not adopt (a credential that acts as ana alone) / Then the existing one is refused,
    # with nothing stored and nothing listed under ana
    with pytest.raises(ConflictError):
        store.append(unbound, [NewMessage("Human", "mine now")], context=None, namespace="", now_ms=2,
                     user_id="ana", adopt=False)  # fmt: skip
    assert [m.content for m in store.read(unbound, limit=10).messages] == ["not ana's"]
    assert store.session_user(unbound) is None
    # And the new one is started as ana's, and written again as hers
    for now_ms in (3, 4):
        store.append(new, [NewMessage("Human", "hello")], context=None, namespace="", now_ms=now_ms, user_id="ana",
                     adopt=False)  # fmt: skip
    assert store.session_user(new) == "ana"
    assert store.list_user_sessions(ana, namespace=None, offset=0, limit=10)[0] == ["fresh"]
    assert len(store.read(new, limit=10).messages) == 2
