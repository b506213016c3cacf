"""A session id is decoded exactly once, end to end: over real HTTP through the local gateway, and by the Lambda
handlers given the events API Gateway sends (path parameters already decoded once).

Decoding twice would merge sessions that differ only by an encoding (``100%25`` and ``100%``, ``%41lice`` and
``Alice``); not decoding would keep the encoding in the id; splitting on an encoded ``/`` would make ``a/b``
unreachable. Each of these reads or deletes another user's session, so each is pinned here on every route, with and
without the ``/motorhead`` prefix (n8n's Motorhead node).
"""

from __future__ import annotations

import copy
import http.client
import itertools
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import redis

from tests.support import Api, load_event

PREFIXES = ["", "/motorhead"]
EMPTY: dict[str, Any] = {"messages": [], "context": None, "tokens": 0}

# (the URL's path segment, the session it names, a sibling's segment, the sibling's session): two sessions that a
# decode too many or too few would merge
SIBLINGS = [
    pytest.param("100%2525", "100%25", "100%25", "100%", id="100%25-vs-100%"),
    pytest.param("100%25", "100%", "100%2525", "100%25", id="100%-vs-100%25"),
    pytest.param("%2541lice", "%41lice", "Alice", "Alice", id="%41lice-vs-Alice"),
    pytest.param("%41lice", "Alice", "%2541lice", "%41lice", id="encoded-A-is-Alice"),
    pytest.param("a%2Fb", "a/b", "a%252Fb", "a%2Fb", id="a/b-vs-a%2Fb"),
    pytest.param("%2F", "/", "%252F", "%2F", id="slash-vs-%2F"),
]


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


def send(base_url: str, method: str, path: str, payload: Any = None) -> Answer:
    """One request with ``path`` sent byte for byte (no client normalizes or re-encodes it)."""
    where = urlsplit(base_url)
    connection = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=30)
    try:
        data = None if payload is None else json.dumps(payload).encode()
        connection.request(method, path, body=data, headers={"content-type": "application/json"} if data else {})
        response = connection.getresponse()
        return Answer(response.status, response.getheader("content-type") or "", response.read().decode())
    finally:
        connection.close()


def said(content: str) -> dict[str, Any]:
    return {"messages": [{"role": "Human", "content": content}]}


def contents(memory: Any) -> list[str]:
    return [message["content"] for message in memory["messages"]]


class Http:
    """The API over real HTTP, with path segments given already percent-encoded."""

    def __init__(self, base_url: str, prefix: str) -> None:
        self.base_url, self.prefix = base_url, prefix

    def post(self, segment: str, content: str) -> None:
        answer = send(self.base_url, "POST", f"{self.prefix}/sessions/{segment}/memory", said(content))
        assert answer.status == 200, answer

    def get(self, segment: str) -> Any:
        answer = send(self.base_url, "GET", f"{self.prefix}/sessions/{segment}/memory")
        assert answer.status == 200, answer
        return answer.json()

    def delete(self, segment: str) -> None:
        assert send(self.base_url, "DELETE", f"{self.prefix}/sessions/{segment}/memory").status == 200

    def listed(self, query: str = "") -> Any:
        answer = send(self.base_url, "GET", f"{self.prefix}/sessions?size=100{query}")
        assert answer.status == 200, answer
        return answer.json()


# -- over HTTP, through the local gateway ---------------------------------------------------------------------------


@pytest.mark.parametrize(("segment", "session_id", "sibling_segment", "sibling_id"), SIBLINGS)
def test_memory_given_ids_that_differ_only_by_an_encoding_over_http_keeps_two_sessions(
    base_url: str, redis_client: redis.Redis, segment: str, session_id: str, sibling_segment: str, sibling_id: str
) -> None:
    for prefix in PREFIXES:  # one gateway for both prefixes (its shutdown costs half a second)
        redis_client.flushall()
        http_api = Http(base_url, prefix)
        # Given a message written through the URL segment
        http_api.post(segment, f"mine: {session_id}")
        # When the sibling is read / Then it is empty: the write landed in the session the segment names, only there
        assert http_api.get(sibling_segment) == EMPTY, prefix
        assert contents(http_api.get(segment)) == [f"mine: {session_id}"], prefix
        assert http_api.listed() == [session_id], prefix
        # When the sibling is written and the first session deleted
        http_api.post(sibling_segment, f"sibling: {sibling_id}")
        http_api.delete(segment)
        # Then only the first is gone: the sibling keeps its message and its place in the list
        assert http_api.get(segment) == EMPTY, prefix
        assert contents(http_api.get(sibling_segment)) == [f"sibling: {sibling_id}"], prefix
        assert http_api.listed() == [sibling_id], prefix


