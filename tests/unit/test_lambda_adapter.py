"""The Lambda adapter decodes a session id exactly once: API Gateway already decoded it, so the path the app routes on
is rebuilt with each parameter encoded once, and the session dependency reads the parameter API Gateway decoded.

A second decode would merge sessions (``100%25`` and ``100%``, ``%41lice`` and ``Alice``) and split ``a/b`` in two;
no decode at all would leave the percent-encoding in the id. No Redis here: a stand-in app echoes what it receives.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import unquote

import pytest
from fastapi import FastAPI, Request
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request as StarletteRequest

from devserver.lambda_runtime import FakeLambdaContext
from motorhead.entrypoints.http.lambda_adapter import (
    MOUNT,
    lambda_handler,
    malformed_escape,
    path_parameter,
    routed_path,
)

MEMORY_ROUTE = "/sessions/{session_id}/memory"

# (the session id API Gateway hands over, decoded once; the segment the app must route on, encoded once)
ONCE = [
    ("100%", "100%25"),
    ("100%25", "100%2525"),
    ("%41lice", "%2541lice"),
    ("Alice", "Alice"),
    ("a/b", "a%2Fb"),
    ("/", "%2F"),
    ("{x}:* ?", "%7Bx%7D%3A%2A%20%3F"),
    ("会話🧠", "%E4%BC%9A%E8%A9%B1%F0%9F%A7%A0"),
]


def gateway_event(session_id: str | None, *, method: str = "GET", mount: str = "", default_route: bool = False) -> Any:
    """An API Gateway HTTP API (payload 2.0) event for ``GET <mount>/sessions/<id>/memory``: ``rawPath`` and
    ``requestContext.http.path`` decoded once, the route's ``pathParameters`` decoded once (none on ``$default``)."""
    path = f"{mount}/sessions/{session_id}/memory"
    route_key = "$default" if default_route else f"{method} {mount}{MEMORY_ROUTE}"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "example.execute-api.us-east-1.amazonaws.com"},
        "requestContext": {
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9"},
            "routeKey": route_key,
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }
    if session_id is not None and not default_route:
        event["pathParameters"] = {"session_id": session_id}
    return event


def echo_app() -> FastAPI:
    """A stand-in for a memory function: answers the id the session dependency would see, and the routed path."""
    app = FastAPI()

    @app.get("/sessions/{session_id}/memory")
    def memory(request: Request, session_id: str) -> dict[str, str]:
        return {"id": path_parameter(request, "session_id", session_id), "path": request.scope["path"]}

    return app


def invoke(event: Any) -> Any:
    """Invoke the adapter's Mangum handler as Lambda would (one event loop per invocation)."""
    handler = lambda_handler(echo_app())
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return handler(event, FakeLambdaContext())
    finally:
        asyncio.set_event_loop(None)
        loop.close()


@pytest.mark.parametrize(("session_id", "segment"), ONCE)
@pytest.mark.parametrize("mount", ["", MOUNT])
def test_routed_path_given_a_decoded_parameter_encodes_it_exactly_once(
    session_id: str, segment: str, mount: str
) -> None:
    # Given the event API Gateway sends for the id (under the n8n prefix too)
    event = gateway_event(session_id, mount=mount)
    # When the path to route on is rebuilt / Then the id is encoded once, and the prefix is gone
    assert routed_path(event) == f"/sessions/{segment}/memory"


@given(session_id=st.text(min_size=1, max_size=40))
def test_routed_path_given_any_id_routes_on_one_segment_that_decodes_back_to_it(session_id: str) -> None:
    """Whatever the id (slashes, percent signs, unicode), it stays one path segment and one decode gives it back."""
    # Given any id API Gateway decoded
    path = routed_path(gateway_event(session_id))
    # When the app's router splits the path / Then the id is exactly one segment, which decodes once to the id
    prefix, segment, suffix = path.split("/")[1], path.split("/")[2], path.split("/")[3:]
    assert (prefix, suffix) == ("sessions", ["memory"])
    assert unquote(segment, errors="strict") == session_id
    assert path.isascii()


