"""Input that could once reach a 500: now a clear 422 JSON error, and nothing written."""

from __future__ import annotations

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
    assert response["statusCode"] == 422 and "Unicode" in body(response)["error"]
    assert redis_client.dbsize() == 0


def test_list_sessions_given_a_huge_page_returns_422_not_500(api: Api) -> None:
    event = load_event("list_sessions-ok")
    event["queryStringParameters"] = {"page": str(10**20)}
    event["rawQueryString"] = f"page={10**20}"
    assert api.invoke("ListSessionsFunction", event)["statusCode"] == 422