def test_memory_given_an_encoded_slash_in_the_url_names_one_session_end_to_end(
    base_url: str, redis_client: redis.Redis
) -> None:
    """``a%2Fb`` is the session ``a/b``: one id, never two path segments (``/sessions/a/b/memory`` is no route)."""
    for prefix in PREFIXES:
        redis_client.flushall()
        http_api = Http(base_url, prefix)
        # Given two messages written to a%2Fb
        http_api.post("a%2Fb", "first")
        http_api.post(quote("a/b", safe=""), "second")
        # When it is read and listed / Then both are in the one session "a/b"
        assert contents(http_api.get("a%2Fb")) == ["second", "first"], prefix
        assert http_api.listed() == ["a/b"], prefix
        # And the unencoded slash is another path, which no route serves
        assert send(base_url, "GET", f"{prefix}/sessions/a/b/memory").status == 404, prefix
        # When it is deleted / Then nothing of it is left
        http_api.delete("a%2Fb")
        assert http_api.get("a%2Fb") == EMPTY, prefix
        assert http_api.listed() == [], prefix


def test_request_given_an_id_that_is_not_utf8_answers_400_json_and_writes_nothing(
    base_url: str, redis_client: redis.Redis
) -> None:
    # Given an empty store
    for prefix in PREFIXES:
        for method, route in [("GET", "memory"), ("POST", "memory"), ("DELETE", "memory"), ("POST", "retrieval")]:
            # When a request names the session x%FF (0xFF is no UTF-8)
            payload = {"text": "anything"} if route == "retrieval" else said("never stored")
            path = f"{prefix}/sessions/x%FF/{route}"
            answer = send(base_url, method, path, payload if method == "POST" else None)
            # Then the gateway answers 400 JSON, as API Gateway refuses such a path, and no function ran
            assert answer.status == 400, (method, path, answer)
            assert answer.content_type == "application/json", (method, path)
            assert set(answer.json()) == {"error"}, (method, path)
    # And nothing was written
    assert redis_client.keys("*") == []


# A "%" that starts no escape: refused (400) wherever it is, never taken for the "%" that "%25" names
MALFORMED = [
    ("GET", "/sessions/100%/memory"),
    ("POST", "/sessions/%zz/memory"),
    ("DELETE", "/sessions/a%2/memory"),
    ("POST", "/sessions/100%/retrieval"),
    ("DELETE", "/users/100%"),
    ("POST", "/users/%zz/retrieval"),
    ("GET", "/sessions?user_id=%zz"),
    ("GET", "/sessions?namespace=a%2"),
    ("POST", "/sessions/s/memory?namespace=100%"),
    ("DELETE", "/sessions/s/memory?namespace=%"),
    ("POST", "/sessions/s/memory?user_id=u%g1"),
]


@pytest.mark.parametrize(("method", "path"), MALFORMED)
def test_request_given_a_malformed_percent_escape_answers_400_json_and_writes_nothing(
    base_url: str, redis_client: redis.Redis, method: str, path: str
) -> None:
    for prefix in PREFIXES:
        # When a request's path or query holds a "%" not followed by two hex digits
        payload = {"text": "anything"} if "retrieval" in path else said("never stored")
        answer = send(base_url, method, prefix + path, payload if method == "POST" else None)
        # Then the gateway answers 400 JSON naming the part, as the function itself would
        assert answer.status == 400, (method, prefix + path, answer)
        assert answer.content_type == "application/json", answer
        part = "query string" if "?" in path else "path"
        assert answer.json() == {"error": f"the {part} is not percent-encoded UTF-8"}, answer
    # And nothing was written
    assert redis_client.keys("*") == []


