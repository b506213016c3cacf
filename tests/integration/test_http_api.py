"""The API over real HTTP, through the local gateway that routes by template.yaml to the Lambda handlers."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest
import redis
import requests

from motorhead.adapters.redis_db.keys import Keys
from tests.support import ref

HOSTILE_IDS = ["a-b", "user@example.com", "x:y", "{tag}", "}{", "*", "with space", "ünï 会话 🧠", "é" * 128]


def memory_url(base_url: str, session_id: str) -> str:
    return f"{base_url}/sessions/{quote(session_id, safe='')}/memory"


def test_health_given_get_root_returns_now(base_url: str) -> None:
    response = requests.get(base_url + "/", timeout=5)
    assert response.status_code == 200 and isinstance(response.json()["now"], int)


@pytest.mark.parametrize("session_id", HOSTILE_IDS)
def test_round_trip_given_hostile_session_id_over_http_works(base_url: str, session_id: str) -> None:
    # Given a session id with characters that broke Motorhead, percent-encoded in the URL
    url = memory_url(base_url, session_id)
    # When messages are posted, read, and the session deleted
    posted = requests.post(url, json={"messages": [{"role": "Human", "content": session_id}]}, timeout=5)
    read = requests.get(url, timeout=5)
    deleted = requests.delete(url, timeout=5)
    # Then each step works on exactly that session
    assert (posted.status_code, posted.json()) == (200, {"status": "Ok"})
    assert [m["content"] for m in read.json()["messages"]] == [session_id]
    assert deleted.status_code == 200
    assert requests.get(url, timeout=5).json()["messages"] == []


def test_get_given_window_four_returns_the_four_newest(base_url: str) -> None:
    url = memory_url(base_url, "w")
    requests.post(url, json={"messages": [{"role": "Human", "content": str(i)} for i in range(9)]}, timeout=5)
    assert [m["content"] for m in requests.get(url, timeout=5).json()["messages"]] == ["8", "7", "6", "5"]


def test_request_given_unsupported_method_returns_405_json(base_url: str) -> None:
    response = requests.put(memory_url(base_url, "s"), json={}, timeout=5)
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, POST"
    assert "not allowed" in response.json()["error"]


def test_request_given_unknown_path_returns_404_json(base_url: str) -> None:
    response = requests.get(base_url + "/nope", timeout=5)
    assert (response.status_code, response.json()) == (404, {"error": "not found"})


def test_post_given_malformed_json_returns_400_json(base_url: str) -> None:
    response = requests.post(
        memory_url(base_url, "s"), data=b'{"messages": [', headers={"content-type": "application/json"}, timeout=5
    )
    assert response.status_code == 400 and "malformed JSON" in response.json()["error"]


def test_post_given_non_utf8_body_returns_400_json(base_url: str) -> None:
    response = requests.post(
        memory_url(base_url, "s"), data=b"\xff\xfe{", headers={"content-type": "application/json"}, timeout=5
    )
    assert response.status_code == 400 and "error" in response.json()


def test_docs_given_browser_serves_swagger_and_merged_openapi(base_url: str) -> None:
    # Given the local server / When the docs are opened / Then Swagger UI loads one spec with every route
    assert "swagger-ui" in requests.get(base_url + "/docs", timeout=5).text
    paths = requests.get(base_url + "/openapi.json", timeout=5).json()["paths"]
    assert set(paths) == {
        "/",
        "/sessions",
        "/sessions/{session_id}",
        "/sessions/{session_id}/memory",
        "/sessions/{session_id}/retrieval",
        "/users/{user_id}/retrieval",
        "/users/{user_id}",
        "/keys/current",
    }
    assert set(paths["/sessions/{session_id}/memory"]) == {"get", "post", "delete"}


def test_posts_given_concurrent_clients_over_http_store_every_message(base_url: str, redis_client: redis.Redis) -> None:
    # Given 8 clients posting 25 requests of 2 messages each into one session
    url = memory_url(base_url, "busy")

    def client(n: int) -> list[int]:
        with requests.Session() as http:
            return [
                http.post(
                    url,
                    json={"messages": [{"role": "Human", "content": f"{n}-{i}-{k}"} for k in range(2)]},
                    timeout=10,
                ).status_code
                for i in range(25)
            ]

    with ThreadPoolExecutor(8) as pool:
        statuses = [s for result in pool.map(client, range(8)) for s in result]
    # Then every request succeeded and the session holds all 400 messages, each once, with ids 1..400...
    assert set(statuses) == {200}
    members: list[str] = redis_client.zrange(Keys("mh").session(ref("busy")).messages, 0, -1)  # type: ignore[assignment]
    stored = [json.loads(member) for member in members]
    assert [m["id"] for m in stored] == list(range(1, 401))
    assert sorted(m["content"] for m in stored) == sorted(
        f"{n}-{i}-{k}" for n in range(8) for i in range(25) for k in range(2)
    )
    # ...each request's two messages side by side, in order, and GET returns the newest four
    by_content = {m["content"]: m["id"] for m in stored}
    assert all(by_content[f"{n}-{i}-1"] == by_content[f"{n}-{i}-0"] + 1 for n in range(8) for i in range(25))
    assert [m["id"] for m in requests.get(url, timeout=5).json()["messages"]] == [400, 399, 398, 397]