@pytest.mark.parametrize(
    ("route_key", "routed"),
    [
        ("GET /", "/"),
        (f"GET {MOUNT}", "/"),
        ("GET /sessions", "/sessions"),
        (f"GET {MOUNT}/sessions", "/sessions"),
        ("GET /motorheads/sessions", "/motorheads/sessions"),  # a mere name prefix is not the mount
    ],
)
def test_routed_path_given_a_route_without_parameters_strips_only_the_mount(route_key: str, routed: str) -> None:
    event = {"version": "2.0", "routeKey": route_key, "rawPath": route_key.split(" ")[1], "requestContext": {}}
    assert routed_path(event) == routed


@pytest.mark.parametrize(("session_id", "segment"), [case for case in ONCE if "/" not in case[0]])
def test_routed_path_given_the_default_route_encodes_the_decoded_path_once(session_id: str, segment: str) -> None:
    # Given a $default route: no template, only the once-decoded path (an id holding "/" cannot survive this)
    event = gateway_event(session_id, default_route=True)
    # When / Then the path is encoded once again, keeping its slashes
    assert routed_path(event) == f"/sessions/{segment}/memory"


def request_with(event: Any) -> StarletteRequest:
    scope: dict[str, Any] = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
    if event is not None:
        scope["aws.event"] = event
    return StarletteRequest(scope)


@pytest.mark.parametrize(("session_id", "segment"), ONCE)
def test_path_parameter_given_a_lambda_event_reads_api_gateways_value_not_the_routers(
    session_id: str, segment: str
) -> None:
    # Given a request from a Lambda event, and the router's view of the same parameter (the once-encoded segment)
    request = request_with(gateway_event(session_id))
    # When the parameter is read / Then it is API Gateway's decoded value, not decoded nor encoded again
    assert path_parameter(request, "session_id", segment) == session_id


def test_path_parameter_given_no_lambda_event_falls_back_to_the_routers_value() -> None:
    """Outside Lambda (a test client, uvicorn) the router's value is already decoded once."""
    assert path_parameter(request_with(None), "session_id", "100%") == "100%"
    assert path_parameter(request_with({"pathParameters": None}), "session_id", "a/b") == "a/b"


@pytest.mark.parametrize(("session_id", "segment"), ONCE)
@pytest.mark.parametrize("mount", ["", MOUNT])
def test_handler_given_an_api_gateway_event_hands_the_app_the_id_decoded_once(
    session_id: str, segment: str, mount: str
) -> None:
    # Given the Lambda handler of an app, and API Gateway's event for the id (also under the n8n prefix)
    # When it is invoked
    response = invoke(gateway_event(session_id, mount=mount))
    # Then the app routed on the once-encoded path and its session dependency got the id itself
    assert response["statusCode"] == 200, response
    assert json.loads(response["body"]) == {"id": session_id, "path": f"/sessions/{segment}/memory"}


@pytest.mark.parametrize("session_id", ["100%", "%41lice", "会話"])
def test_handler_given_a_default_route_event_hands_the_app_the_id_decoded_once(session_id: str) -> None:
    # Given a $default route's event for the id: no pathParameters, the path decoded once
    # When the handler is invoked
    response = invoke(gateway_event(session_id, default_route=True))
    # Then the app still sees the id itself
    assert response["statusCode"] == 200, response
    assert json.loads(response["body"])["id"] == session_id


@pytest.mark.parametrize(
    ("raw_path", "raw_query", "part"),
    [
        (None, "", None),  # rawPath decoded once, as API Gateway delivers it: its "%" is the client's "%25"
        ("/sessions/100%25/memory", "", None),  # rawPath as the client sent it, well formed
        ("/sessions/%C3%A9100%/memory", "", "path"),  # as the client sent it, with a bare "%"
        ("/sessions/a%2Fb%zz/memory", "", "path"),
        (None, "namespace=100%", "query"),
        (None, "user_id=%zz&size=2", "query"),
        (None, "namespace=a%2", "query"),
        (None, "namespace=100%25&user_id=%41", None),
    ],
)
def test_malformed_escape_given_an_event_names_the_part_only_where_the_clients_encoding_shows_one(
    raw_path: str | None, raw_query: str, part: str | None
) -> None:
    # Given the event of GET /sessions/100%25/memory (the session "100%"), its rawPath and query as given
    event = gateway_event("100%")
    event["rawPath"] = raw_path or event["rawPath"]
    event["rawQueryString"] = raw_query
    # When / Then the malformed part is named, and nothing else is
    assert malformed_escape(event) == part