def test_memory_given_100_percent_encoded_as_25_is_still_the_session_100_percent(
    base_url: str, redis_client: redis.Redis
) -> None:
    # Given a message written to 100%25, under the namespace 100%25 (the session and namespace "100%")
    http_api = Http(base_url, "")
    assert send(base_url, "POST", "/sessions/100%25/memory?namespace=100%25", said("kept")).status == 200
    # When / Then the bare "100%" is refused, and 100%25 still reads the message
    assert send(base_url, "GET", "/sessions/100%/memory?namespace=100%25").status == 400
    assert send(base_url, "GET", "/sessions/100%25/memory?namespace=100%").status == 400
    assert contents(send(base_url, "GET", "/sessions/100%25/memory?namespace=100%25").json()) == ["kept"]
    assert http_api.listed("&namespace=100%25") == ["100%"]


def test_list_given_a_namespace_that_looks_encoded_decodes_it_exactly_once(
    base_url: str, redis_client: redis.Redis
) -> None:
    """The query string is decoded once too: ``namespace=100%25`` is the namespace ``100%``."""
    for prefix in PREFIXES:
        redis_client.flushall()
        http_api = Http(base_url, prefix)
        # Given a session written under the namespace 100%
        answer = send(base_url, "POST", f"{prefix}/sessions/s/memory?namespace=100%25", said("hello"))
        assert answer.status == 200, answer
        # When the namespaces 100% and 100%25 are listed / Then only the first holds the session
        assert http_api.listed("&namespace=100%25") == ["s"], prefix
        assert http_api.listed("&namespace=100%2525") == [], prefix


# -- the Lambda handlers, given API Gateway's events -----------------------------------------------------------------


def gateway_event(
    method: str, template: str, session_id: str | None, *, mount: str = "", payload: Any = None, raw: str = "decoded"
) -> dict[str, Any]:
    """The event API Gateway HTTP API sends for ``method <mount><template>`` with the session id filled in:
    ``pathParameters`` decoded once, ``requestContext.http.path`` decoded once, and ``rawPath`` decoded once (as
    this project observes) or, with ``raw="encoded"``, as the client sent it (as the sample events show it): the
    handlers must not care which."""
    event = copy.deepcopy(load_event("post_memory-ok"))
    route_key = f"{method} {mount}{template}"
    path = mount + template.replace("{session_id}", session_id or "")
    event["routeKey"] = event["requestContext"]["routeKey"] = route_key
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["http"]["path"] = path
    event["rawPath"] = (
        path if raw == "decoded" else mount + template.replace("{session_id}", quote(session_id or "", safe=""))
    )
    event["rawQueryString"] = "size=100" if session_id is None else ""
    event.pop("queryStringParameters", None)
    if session_id is None:
        event.pop("pathParameters", None)
    else:
        event["pathParameters"] = {"session_id": session_id}
    if payload is None:
        event.pop("body", None)
        event["headers"].pop("content-length", None)
    else:
        event["body"] = json.dumps(payload)
        event["headers"]["content-length"] = str(len(event["body"].encode()))
    return event


class Handlers:
    """The API through its Lambda handlers, one API Gateway event per call."""

    def __init__(self, api: Api, mount: str, raw: str) -> None:
        self.api, self.mount, self.raw = api, mount, raw

    def call(self, function_id: str, method: str, template: str, session_id: str | None, payload: Any = None) -> Any:
        event = gateway_event(method, template, session_id, mount=self.mount, payload=payload, raw=self.raw)
        response = self.api.invoke(function_id, event)
        assert response["statusCode"] == 200, response
        return json.loads(response["body"])

    def post(self, session_id: str, content: str) -> None:
        self.call("PostMemoryFunction", "POST", "/sessions/{session_id}/memory", session_id, said(content))

    def get(self, session_id: str) -> Any:
        return self.call("GetMemoryFunction", "GET", "/sessions/{session_id}/memory", session_id)

    def delete(self, session_id: str) -> None:
        self.call("DeleteMemoryFunction", "DELETE", "/sessions/{session_id}/memory", session_id)

    def listed(self) -> Any:
        return self.call("ListSessionsFunction", "GET", "/sessions", None)


