"""Input that could once reach a 500: now a clear 422 JSON error, and nothing written."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import redis

from tests.support import Api, body, load_event, post_event


@pytest.mark.parametrize(
    "payload",
    [
        '{"messages": [{"role": "Human", "content": "cut mid-emoji \\ud83e"}]}',
        '{"messages": [], "context": "\\udfff"}',
        '{"messages": [{"role": "\\ud800", "content": "x"}]}',
    ],
)
def test_post_given_lone_surrogates_returns_422_not_500(api: Api, redis_client: redis.Redis, payload: str) -> None:
    response = api.invoke("PostMemoryFunction", post_event("s", payload))
    # (ours: "text must be valid Unicode"; a string with a length limit is refused by pydantic's own check first,
    # "unable to parse raw data as a unicode string")
    assert response["statusCode"] == 422 and "unicode" in body(response)["error"].lower()
    assert redis_client.dbsize() == 0


def test_list_sessions_given_a_huge_page_returns_422_not_500(api: Api) -> None:
    event = load_event("list_sessions-ok")
    event["queryStringParameters"] = {"page": str(10**20)}
    event["rawQueryString"] = f"page={10**20}"
    assert api.invoke("ListSessionsFunction", event)["statusCode"] == 422


def _retrieval_event(text: str) -> dict[str, Any]:
    event = copy.deepcopy(load_event("retrieval-ok"))
    event["body"] = json.dumps({"text": text})
    event["headers"]["content-length"] = str(len(event["body"]))
    return event


def test_post_given_an_empty_role_says_characters_never_items(api: Api, redis_client: redis.Redis) -> None:
    # When a message's role is empty / Then the 422 speaks of characters, as a string's limit does
    response = api.invoke("PostMemoryFunction", load_event("post_memory-empty-role"))
    assert response["statusCode"] == 422
    error = body(response)["error"]
    assert "at least 1 character" in error and "item" not in error, error
    assert redis_client.dbsize() == 0


def test_retrieval_given_a_text_over_8192_characters_says_characters_never_items(api: Api) -> None:
    # When the query is one character over its limit / Then the 422 names the limit in characters
    response = api.invoke("RetrievalFunction", _retrieval_event("x" * 8_193))
    assert response["statusCode"] == 422
    error = body(response)["error"]
    assert "at most 8192 characters" in error and "item" not in error, error
