"""``GET /sessions/{id}`` and ``explain`` on real Redis (both vector backends), through the functions behind the local
gateway with API keys: a session's stats as the store's one script reads them, its tenant's only, with the read
scope; and the parts of each retrieval score, for a session and for a user, without changing any answer."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest

from devserver.embedded_redis import EmbeddedRedis
from devserver.local_sqs import LocalSqs
from tests.integration.conftest import HttpCaller, LtmDeployment, ltm_gateway

TRIP = [
    ("Human", "We are flying to Bogotá in March for my sister's wedding."),
    ("AI", "Congratulations! Do you need a hotel near La Candelaria?"),
    ("Human", "My sister Ana is allergic to peanuts, the caterer must know."),
    ("AI", "I will tell the caterer: no peanuts at all."),
]
HOSTILE = "ana@example.com:{chat} *1 ünï/%25"


@pytest.fixture(params=["exact", "search"])
def deployment(
    request: pytest.FixtureRequest, redis_server: EmbeddedRedis, search_server: EmbeddedRedis, local_sqs: LocalSqs
) -> Iterator[LtmDeployment]:
    server = redis_server if request.param == "exact" else search_server
    with ltm_gateway(server, local_sqs, "auto") as running:
        yield running


def stats(caller: HttpCaller, session_id: str) -> dict[str, object]:
    answer = caller.call("GET", f"/sessions/{quote(session_id, safe='')}")
    assert answer.status_code == 200, answer.text
    found: dict[str, object] = answer.json()
    return found


def test_get_session_given_posts_answers_counts_times_user_namespaces_and_pending_index(
    deployment: LtmDeployment,
) -> None:
    # Given a session (hostile id) written twice, under a namespace, bound to a user, not yet indexed
    acme = HttpCaller(deployment.base_url, deployment.key("acme"))
    assert acme.post(HOSTILE, TRIP[:2], namespace="family", user_id="ana").ok
    assert acme.post(HOSTILE, TRIP[2:], namespace="family").ok
    # When its stats are read / Then they are the store's, and its four messages await the indexer
    before = stats(acme, HOSTILE)
    assert before["exists"] is True
    assert (before["messages"], before["total_messages"], before["tokens"], before["has_summary"]) == (4, 4, 0, False)
    assert (before["user_id"], before["namespaces"]) == ("ana", ["family"])
    assert isinstance(before["updated_at"], int) and before["updated_at"] >= before["created_at"] > 0  # type: ignore[operator]
    assert (before["index_pending"], before["unindexed"]) == (True, 4)
    # When the indexer has run / Then nothing is pending
    assert deployment.indexer.drain() >= 1
    after = stats(acme, HOSTILE)
    assert (after["index_pending"], after["unindexed"]) == (False, 0)
    # And once deleted, the session is empty again
    assert acme.call("DELETE", f"/sessions/{quote(HOSTILE, safe='')}/memory").ok
    assert stats(acme, HOSTILE) == EMPTY_STATS


EMPTY_STATS: dict[str, object] = {
    "exists": False,
    "messages": 0,
    "total_messages": 0,
    "tokens": 0,
    "has_summary": False,
    "created_at": 0,
    "updated_at": 0,
    "user_id": None,
    "namespaces": [],
    "summary_pending": False,
    "index_pending": False,
    "unindexed": 0,
    "long_term_memory": True,  # the deployment's: these tests' is on
}


def test_get_session_given_another_tenants_session_sees_nothing_of_it(deployment: LtmDeployment) -> None:
    acme = HttpCaller(deployment.base_url, deployment.key("acme"))
    globex = HttpCaller(deployment.base_url, deployment.key("globex"))
    assert acme.post("shared-id", TRIP, user_id="ana").ok
    # When the other tenant asks for the same id / Then it is an empty session of its own: no count, no user
    assert stats(globex, "shared-id") == EMPTY_STATS
    assert stats(acme, "shared-id")["messages"] == 4


def test_get_session_given_a_key_without_read_or_no_key_is_refused(deployment: LtmDeployment) -> None:
    writer = HttpCaller(deployment.base_url, deployment.key("acme", scopes="write"))
    assert writer.post("s", TRIP).ok
    assert writer.call("GET", "/sessions/s").status_code == 403
    assert HttpCaller(deployment.base_url, "mh_wrong_key").call("GET", "/sessions/s").status_code == 401
    # And the /motorhead mount answers the same route
    reader = HttpCaller(deployment.base_url, deployment.key("acme", scopes="read"), prefix="/motorhead")
    assert stats(reader, "s")["messages"] == 4


def test_retrieval_given_explain_adds_the_parts_and_changes_nothing_else(deployment: LtmDeployment) -> None:
    acme = HttpCaller(deployment.base_url, deployment.key("acme"))
    assert acme.post("trip", TRIP, user_id="ana").ok
    assert acme.post("other", [("Human", "Peanut butter cookies for the office party.")], user_id="ana").ok
    assert deployment.indexer.drain() >= 2
    query = {"text": "what is Ana allergic to?", "k": 4}
    # When a session is searched without and with explain
    plain = acme.call("POST", "/sessions/trip/retrieval", query).json()
    explained = acme.call("POST", "/sessions/trip/retrieval", {**query, "explain": True}).json()
    # Then the answer without is Motorhead's shape, and with it the same hits plus their parts, which add up
    assert plain and all("parts" not in hit for hit in plain)
    assert [{k: v for k, v in hit.items() if k != "parts"} for hit in explained] == plain
    assert explained[0]["content"] == TRIP[2][1]
    for hit in explained:
        parts = hit["parts"]
        assert set(parts) == {"cosine", "bm25", "vector", "keyword", "speaker", "next"}
        assert abs(parts["vector"] + parts["keyword"] + parts["speaker"] + parts["next"] - hit["score"]) < 1e-5
        assert abs(parts["cosine"] - (1 - hit["dist"])) < 1e-5
    assert explained[0]["parts"]["bm25"] > 0
    # And the user's search explains its hits the same way, each with its session
    plain_user = acme.search("ana", "peanuts", limit=5).json()
    explained_user = acme.search("ana", "peanuts", limit=5, explain=True).json()
    assert {hit["session_id"] for hit in explained_user} == {"trip", "other"}
    assert [{k: v for k, v in hit.items() if k != "parts"} for hit in explained_user] == plain_user
    assert all("parts" in hit for hit in explained_user) and all("parts" not in hit for hit in plain_user)