@pytest.mark.parametrize(
    ("session_id", "sibling_id"),
    [("100%25", "100%"), ("100%", "100%25"), ("%41lice", "Alice"), ("a/b", "a%2Fb"), ("/", "%2F")],
)
def test_handlers_given_api_gateway_events_keep_ids_that_differ_only_by_an_encoding_apart(
    api: Api, redis_client: redis.Redis, session_id: str, sibling_id: str
) -> None:
    for mount, raw in itertools.product(PREFIXES, ("decoded", "encoded")):
        redis_client.flushall()
        handlers = Handlers(api, mount, raw)
        # Given a message written to the session, as API Gateway hands it over (decoded once)
        handlers.post(session_id, f"mine: {session_id}")
        # When its sibling is read / Then it is empty, and the session holds the message under its own id
        assert handlers.get(sibling_id) == EMPTY, (mount, raw)
        assert contents(handlers.get(session_id)) == [f"mine: {session_id}"], (mount, raw)
        assert handlers.listed() == [session_id], (mount, raw)
        # When the sibling is written and the session deleted / Then only the session is gone
        handlers.post(sibling_id, f"sibling: {sibling_id}")
        handlers.delete(session_id)
        assert handlers.get(session_id) == EMPTY, (mount, raw)
        assert contents(handlers.get(sibling_id)) == [f"sibling: {sibling_id}"], (mount, raw)
        assert handlers.listed() == [sibling_id], (mount, raw)


@pytest.mark.parametrize(
    ("template", "session_id", "raw_path", "raw_query", "part"),
    [
        ("/sessions/{session_id}/memory", "s", None, "namespace=100%", "query"),
        ("/sessions/{session_id}/memory", "s", None, "user_id=%zz", "query"),
        ("/sessions", None, None, "size=100&namespace=a%2", "query"),
        # rawPath as the client sent it (the sample events' form): one good escape, one malformed
        ("/sessions/{session_id}/memory", "a/b%zz", "/sessions/a%2Fb%zz/memory", "", "path"),
        ("/sessions/{session_id}/memory", "é100%", "/sessions/%C3%A9100%/memory", "", "path"),
    ],
    ids=["namespace-100%", "user-id-%zz", "list-namespace-a%2", "path-%zz", "path-100%"],
)
def test_handlers_given_a_malformed_percent_escape_answer_the_gateways_400(
    api: Api,
    base_url: str,
    redis_client: redis.Redis,
    template: str,
    session_id: str | None,
    raw_path: str | None,
    raw_query: str,
    part: str,
) -> None:
    # Given the event API Gateway would send for a request whose query (or client-encoded rawPath) is malformed
    method = "GET" if session_id is None else "POST"
    function_id = "ListSessionsFunction" if session_id is None else "PostMemoryFunction"
    event = gateway_event(method, template, session_id, payload=None if session_id is None else said("never"))
    event["rawQueryString"] = raw_query
    if raw_path is not None:
        event["rawPath"] = raw_path
    # When the function handles it
    response = api.invoke(function_id, event)
    # Then it answers 400 with the very answer the local gateway gives the same request over HTTP
    assert response["statusCode"] == 400, response
    over_http = send(base_url, method, (raw_path or event["rawPath"]) + (f"?{raw_query}" if raw_query else ""))
    part_name = "query string" if part == "query" else "path"
    assert (
        json.loads(response["body"]) == over_http.json() == {"error": f"the {part_name} is not percent-encoded UTF-8"}
    )
    assert over_http.status == 400
    # And nothing was written
    assert redis_client.keys("*") == []


def test_post_given_a_default_route_event_writes_the_session_its_path_names(api: Api) -> None:
    # Given the event of a $default route for POST /sessions/100%25/memory: the path decoded once, no parameters
    event = gateway_event("POST", "/sessions/{session_id}/memory", "100%", payload=said("default route"))
    event["routeKey"] = event["requestContext"]["routeKey"] = "$default"
    event.pop("pathParameters")
    # When the POST function handles it
    assert api.invoke("PostMemoryFunction", event)["statusCode"] == 200
    # Then the message is in the session "100%"
    assert Handlers(api, "", "decoded").listed() == ["100%"]
