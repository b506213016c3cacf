"""Each function's Lambda handler, driven by the sample API Gateway events in events/, on a real Redis server."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
import redis

from devserver.embedded_redis import EmbeddedRedis
from tests.support import Api, body, cold_start, get_event, load_event, messages, post_event

HOSTILE_ID = "user@example.com:{chat} *1 ünï"


def test_post_then_get_given_langchain_messages_returns_them_newest_first(api: Api) -> None:
    # Given LangChain's save_context body / When it is posted and the session read back
    posted = api.invoke("PostMemoryFunction", load_event("post_memory-ok"))
    read = api.invoke("GetMemoryFunction", load_event("get_memory-ok"))
    # Then the ack is Motorhead's and the messages come back newest first, with no summary yet
    assert (posted["statusCode"], body(posted)) == (200, {"status": "Ok"})
    assert read["statusCode"] == 200
    memory = body(read)
    assert [(m["role"], m["content"]) for m in memory["messages"]] == [
        ("AI", "Colombia has a vibrant electronic music scene..."),
        ("Human", "What are some famous djs from Colombia?"),
    ]
    assert memory["context"] is None
    assert memory["tokens"] == 0
    assert [m["id"] for m in memory["messages"]] == [2, 1]


def test_get_given_unknown_session_returns_200_empty(api: Api) -> None:
    # Given nothing stored / When a session is read / Then it is empty, never a 404
    response = api.invoke("GetMemoryFunction", load_event("get_memory-ok"))
    assert (response["statusCode"], body(response)) == (200, {"messages": [], "context": None, "tokens": 0})


def test_get_given_more_than_window_returns_exactly_the_newest_window(api: Api) -> None:
    # Given 30 messages in a session (window 12)
    for start in range(0, 30, 5):
        assert api.invoke("PostMemoryFunction", post_event("w", {"messages": messages(5, start)}))["statusCode"] == 200
    # When it is read
    memory = body(api.invoke("GetMemoryFunction", get_event("w")))
    # Then exactly the 12 newest come back, newest first (Motorhead returned 13: defect 1)
    assert [m["content"] for m in memory["messages"]] == [f"message {i}" for i in range(29, 17, -1)]


def test_post_given_context_replaces_the_summary(api: Api) -> None:
    # Given a session with a summary loaded from elsewhere
    api.invoke("PostMemoryFunction", load_event("post_memory-with-context"))
    # When a later POST carries another context, and a third carries none
    api.invoke("PostMemoryFunction", post_event("session-42", {"messages": [], "context": "second"}))
    api.invoke("PostMemoryFunction", post_event("session-42", {"messages": messages(1)}))
    # Then the last given context is the one kept
    assert body(api.invoke("GetMemoryFunction", load_event("get_memory-ok")))["context"] == "second"


def test_post_given_base64_body_stores_the_same_messages(api: Api) -> None:
    # Given the base64-encoded variant of the sample body / When posted
    event = load_event("post_memory-base64")
    sent = json.loads(base64.b64decode(event["body"]))["messages"]
    response = api.invoke("PostMemoryFunction", event)
    # Then it is decoded and stored like the plain one: the same roles and contents, in order
    assert response["statusCode"] == 200
    stored = body(api.invoke("GetMemoryFunction", load_event("get_memory-ok")))["messages"]
    assert [(m["role"], m["content"]) for m in reversed(stored)] == [(m["role"], m["content"]) for m in sent]


def test_post_given_messages_stores_structured_json_not_role_colon_content(api: Api, redis_client: redis.Redis) -> None:
    # Given content that holds ": " (Motorhead split "role: content" on it: defect 9)
    api.invoke("PostMemoryFunction", post_event("s", {"messages": [{"role": "Human", "content": "AI: fooled: you"}]}))
    # When the raw stored value is read
    (key,) = redis_client.keys("mh:{*}:messages")
    (raw,) = redis_client.zrange(key, 0, -1)
    # Then it is a JSON object with id, role, content and created time, and reads back unchanged
    stored = json.loads(str(raw))
    assert stored["role"] == "Human" and stored["content"] == "AI: fooled: you"
    assert stored["id"] == 1 and abs(stored["created_at"] - time.time() * 1000) < 60_000
    assert body(api.invoke("GetMemoryFunction", get_event("s")))["messages"][0]["content"] == "AI: fooled: you"


@pytest.mark.parametrize(
    ("event_name", "status", "fragment"),
    [
        ("post_memory-malformed-json", 400, "malformed JSON"),
        ("post_memory-not-an-object", 400, "JSON object"),
        ("post_memory-missing-messages", 422, "messages"),
        ("post_memory-wrong-types", 422, "messages"),
        ("post_memory-empty-role", 422, "role"),
    ],
)
def test_post_given_bad_body_returns_json_error_and_stores_nothing(
    api: Api, redis_client: redis.Redis, event_name: str, status: int, fragment: str
) -> None:
    # Given a bad body / When it is posted
    response = api.invoke("PostMemoryFunction", load_event(event_name))
    # Then a JSON error with the right status explains it, and Redis is untouched
    assert response["statusCode"] == status
    assert response["headers"]["content-type"] == "application/json"
    assert fragment in body(response)["error"]
    assert redis_client.dbsize() == 0


def test_post_given_empty_messages_is_ok_and_lists_the_session(api: Api) -> None:
    response = api.invoke("PostMemoryFunction", load_event("post_memory-empty-messages"))
    assert (response["statusCode"], body(response)) == (200, {"status": "Ok"})
    assert body(api.invoke("ListSessionsFunction", load_event("list_sessions-ok"))) == ["session-42"]


@pytest.mark.parametrize(
    ("env", "payload", "fragment"),
    [
        ({"MOTORHEAD_MAX_BODY_BYTES": "2048"}, {"messages": [{"role": "Human", "content": "x" * 4000}]}, "body"),
        ({"MOTORHEAD_MAX_MESSAGE_BYTES": "100"}, {"messages": [{"role": "Human", "content": "é" * 51}]}, "content"),
        ({"MOTORHEAD_MAX_MESSAGES_PER_REQUEST": "3"}, {"messages": messages(4)}, "messages"),
        ({"MOTORHEAD_MAX_CONTEXT_BYTES": "100"}, {"messages": messages(1), "context": "c" * 101}, "context"),
    ],
)
def test_post_given_over_a_limit_returns_413_and_stores_nothing(
    redis_server: EmbeddedRedis,
    redis_client: redis.Redis,
    env: dict[str, str],
    payload: dict[str, Any],
    fragment: str,
) -> None:
    # Given a configured limit and a request over it
    with cold_start(REDIS_URL=redis_server.url, **env) as api:
        # When it is posted
        response = api.invoke("PostMemoryFunction", post_event("big", payload))
    # Then 413 with a JSON error, and nothing at all was written (all or none)
    assert response["statusCode"] == 413
    assert fragment in body(response)["error"]
    assert redis_client.dbsize() == 0


def test_post_given_session_id_over_256_bytes_returns_400(api: Api, redis_client: redis.Redis) -> None:
    response = api.invoke("PostMemoryFunction", post_event("é" * 129, {"messages": messages(1)}))
    assert response["statusCode"] == 400 and "session id" in body(response)["error"]
    assert redis_client.dbsize() == 0


def test_post_and_get_given_hostile_ids_never_touch_another_session(api: Api) -> None:
    # Given a session with a hostile id and a plain neighbour
    api.invoke("PostMemoryFunction", load_event("post_memory-hostile-id"))
    api.invoke("PostMemoryFunction", post_event("neighbour", {"messages": messages(1)}))
    # When each is read
    hostile = body(api.invoke("GetMemoryFunction", load_event("get_memory-hostile-id")))
    neighbour = body(api.invoke("GetMemoryFunction", get_event("neighbour")))
    # Then each sees only its own messages
    assert len(hostile["messages"]) == 2
    assert [m["content"] for m in neighbour["messages"]] == ["message 0"]
    # And deleting the hostile one leaves the neighbour alone
    api.invoke("DeleteMemoryFunction", load_event("delete_memory-hostile-id"))
    assert body(api.invoke("GetMemoryFunction", load_event("get_memory-hostile-id")))["messages"] == []
    assert len(body(api.invoke("GetMemoryFunction", get_event("neighbour")))["messages"]) == 1


def test_delete_given_a_session_forgets_everything_about_it(api: Api, redis_client: redis.Redis) -> None:
    # Given a session with messages and a summary, listed in two namespaces
    api.invoke("PostMemoryFunction", load_event("post_memory-with-context"))
    api.invoke("PostMemoryFunction", load_event("post_memory-namespace"))
    # When it is deleted (without naming a namespace)
    response = api.invoke("DeleteMemoryFunction", load_event("delete_memory-ok"))
    # Then the ack is Motorhead's, no key of it remains, and no list shows it
    assert (response["statusCode"], body(response)) == (200, {"status": "Ok"})
    assert redis_client.keys("*") == []
    assert body(api.invoke("ListSessionsFunction", load_event("list_sessions-namespace"))) == []
    assert body(api.invoke("GetMemoryFunction", load_event("get_memory-ok"))) == {
        "messages": [],
        "context": None,
        "tokens": 0,
    }


def test_delete_given_unknown_session_is_ok(api: Api) -> None:
    response = api.invoke("DeleteMemoryFunction", load_event("delete_memory-namespace"))
    assert (response["statusCode"], body(response)) == (200, {"status": "Ok"})


def test_list_sessions_given_pages_returns_oldest_first_with_total_and_next(api: Api) -> None:
    # Given 25 sessions written in order
    for i in range(25):
        api.invoke("PostMemoryFunction", post_event(f"s{i:02d}", {"messages": messages(1)}))
        time.sleep(0.002)
    event = load_event("list_sessions-ok")
    # When pages of 10 are read
    pages = []
    for page in (1, 2, 3):
        event["queryStringParameters"] = {"page": str(page), "size": "10"}
        event["rawQueryString"] = f"page={page}&size=10"
        pages.append(api.invoke("ListSessionsFunction", event))
    # Then ids come oldest first, with the total and the next page in headers
    assert [body(p) for p in pages] == [
        [f"s{i:02d}" for i in range(0, 10)],
        [f"s{i:02d}" for i in range(10, 20)],
        [f"s{i:02d}" for i in range(20, 25)],
    ]
    assert [p["headers"].get("x-next-page") for p in pages] == ["2", "3", None]
    assert {p["headers"]["x-total-count"] for p in pages} == {"25"}


def test_list_sessions_given_namespace_lists_only_that_namespace(api: Api) -> None:
    api.invoke("PostMemoryFunction", load_event("post_memory-namespace"))
    api.invoke("PostMemoryFunction", post_event("other", {"messages": messages(1)}))
    assert body(api.invoke("ListSessionsFunction", load_event("list_sessions-namespace"))) == ["session-42"]
    assert body(api.invoke("ListSessionsFunction", load_event("list_sessions-ok"))) == ["other"]


@pytest.mark.parametrize(
    "event_name", ["list_sessions-page-zero", "list_sessions-size-too-large", "list_sessions-page-not-a-number"]
)
def test_list_sessions_given_bad_paging_returns_422(api: Api, event_name: str) -> None:
    # Given page 0, size 500 or a non-number (Motorhead underflowed on page 0: defect 8)
    response = api.invoke("ListSessionsFunction", load_event(event_name))
    # Then a JSON error names the parameter
    assert response["statusCode"] == 422
    assert "query." in body(response)["error"]


def test_health_given_a_request_returns_the_time_in_ms(api: Api) -> None:
    response = api.invoke("HealthFunction", load_event("health-ok"))
    assert response["statusCode"] == 200
    assert abs(body(response)["now"] - time.time() * 1000) < 60_000


def test_post_given_base64_event_decodes_to_the_same_body() -> None:
    # The sample base64 event carries exactly the plain sample's body (guards the fixture itself)
    plain, encoded = load_event("post_memory-ok"), load_event("post_memory-base64")
    assert encoded["isBase64Encoded"] is True
    assert json.loads(base64.b64decode(encoded["body"])) == json.loads(plain["body"])
