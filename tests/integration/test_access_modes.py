"""Access modes end to end, through the functions behind the local gateway: JWTs of a locally served JWKS, the
per-tenant rate limit, and LangChain's own client carrying its key in the URL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import requests
from langchain_community.memory.motorhead_memory import MotorheadMemory

from devserver.embedded_redis import EmbeddedRedis
from tests.integration.conftest import SecureApi, serving
from tests.jwks_server import Failure, JwksServer, SigningKey, in_seconds, mint, rsa_key
from tests.support import cold_start

ISSUER, AUDIENCE = "https://issuer.test/", "motorhead-api"


def get(base_url: str, path: str, headers: dict[str, str]) -> requests.Response:
    return requests.get(base_url + path, headers=headers, timeout=10)


def post(base_url: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> requests.Response:
    return requests.post(base_url + path, json=body, headers=headers, timeout=10)


# --- JWT ------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signing_key() -> SigningKey:
    return rsa_key("key-1")


@pytest.fixture
def jwt_api(
    signing_key: SigningKey, redis_server: EmbeddedRedis, redis_client: redis.Redis
) -> Iterator[tuple[str, JwksServer]]:
    with (
        JwksServer(signing_key) as jwks,
        cold_start(
            REDIS_URL=redis_server.url,
            MOTORHEAD_AUTH="jwt",
            MOTORHEAD_JWT_ISSUER=ISSUER,
            MOTORHEAD_JWT_AUDIENCE=AUDIENCE,
            MOTORHEAD_JWT_JWKS_URL=jwks.url,
            MOTORHEAD_JWT_TENANT_CLAIM="org_id",
        ) as api,
        serving(api) as base_url,
    ):
        yield base_url, jwks


def token(
    key: SigningKey, *, tenant: str = "acme", scope: str = "motorhead:read motorhead:write", **extra: Any
) -> dict[str, str]:
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u1", "exp": in_seconds(300), "org_id": tenant, "scope": scope}
    return {"Authorization": "Bearer " + mint({**claims, **extra}, key=key)}


def test_jwt_given_a_valid_token_serves_its_tenant_within_its_scopes(
    jwt_api: tuple[str, JwksServer], signing_key: SigningKey
) -> None:
    base_url, _ = jwt_api
    writer = token(signing_key)
    reader = token(signing_key, scope="motorhead:read")
    # Given a token that may read and write / When it posts and reads / Then it works
    assert post(base_url, "/sessions/s/memory", {"messages": [{"role": "Human", "content": "hi"}]}, writer).ok
    assert [m["content"] for m in get(base_url, "/sessions/s/memory", writer).json()["messages"]] == ["hi"]
    # And a read-only token reads, but its POST is 403 and its list too (no "list" scope)
    assert get(base_url, "/sessions/s/memory", reader).status_code == 200
    assert post(base_url, "/sessions/s/memory", {"messages": []}, reader).status_code == 403
    assert get(base_url, "/sessions", reader).status_code == 403
    # And the tenant comes from the configured claim
    assert get(base_url, "/keys/current", reader).json() == {
        "auth": "jwt",
        "tenant": "acme",
        "key_id": None,
        "scopes": ["read"],
    }


def test_jwt_given_another_tenants_token_sees_nothing(jwt_api: tuple[str, JwksServer], signing_key: SigningKey) -> None:
    base_url, _ = jwt_api
    assert post(
        base_url, "/sessions/s/memory", {"messages": [{"role": "Human", "content": "acme only"}]}, token(signing_key)
    ).ok
    other = token(signing_key, tenant="globex")
    assert get(base_url, "/sessions/s/memory", other).json()["messages"] == []


@pytest.mark.parametrize(
    "bad",
    [
        {"exp": in_seconds(-120)},
        {"aud": "someone-else"},
        {"iss": "https://evil.test/"},
        {"org_id": ""},
    ],
    ids=["expired", "audience", "issuer", "no-tenant"],
)
def test_jwt_given_a_bad_token_answers_401_with_a_bearer_challenge(
    jwt_api: tuple[str, JwksServer], signing_key: SigningKey, bad: dict[str, Any]
) -> None:
    base_url, _ = jwt_api
    answer = get(base_url, "/sessions/s/memory", token(signing_key, **bad))
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == 'Bearer realm="motorhead"'
    assert set(answer.json()) == {"error"}


def test_jwt_given_an_api_key_shaped_or_a_foreign_token_answers_401(
    jwt_api: tuple[str, JwksServer], signing_key: SigningKey
) -> None:
    base_url, _ = jwt_api
    stranger = rsa_key("key-1")  # same kid, another key
    for headers in ({"x-api-key": "mhk_0123456789abcdef_" + "A" * 43}, token(stranger), {}):
        assert get(base_url, "/sessions/s/memory", headers).status_code == 401


def test_jwt_given_the_jwks_is_down_answers_503_not_401(
    jwt_api: tuple[str, JwksServer], signing_key: SigningKey
) -> None:
    base_url, jwks = jwt_api
    jwks.fail(Failure.STATUS_500)
    answer = get(base_url, "/sessions/s/memory", token(signing_key))
    assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
    assert jwks.url not in answer.text


# --- rate limit -----------------------------------------------------------------------------------------------------


@pytest.fixture
def limited(redis_server: EmbeddedRedis, redis_client: redis.Redis) -> Iterator[SecureApi]:
    with (
        cold_start(
            REDIS_URL=redis_server.url,
            MOTORHEAD_AUTH="api-key",
            MOTORHEAD_RATE_LIMIT_RPS="2",
            MOTORHEAD_RATE_LIMIT_BURST="3",
        ) as api,
        serving(api) as base_url,
    ):
        yield SecureApi(base_url=base_url, api=api)


def test_rate_limit_given_a_tenant_over_its_burst_answers_429_and_spares_other_tenants(limited: SecureApi) -> None:
    # Given a limit of 2 requests per second with a burst of 3, and two tenants
    busy = {"Authorization": "Bearer " + limited.key("busy")}
    calm = {"Authorization": "Bearer " + limited.key("calm")}
    # When one tenant sends 5 requests at once
    answers = [get(limited.base_url, "/sessions/s/memory", busy) for _ in range(5)]
    # Then the burst passes, the rest is 429 JSON with Retry-After, and the other tenant is not slowed down
    assert [a.status_code for a in answers][:3] == [200, 200, 200]
    refused = [a for a in answers if a.status_code == 429]
    assert refused and all(set(a.json()) == {"error"} and int(a.headers["retry-after"]) >= 1 for a in refused)
    assert get(limited.base_url, "/sessions/s/memory", calm).status_code == 200
    # And once the bucket refills, the busy tenant gets in again
    time.sleep(1.1)
    assert get(limited.base_url, "/sessions/s/memory", busy).status_code == 200


@pytest.fixture
def strict(redis_server: EmbeddedRedis, redis_client: redis.Redis) -> Iterator[SecureApi]:
    with (
        cold_start(
            REDIS_URL=redis_server.url,
            MOTORHEAD_AUTH="api-key",
            MOTORHEAD_RATE_LIMIT_RPS="0.01",
            MOTORHEAD_RATE_LIMIT_BURST="1",
        ) as api,
        serving(api) as base_url,
    ):
        yield SecureApi(base_url=base_url, api=api)


def test_rate_limit_given_a_tenant_over_it_every_route_answers_429_and_changes_nothing(
    strict: SecureApi, redis_client: redis.Redis
) -> None:
    # Given a tenant whose one token (burst 1, a token per 100 s) went on a first write; its token rides on each
    # route's own round trip, so the refusal must come before the route changes anything
    headers = {"Authorization": "Bearer " + strict.key("acme")}
    say = {"messages": [{"role": "Human", "content": "hello"}]}
    assert post(strict.base_url, "/sessions/kept/memory", say, headers).status_code == 200
    before = {key: redis_client.dump(key) for key in redis_client.scan_iter() if not str(key).endswith(":rate")}
    # When it calls every route it may
    answers = {
        "GET memory": get(strict.base_url, "/sessions/kept/memory", headers),
        "POST to a new session": post(strict.base_url, "/sessions/new/memory", say, headers),
        "POST to the session": post(strict.base_url, "/sessions/kept/memory", say, headers),
        "DELETE": requests.delete(f"{strict.base_url}/sessions/kept/memory", headers=headers, timeout=10),
        "GET sessions": get(strict.base_url, "/sessions", headers),
        "GET sessions?user_id": get(strict.base_url, "/sessions?user_id=ana", headers),
        "GET session": get(strict.base_url, "/sessions/kept", headers),
        "GET keys/current": get(strict.base_url, "/keys/current", headers),
    }
    # Then each is a 429 with Retry-After, and Redis holds exactly what it held (the bucket aside)
    for name, answer in answers.items():
        assert answer.status_code == 429, (name, answer.status_code, answer.text)
        assert answer.json() == {"error": "too many requests for this tenant; retry later"}, name
        assert int(answer.headers["retry-after"]) >= 1, name
    after = {key: redis_client.dump(key) for key in redis_client.scan_iter() if not str(key).endswith(":rate")}
    assert after == before


def test_rate_limit_given_off_by_default_lets_bursts_through(secure: SecureApi) -> None:
    headers = {"Authorization": "Bearer " + secure.key("acme")}
    assert {get(secure.base_url, "/sessions/s/memory", headers).status_code for _ in range(30)} == {200}


# --- LangChain's client, unchanged, with its key in the URL ---------------------------------------------------------


def loaded(url: str, session_id: str) -> MotorheadMemory:
    memory = MotorheadMemory(session_id=session_id, url=url, memory_key="history")
    asyncio.run(memory.init())
    return memory


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_langchain_given_the_key_in_the_url_works_unchanged_and_without_it_sees_nothing(secure: SecureApi) -> None:
    # Given a key, and LangChain's MotorheadMemory with url "http://anyone:<key>@host" (requests sends it as Basic)
    key = secure.key("acme")
    with_key = secure.base_url.replace("http://", f"http://anyone:{key}@")
    # When it saves turns, reloads and deletes, as an app does
    memory = loaded(with_key, "lc-secure")
    memory.save_context({"input": "hi"}, {"output": "hello"})
    assert [(m.type, m.content) for m in loaded(with_key, "lc-secure").chat_memory.messages] == [
        ("human", "hi"),
        ("ai", "hello"),
    ]
    # Then without the key, the same client sees nothing and stores nothing (every call is a 401)
    anonymous = loaded(secure.base_url, "lc-secure")
    assert anonymous.chat_memory.messages == []
    anonymous.save_context({"input": "planted"}, {"output": "by nobody"})
    # And with another tenant's key it sees nothing either
    other = secure.base_url.replace("http://", f"http://x:{secure.key('globex')}@")
    assert loaded(other, "lc-secure").chat_memory.messages == []
    # And delete_session() with the key (requests sends Basic on DELETE too) forgets the session
    assert len(loaded(with_key, "lc-secure").chat_memory.messages) == 2
    loaded(with_key, "lc-secure").delete_session()
    assert loaded(with_key, "lc-secure").chat_memory.messages == []
