"""The memory as MCP tools, with the real ``mcp`` client: over streamable HTTP through the local gateway (the MCP
function as Lambda runs it, behind API keys), and over stdio against ``make -s mcp`` (and ``python -m devserver.mcp``,
what it runs, where the exit status is the server's own).
Every tool, both protocol eras, every refusal, hostile ids, and what MCP writes the REST API reads (and back)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import quote

import httpx2
import pytest
import redis
import requests
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, TextContent

from devserver.embedded_redis import EmbeddedRedis
from devserver.local_sqs import LocalSqs, SqsPoller
from motorhead.adapters.redis_db.keys import Keys
from motorhead.core.values import SessionRef
from motorhead.observability import logger
from tests.integration.conftest import SecureApi, ltm_gateway, serving
from tests.jwks_server import JwksServer, SigningKey, in_seconds, mint, rsa_key
from tests.support import REPO, Api, cold_start, load_event, with_wrong_secret

T = TypeVar("T")
HOSTILE_ID = "ana@example.com:{s} *1 ünï/%25?#"
TOOLS = ["add_memory", "get_memory", "search_memory", "delete_memory", "list_sessions"]
MODES = ["auto", "legacy"]  # the current revision (no initialize), and a client of the previous ones


def over_http(
    base_url: str, key: str | None, steps: Callable[[Client], Awaitable[T]], *, mode: str = "auto", path: str = "/mcp"
) -> T:
    """Run ``steps`` with a real MCP client on ``base_url`` + ``path``, the key as bearer."""

    async def run() -> T:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            Client(streamable_http_client(base_url + path, http_client=http), mode=mode) as client,
        ):
            return await steps(client)

    return asyncio.run(run())


def call(base_url: str, key: str, tool: str, arguments: dict[str, Any], *, mode: str = "auto") -> CallToolResult:
    async def steps(client: Client) -> CallToolResult:
        return await client.call_tool(tool, arguments)

    return over_http(base_url, key, steps, mode=mode)


def text_of(result: CallToolResult) -> str:
    """The result's text rendering."""
    (block,) = result.content
    assert isinstance(block, TextContent)
    return block.text


def error_text(result: CallToolResult) -> str:
    assert result.is_error, result
    text = text_of(result)
    assert "Traceback" not in text
    return text


def rest(base_url: str, key: str, method: str, path: str, body: Any = None, **query: Any) -> requests.Response:
    return requests.request(
        method, base_url + path, json=body, params=query or None, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def memory_path(session_id: str) -> str:
    return f"/sessions/{quote(session_id, safe='')}/memory"


# --- the tools, over HTTP -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_tools_given_a_key_add_get_list_and_delete_as_the_rest_api_does(secure: SecureApi, mode: str) -> None:
    key = secure.key("acme")
    url = secure.base_url

    async def steps(client: Client) -> dict[str, Any]:
        listed = await client.list_tools()
        added = await client.call_tool(
            "add_memory",
            {"session_id": "chat-1", "messages": [{"role": "Human", "content": "I'm allergic to peanuts"}]},
        )
        read = await client.call_tool("get_memory", {"session_id": "chat-1"})
        sessions = await client.call_tool("list_sessions", {"size": 5})
        deleted = await client.call_tool("delete_memory", {"session_id": "chat-1"})
        after = await client.call_tool("get_memory", {"session_id": "chat-1"})
        return {"tools": listed.tools, "added": added, "read": read, "sessions": sessions, "deleted": deleted,
                "after": after}  # fmt: skip

    # Given a key of acme / When an MCP client lists the tools and calls each in turn
    got = over_http(url, key, steps, mode=mode)
    # Then the five tools are there, with schemas and truthful annotations
    tools = {tool.name: tool for tool in got["tools"]}
    assert sorted(tools) == sorted(TOOLS)
    assert tools["get_memory"].annotations.read_only_hint is True
    assert tools["delete_memory"].annotations.destructive_hint is True
    assert tools["add_memory"].annotations.read_only_hint is False
    assert tools["add_memory"].input_schema["required"] == ["session_id", "messages"]
    assert tools["get_memory"].output_schema is not None
    assert "\n    " not in (tools["add_memory"].description or "")  # no code indentation for the model to read
    # And each result is the REST JSON as structured content, with a text rendering
    assert got["added"].structured_content == {"status": "Ok"} and not got["added"].is_error
    read = got["read"].structured_content
    assert [(m["role"], m["content"]) for m in read["messages"]] == [("Human", "I'm allergic to peanuts")]
    assert read["context"] is None and "peanuts" in text_of(got["read"])
    assert got["sessions"].structured_content == {"session_ids": ["chat-1"], "total": 1, "next_page": None}
    assert got["deleted"].structured_content == {"status": "Ok"}
    assert got["after"].structured_content == {"messages": [], "context": None, "tokens": 0}


def test_tools_given_what_mcp_writes_rest_reads_it_and_the_other_way_round(secure: SecureApi) -> None:
    key = secure.key("acme")
    url = secure.base_url
    # Given a hostile session id written over MCP
    messages = [{"role": "Human", "content": "from mcp"}]
    assert not call(url, key, "add_memory", {"session_id": HOSTILE_ID, "messages": messages}).is_error
    # When REST reads it / Then it is the same session, and GET's JSON is get_memory's
    got = rest(url, key, "GET", memory_path(HOSTILE_ID))
    assert got.status_code == 200 and [m["content"] for m in got.json()["messages"]] == ["from mcp"]
    assert call(url, key, "get_memory", {"session_id": HOSTILE_ID}).structured_content == got.json()
    # And what REST writes, MCP reads
    posted = rest(url, key, "POST", memory_path(HOSTILE_ID), {"messages": [{"role": "AI", "content": "from rest"}]})
    assert posted.status_code == 200
    read = call(url, key, "get_memory", {"session_id": HOSTILE_ID}).structured_content
    assert [m["content"] for m in read["messages"]] == ["from rest", "from mcp"]
    # And what MCP deletes is gone for REST
    assert not call(url, key, "delete_memory", {"session_id": HOSTILE_ID}).is_error
    assert rest(url, key, "GET", memory_path(HOSTILE_ID)).json()["messages"] == []


def test_tools_given_bad_arguments_answer_tool_errors_with_the_rest_apis_messages(secure: SecureApi) -> None:
    key = secure.key("acme")
    url = secure.base_url
    too_long = "x" * 257
    # Given an id over the limit / Then a tool error with the message REST gives for it
    refused = rest(url, key, "GET", memory_path(too_long))
    assert refused.status_code == 400
    assert refused.json()["error"] in error_text(call(url, key, "get_memory", {"session_id": too_long}))
    # And an empty id, a missing argument, a wrong type, an empty role: tool errors, never a crash
    assert "session id" in error_text(call(url, key, "get_memory", {"session_id": ""}))
    assert "session_id" in error_text(call(url, key, "get_memory", {}))
    assert "messages" in error_text(call(url, key, "add_memory", {"session_id": "a", "messages": "hello"}))
    bad_role = {"session_id": "a", "messages": [{"role": "", "content": "x"}]}
    assert "role" in error_text(call(url, key, "add_memory", bad_role))
    # And a message over the limit answers the REST API's 413 text; nothing was stored
    huge = {"session_id": "a", "messages": [{"role": "Human", "content": "x" * 70_000}]}
    assert "the limit is 65536" in error_text(call(url, key, "add_memory", huge))
    assert rest(url, key, "GET", memory_path("a")).json()["messages"] == []
    # And search with long-term memory off, or with both or neither of session_id and user_id
    assert "long-term memory is disabled" in error_text(
        call(url, key, "search_memory", {"text": "x", "session_id": "a"})
    )
    both = {"text": "x", "session_id": "a", "user_id": "ana"}
    assert "exactly one of session_id or user_id" in error_text(call(url, key, "search_memory", both))
    assert "exactly one" in error_text(call(url, key, "search_memory", {"text": "x"}))
    # And a page out of range
    assert "page" in error_text(call(url, key, "list_sessions", {"page": 0}))
    # And a schema failure names the field and the rule, never the value sent nor pydantic's URL
    secret = {"session_id": "a", "messages": [{"role": "", "content": "my-secret-diagnosis"}]}
    text = error_text(call(url, key, "add_memory", secret))
    assert text.startswith("invalid arguments for add_memory: messages.0.role: "), text
    assert "my-secret-diagnosis" not in text and "pydantic" not in text and "input_value" not in text
    assert error_text(call(url, key, "get_memory", {"session_id": 7})).startswith(
        "invalid arguments for get_memory: session_id: "
    )


# --- access ---------------------------------------------------------------------------------------------------------


def test_http_given_no_wrong_or_revoked_key_answers_401_before_any_mcp(secure: SecureApi) -> None:
    url = secure.base_url
    key = secure.key("acme")
    revoked = secure.key("acme")
    secure.revoke(revoked)
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    for headers in ({}, {"Authorization": "Bearer mh_nope_nope"}, {"Authorization": f"Bearer {revoked}"}):
        # When an MCP request comes without a valid key / Then 401 JSON with a challenge, as on every REST route
        answer = requests.post(url + "/mcp", json=initialize, headers=headers, timeout=30)
        assert answer.status_code == 401, answer.text
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert set(answer.json()) == {"error"}
    # And GET and DELETE: 401 without a key; with one, 405 (a stateless server has no stream, no session)
    assert requests.get(url + "/mcp", timeout=30).status_code == 401
    for method in ("GET", "DELETE"):
        answer = requests.request(method, url + "/mcp", headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert answer.status_code == 405 and answer.headers["allow"] == "POST"
        assert set(answer.json()) == {"error"}


def refused_mcp_client(base_url: str, key: str | None, *, mode: str) -> list[httpx2.Response]:
    """Every HTTP answer a real MCP client got while it tried to list the tools with ``key``, which must fail."""
    answers: list[httpx2.Response] = []

    async def seen(response: httpx2.Response) -> None:
        await response.aread()
        answers.append(response)

    async def run() -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30, event_hooks={"response": [seen]}) as http,
            Client(streamable_http_client(base_url + "/mcp", http_client=http), mode=mode) as client,
        ):
            await client.list_tools()

    with pytest.raises(BaseExceptionGroup) as refused:  # the client's task group: the server said no
        asyncio.run(run())
    assert refused.group_contains(MCPError)
    return answers


@pytest.mark.parametrize("mode", MODES)
def test_http_given_no_malformed_wrong_or_revoked_key_the_mcp_client_gets_401_and_nothing_else(
    secure: SecureApi, mode: str
) -> None:
    key = secure.key("acme")
    revoked = secure.key("acme")
    secure.revoke(revoked)
    # Given no key, a malformed one, a well-formed key with a wrong secret, and a revoked key
    for presented in (None, "mh_nope_nope", with_wrong_secret(key), revoked):
        # When a real MCP client connects with it and lists the tools
        answers = refused_mcp_client(secure.base_url, presented, mode=mode)
        # Then every answer it got was the REST API's 401, JSON with a challenge: no MCP message got through
        assert answers, presented
        for answer in answers:
            assert answer.status_code == 401, (presented, answer.status_code, answer.text)
            assert answer.headers["www-authenticate"].startswith("Bearer")
            assert set(answer.json()) == {"error"}
    # And the good key still lists the tools
    assert len(over_http(secure.base_url, key, lambda client: client.list_tools()).tools) == len(TOOLS)


def test_http_given_a_body_over_the_limit_answers_413_before_the_sdk(secure: SecureApi) -> None:
    key = secure.key("acme")
    huge = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add_memory", "arguments": {
        "session_id": "big", "messages": [{"role": "Human", "content": "x" * 1_100_000}]}}}  # fmt: skip
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json, text/event-stream"}
    # When a request is over MOTORHEAD_MAX_BODY_BYTES / Then 413 JSON, as on the REST routes, and nothing stored
    answer = requests.post(secure.base_url + "/mcp", json=huge, headers=headers, timeout=30)
    assert answer.status_code == 413 and set(answer.json()) == {"error"}
    assert rest(secure.base_url, key, "GET", memory_path("big")).json()["messages"] == []


def test_http_given_a_foreign_host_or_origin_answers_421_or_403_as_json_errors(secure: SecureApi) -> None:
    key = secure.key("acme")
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {
        "Authorization": f"Bearer {key}",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-06-18",
    }
    foreign_host = {**headers, "Host": "evil.example.com"}
    foreign_origin = {**headers, "Origin": "https://evil.example.com"}
    # When a request names a host the function does not serve, or comes from a foreign page (DNS rebinding)
    refusals = ((foreign_host, 421, "Invalid Host header"), (foreign_origin, 403, "Invalid Origin header"))
    for sent, status, text in refusals:
        answer = requests.post(secure.base_url + "/mcp", json=body, headers=sent, timeout=30)
        # Then the SDK's check refuses it with its status, the body JSON {"error": ...} as every other error's
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"] == "application/json"
        assert answer.json() == {"error": text}


def test_tools_given_a_read_only_key_read_and_are_refused_the_rest(secure: SecureApi) -> None:
    url = secure.base_url
    writer = secure.key("acme")
    reader = secure.key("acme", "read")
    messages = [{"role": "Human", "content": "hi"}]
    assert not call(url, writer, "add_memory", {"session_id": "s", "messages": messages}).is_error

    # Given a read-only key / Then it is shown the read tools alone
    async def names(client: Client) -> list[str]:
        return sorted(tool.name for tool in (await client.list_tools()).tools)

    assert over_http(url, reader, names) == ["get_memory", "search_memory"]
    assert over_http(url, secure.key("acme", "read,list"), names) == ["get_memory", "list_sessions", "search_memory"]
    assert over_http(url, writer, names) == sorted(TOOLS)
    # And it reads, and each other tool, called all the same, is a tool error naming the scope
    assert call(url, reader, "get_memory", {"session_id": "s"}).structured_content["messages"][0]["content"] == "hi"
    add = call(url, reader, "add_memory", {"session_id": "s", "messages": messages})
    assert "this credential does not allow 'write'" in error_text(add)
    assert "'delete'" in error_text(call(url, reader, "delete_memory", {"session_id": "s"}))
    assert "'list'" in error_text(call(url, reader, "list_sessions", {}))
    # And nothing changed
    assert len(call(url, writer, "get_memory", {"session_id": "s"}).structured_content["messages"]) == 1


def test_tools_given_another_tenants_key_see_nothing_of_the_first(secure: SecureApi) -> None:
    url = secure.base_url
    acme = secure.key("acme")
    globex = secure.key("globex")
    messages = [{"role": "Human", "content": "acme's secret"}]
    assert not call(url, acme, "add_memory", {"session_id": "shared-name", "messages": messages}).is_error
    # When globex names the same session / Then it is globex's own, empty; its list has none of acme's
    assert call(url, globex, "get_memory", {"session_id": "shared-name"}).structured_content["messages"] == []
    assert call(url, globex, "list_sessions", {}).structured_content["session_ids"] == []
    assert not call(url, globex, "delete_memory", {"session_id": "shared-name"}).is_error
    # And acme's is untouched
    assert len(call(url, acme, "get_memory", {"session_id": "shared-name"}).structured_content["messages"]) == 1


def test_http_given_the_mounted_path_and_concurrent_calls_serve_them_all(secure: SecureApi) -> None:
    key = secure.key("acme")

    async def steps(client: Client) -> list[CallToolResult]:
        writes = [
            client.call_tool("add_memory", {"session_id": f"s{i}", "messages": [{"role": "Human", "content": str(i)}]})
            for i in range(8)
        ]
        return list(await asyncio.gather(*writes))

    # When eight calls run at once on /motorhead/mcp / Then each is stored
    results = over_http(secure.base_url, key, steps, path="/motorhead/mcp")
    assert all(not result.is_error for result in results)
    listed = call(secure.base_url, key, "list_sessions", {"size": 100}).structured_content
    assert sorted(listed["session_ids"]) == sorted(f"s{i}" for i in range(8)) and listed["total"] == 8


# --- a credential that names a user -------------------------------------------------------------------------------

ISSUER, AUDIENCE = "https://issuer.test/", "motorhead-api"
ALL = "motorhead:read motorhead:write motorhead:delete motorhead:list"


@pytest.fixture
def jwt_users(redis_server: EmbeddedRedis, redis_client: redis.Redis) -> Iterator[tuple[str, SigningKey]]:
    """The gateway with JWTs whose ``sub`` names the user (MOTORHEAD_JWT_USER_CLAIM=sub)."""
    key = rsa_key("key-1")
    with (
        JwksServer(key) as jwks,
        cold_start(
            REDIS_URL=redis_server.url,
            MOTORHEAD_AUTH="jwt",
            MOTORHEAD_JWT_ISSUER=ISSUER,
            MOTORHEAD_JWT_AUDIENCE=AUDIENCE,
            MOTORHEAD_JWT_JWKS_URL=jwks.url,
            MOTORHEAD_JWT_TENANT_CLAIM="org_id",
            MOTORHEAD_JWT_USER_CLAIM="sub",
        ) as api,
        serving(api) as base_url,
    ):
        yield base_url, key


def user_token(key: SigningKey, user: str) -> str:
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": user, "exp": in_seconds(300), "org_id": "acme", "scope": ALL}
    return mint(claims, key=key)


def test_http_given_jwt_serves_the_protected_resource_metadata_the_401_points_to(
    jwt_users: tuple[str, SigningKey],
) -> None:
    url, _ = jwt_users
    # When an MCP client calls without a token / Then 401, and the challenge names the metadata (RFC 9728)
    refused = requests.post(url + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, timeout=30)
    assert refused.status_code == 401
    metadata_url = f"{url}/.well-known/oauth-protected-resource/mcp"
    assert f'resource_metadata="{metadata_url}"' in refused.headers["www-authenticate"]
    # And the metadata, public, names this resource and the issuer its tokens come from
    metadata = requests.get(metadata_url, timeout=30)
    assert metadata.status_code == 200, metadata.text
    body = metadata.json()
    assert body["resource"] == f"{url}/mcp" and body["authorization_servers"] == [ISSUER]
    assert "motorhead:read" in body["scopes_supported"] and body["bearer_methods_supported"] == ["header"]
    # And n8n's prefix: /motorhead/mcp is a resource of its own, its metadata where RFC 9728 puts it
    refused = requests.post(
        url + "/motorhead/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, timeout=30
    )
    mounted_url = f"{url}/.well-known/oauth-protected-resource/motorhead/mcp"
    assert f'resource_metadata="{mounted_url}"' in refused.headers["www-authenticate"]
    assert requests.get(mounted_url, timeout=30).json()["resource"] == f"{url}/motorhead/mcp"


def test_http_given_api_keys_has_no_resource_metadata(secure: SecureApi) -> None:
    # Given API keys (no authorization server) / Then no metadata, and the REST routes' challenge
    assert requests.get(secure.base_url + "/.well-known/oauth-protected-resource/mcp", timeout=30).status_code == 404
    refused = requests.post(secure.base_url + "/mcp", json={}, timeout=30)
    assert refused.status_code == 401 and "resource_metadata" not in refused.headers["www-authenticate"]


def test_tools_given_a_token_naming_a_user_act_as_that_user_alone(jwt_users: tuple[str, SigningKey]) -> None:
    url, key = jwt_users
    ana, bruno = user_token(key, "ana"), user_token(key, "bruno")
    messages = [{"role": "Human", "content": "ana's secret"}]
    # Given Ana's token / When it writes a session naming no user / Then the session is bound to Ana
    assert not call(url, ana, "add_memory", {"session_id": "chat-a", "messages": messages}).is_error
    assert call(url, ana, "list_sessions", {}).structured_content["session_ids"] == ["chat-a"]
    assert call(url, ana, "list_sessions", {"user_id": "ana"}).structured_content["session_ids"] == ["chat-a"]
    # And naming another user is a tool error, whatever the tool
    planted = call(url, ana, "add_memory", {"session_id": "chat-x", "messages": messages, "user_id": "bruno"})
    assert "may not name another" in error_text(planted)
    assert "may not name another" in error_text(call(url, ana, "list_sessions", {"user_id": "bruno"}))
    # When Bruno's token (same tenant) names Ana's session or Ana / Then each is refused, and nothing leaks
    for tool, arguments in [
        ("get_memory", {"session_id": "chat-a"}),
        ("delete_memory", {"session_id": "chat-a"}),
        ("search_memory", {"text": "secret", "user_id": "ana"}),
        ("list_sessions", {"user_id": "ana"}),
    ]:
        refused = error_text(call(url, bruno, tool, arguments))
        assert "one user" in refused and "secret" not in refused, (tool, refused)
    taken = call(url, bruno, "add_memory", {"session_id": "chat-a", "messages": messages})
    assert "this session belongs to another user" in error_text(taken)
    assert call(url, bruno, "list_sessions", {}).structured_content["session_ids"] == []
    # And the REST routes, which cannot keep a caller to one user's sessions, refuse such a token (403) on every route
    for method, path in [("GET", "/sessions/chat-a/memory"), ("GET", "/sessions?user_id=ana"),
                         ("POST", "/users/ana/retrieval"), ("DELETE", "/sessions/chat-a/memory")]:  # fmt: skip
        headers = {"Authorization": f"Bearer {bruno}"}
        rest = requests.request(method, url + path, json={"text": "secret"}, headers=headers, timeout=30)
        assert rest.status_code == 403 and "secret" not in rest.text, (method, path, rest.text)
    # And Ana's session is as she left it
    read = call(url, ana, "get_memory", {"session_id": "chat-a"}).structured_content
    assert [m["content"] for m in read["messages"]] == ["ana's secret"]
    # And a token whose user claim is not a user id is refused before any MCP (fails closed)
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": 42, "exp": in_seconds(300), "org_id": "acme", "scope": ALL}
    odd = {"Authorization": "Bearer " + mint(claims, key=key)}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    assert requests.post(url + "/mcp", json=body, headers=odd, timeout=30).status_code == 401
    # And so is a token without the user claim: it would act for every user of the tenant
    del claims["sub"]
    unnamed = {"Authorization": "Bearer " + mint(claims, key=key)}
    assert requests.post(url + "/mcp", json=body, headers=unnamed, timeout=30).status_code == 401


def test_add_memory_given_a_user_token_never_takes_over_a_session_of_no_user(
    jwt_users: tuple[str, SigningKey], redis_server: EmbeddedRedis
) -> None:
    # Given a session written without any user (as every REST client writes), holding a secret
    url, key = jwt_users
    keys = Keys("mh")
    session = keys.session(SessionRef(tenant="acme", id="legacy"))
    with redis.Redis(port=redis_server.port, decode_responses=True) as client:
        client.zadd(session.messages, {'{"id":1,"role":"Human","content":"my PIN is 4321","created_at":1}': 1})
        client.hset(session.meta, mapping={"id": "legacy", "seq": 1, "gen": "g", "version": "v"})
        # When Bruno's token (acting as one user) writes to it / Then a tool error: it is not his to adopt
        taken = call(url, user_token(key, "bruno"), "add_memory", {"session_id": "legacy", "messages": [
            {"role": "Human", "content": "mine now"}]})  # fmt: skip
        assert "belongs to another user" in error_text(taken)
        # And nothing changed: the session is still bound to nobody, and he cannot read it
        assert client.hget(session.meta, "user") is None and client.zcard(session.messages) == 1
    refused = error_text(call(url, user_token(key, "bruno"), "get_memory", {"session_id": "legacy"}))
    assert "one user" in refused and "4321" not in refused
    # And a new session of his own he may start
    assert not call(url, user_token(key, "bruno"), "add_memory", {"session_id": "new-one", "messages": [
        {"role": "Human", "content": "hello"}]}).is_error  # fmt: skip


# --- long-term memory -----------------------------------------------------------------------------------------------


@pytest.fixture
def ltm(redis_server: EmbeddedRedis, local_sqs: LocalSqs) -> Iterator[tuple[str, SecureApi, SqsPoller]]:
    """The gateway with API keys and long-term memory on (the local model), and the indexer's poller."""
    with ltm_gateway(redis_server, local_sqs, "exact") as running:
        yield running.base_url, SecureApi(base_url=running.base_url, api=running.api), running.indexer


def test_search_given_long_term_memory_finds_a_session_and_a_users_messages(
    ltm: tuple[str, SecureApi, SqsPoller],
) -> None:
    url, secure, indexer = ltm
    key = secure.key("acme")
    turns = [
        {"role": "Human", "content": "I'm allergic to peanuts, please remember that."},
        {"role": "AI", "content": "Noted: no peanuts."},
        {"role": "Human", "content": "My daughter plays the violin."},
    ]
    # Given a session of Ana's written over MCP, then indexed
    added = call(url, key, "add_memory", {"session_id": "chat-1", "messages": turns, "user_id": "ana"})
    assert not added.is_error
    assert indexer.drain() >= 1
    # When MCP searches the session, and Ana's whole history / Then the peanut allergy comes first, as REST says
    by_session = call(url, key, "search_memory", {"text": "food allergy", "session_id": "chat-1", "limit": 2})
    hits = by_session.structured_content["hits"]
    assert "peanuts" in hits[0]["content"] and "peanuts" in text_of(by_session)
    rest_hits = rest(url, key, "POST", "/sessions/chat-1/retrieval", {"text": "food allergy", "k": 2}).json()
    assert hits == rest_hits
    by_user = call(url, key, "search_memory", {"text": "music lessons", "user_id": "ana", "limit": 1})
    assert by_user.structured_content["hits"][0]["session_id"] == "chat-1"
    assert "violin" in by_user.structured_content["hits"][0]["content"]
    # And a session bound to Ana refuses another user, as POST does (409's text)
    other = call(url, key, "add_memory", {"session_id": "chat-1", "messages": turns[:1], "user_id": "bruno"})
    assert "this session belongs to another user" in error_text(other)


# --- stdio ----------------------------------------------------------------------------------------------------------


def stdio_environment(redis_url: str, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": f"{REPO / 'layers/shared/python'}:{REPO}",
        "REDIS_URL": redis_url,
        "MOTORHEAD_MAX_WINDOW_SIZE": "4",
        **extra,
    }


MAKE_MCP = ["make", "-s", "-C", str(REPO), "mcp"]  # as a desktop client starts it (README, docs/mcp.md)
PYTHON_MCP = [sys.executable, "-m", "devserver.mcp"]  # what the Makefile's recipe runs
STDIO_COMMANDS = {"make -s mcp": MAKE_MCP, "python -m devserver.mcp": PYTHON_MCP}


def over_stdio(environment: dict[str, str], steps: Callable[[Client], Awaitable[T]]) -> T:
    """Run ``steps`` with a real MCP client on ``make -s mcp``."""
    server = StdioServerParameters(command=MAKE_MCP[0], args=MAKE_MCP[1:], env=environment, cwd=REPO)

    async def run() -> T:
        async with Client(server) as client:
            return await steps(client)

    return asyncio.run(run())


def test_stdio_given_a_key_serves_the_tools_as_its_tenant_and_rest_reads_them(
    secure: SecureApi, redis_server: EmbeddedRedis
) -> None:
    key = secure.key("acme")
    reader = secure.key("acme", "read")
    redis_url = redis_server.url

    async def steps(client: Client) -> dict[str, Any]:
        tools = await client.list_tools()
        added = await client.call_tool(
            "add_memory", {"session_id": HOSTILE_ID, "messages": [{"role": "Human", "content": "via stdio"}]}
        )  # noqa: E501
        read = await client.call_tool("get_memory", {"session_id": HOSTILE_ID})
        listed = await client.call_tool("list_sessions", {})
        return {"tools": [tool.name for tool in tools.tools], "added": added, "read": read, "listed": listed}

    # Given `make -s mcp` with acme's key / When a client calls the tools over stdio
    environment = stdio_environment(redis_url, MOTORHEAD_AUTH="api-key", MOTORHEAD_API_KEY=key)
    got = over_stdio(environment, steps)
    # Then they serve acme's memory, which REST reads with acme's key
    assert sorted(got["tools"]) == sorted(TOOLS)
    assert not got["added"].is_error
    assert got["read"].structured_content["messages"][0]["content"] == "via stdio"
    assert got["listed"].structured_content["session_ids"] == [HOSTILE_ID]
    assert rest(secure.base_url, key, "GET", memory_path(HOSTILE_ID)).json()["messages"][0]["content"] == "via stdio"

    # And a read-only key over stdio is refused the writes
    async def write(client: Client) -> CallToolResult:
        return await client.call_tool("delete_memory", {"session_id": HOSTILE_ID})

    refused = over_stdio(stdio_environment(redis_url, MOTORHEAD_AUTH="api-key", MOTORHEAD_API_KEY=reader), write)
    assert "this credential does not allow 'delete'" in error_text(refused)


def test_stdio_given_a_key_revoked_while_it_runs_refuses_every_call_after(
    secure: SecureApi, redis_server: EmbeddedRedis
) -> None:
    key = secure.key("acme")
    # Given `make -s mcp` running with acme's key (no key cache, so the test need not wait out its seconds)
    environment = stdio_environment(
        redis_server.url, MOTORHEAD_AUTH="api-key", MOTORHEAD_API_KEY=key, MOTORHEAD_API_KEY_CACHE_SECONDS="0"
    )

    async def steps(client: Client) -> tuple[CallToolResult, CallToolResult, str]:
        before = await client.call_tool("get_memory", {"session_id": "s"})
        secure.revoke(key)  # When the key is revoked while it runs
        after = await client.call_tool("get_memory", {"session_id": "s"})
        try:
            await client.list_tools()
        except MCPError as exc:
            return before, after, exc.error.message
        return before, after, "listed"

    before, after, listed = over_stdio(environment, steps)
    # Then the next call is refused with the REST API's answer to that key, and so is tools/list
    refused = rest(secure.base_url, key, "GET", memory_path("s"))
    assert refused.status_code == 401
    assert not before.is_error
    assert refused.json()["error"] in error_text(after)
    assert refused.json()["error"] in listed


@pytest.mark.parametrize("command", STDIO_COMMANDS.values(), ids=STDIO_COMMANDS.keys())
def test_stdio_given_a_wrong_key_exits_with_the_reason_on_stderr_and_nothing_on_stdout(
    secure: SecureApi, redis_server: EmbeddedRedis, command: list[str]
) -> None:
    environment = stdio_environment(redis_server.url, MOTORHEAD_AUTH="api-key", MOTORHEAD_API_KEY="mh_nope_nope")
    done = subprocess.run(command, env=environment, cwd=REPO, input="", capture_output=True, timeout=60)
    assert done.returncode == 2  # the server's status (make's too, for a recipe that failed)
    assert done.stdout == b""
    assert b"MOTORHEAD_API_KEY" in done.stderr


@pytest.mark.parametrize("command", STDIO_COMMANDS.values(), ids=STDIO_COMMANDS.keys())
def test_stdio_given_auth_none_writes_nothing_but_json_rpc_to_stdout(
    redis_server: EmbeddedRedis, command: list[str]
) -> None:
    lines = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "get_memory", "arguments": {"session_id": "nobody"}}},
    ]  # fmt: skip
    environment = stdio_environment(redis_server.url, MOTORHEAD_AUTH="none")
    # When a client speaks to `make -s mcp` line by line / Then every line on stdout is a JSON-RPC message
    with subprocess.Popen(
        command,
        env=environment,
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as process:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write("".join(json.dumps(line) + "\n" for line in lines).encode())
        process.stdin.flush()
        answers = [json.loads(process.stdout.readline()) for _ in range(2)]
        process.stdin.close()
        assert process.wait(timeout=30) == 0
        assert process.stdout.read() == b""
    assert [answer.get("id") for answer in answers] == [1, 2]
    assert answers[1]["result"]["structuredContent"] == {"messages": [], "context": None, "tokens": 0}


def test_stdio_given_long_term_memory_finds_what_add_memory_saved(redis_server: EmbeddedRedis) -> None:
    # Given `make -s mcp` with long-term memory on and no queues (a laptop): the jobs run in its own process
    with redis.Redis(port=redis_server.port) as client:
        client.flushall()
    environment = stdio_environment(
        redis_server.url, MOTORHEAD_AUTH="none", MOTORHEAD_LONG_TERM_MEMORY="true", MOTORHEAD_EMBEDDER="local"
    )
    said = [
        {"role": "Human", "content": "I am allergic to peanuts."},
        {"role": "AI", "content": "Noted."},
        {"role": "Human", "content": "Book a table for Saturday."},
    ]

    async def steps(client: Client) -> tuple[CallToolResult, CallToolResult, CallToolResult]:
        added = await client.call_tool("add_memory", {"session_id": "chat-1", "messages": said, "user_id": "ana"})
        in_session = await client.call_tool("search_memory", {"text": "food allergy", "session_id": "chat-1"})
        of_user = await client.call_tool("search_memory", {"text": "food allergy", "user_id": "ana", "limit": 1})
        return added, in_session, of_user

    # When an agent saves a conversation and searches it, in the session and across the user's sessions
    added, in_session, of_user = over_stdio(environment, steps)
    # Then both searches find it
    assert not added.is_error, error_text(added)
    assert not in_session.is_error and not of_user.is_error
    assert "peanuts" in json.dumps(in_session.structured_content)
    assert of_user.structured_content["hits"][0]["content"] == "I am allergic to peanuts."
    assert of_user.structured_content["hits"][0]["session_id"] == "chat-1"


# --- the documented client configurations ---------------------------------------------------------------------------


def documented_configs(page: str = "docs/mcp.md") -> list[dict[str, Any]]:
    """The ``mcpServers`` entries of ``page``'s JSON blocks, as a desktop client reads them."""
    text = (REPO / page).read_text(encoding="utf-8")
    blocks = [block.split("```", 1)[0] for block in text.split("```json\n")[1:]]
    return [entry for block in blocks for entry in json.loads(block)["mcpServers"].values()]


def test_docs_given_the_documented_client_configs_a_client_started_from_them_serves_the_tools(
    secure: SecureApi, redis_server: EmbeddedRedis
) -> None:
    key = secure.key("acme")
    stdio, http = sorted(documented_configs(), key=lambda entry: "url" in entry)
    # (the README's own blocks are these two, word for word: what is tested here is what a newcomer copies)
    assert sorted(documented_configs("README.md"), key=lambda entry: "url" in entry) == [stdio, http]

    async def roundtrip(client: Client) -> list[str]:
        added = await client.call_tool(
            "add_memory", {"session_id": "docs", "messages": [{"role": "Human", "content": "hi"}]}
        )
        assert not added.is_error, text_of(added)
        read = await client.call_tool("get_memory", {"session_id": "docs"})
        return [message["content"] for message in read.structured_content["messages"]]

    # Given the stdio config, as Claude Desktop starts it: its command, its args with this clone's path, its env with
    # a real key (and this test's Redis: no `make run` is up), and a PATH
    args = [arg.replace("/path/to/motorhead-serverless", str(REPO)) for arg in stdio["args"]]
    env = {**stdio["env"], "MOTORHEAD_API_KEY": key, "REDIS_URL": redis_server.url, "PATH": os.environ["PATH"]}
    server = StdioServerParameters(command=stdio["command"], args=args, env=env)

    async def over_config() -> list[str]:
        async with Client(server) as client:
            return await roundtrip(client)

    # Then the tools serve acme's memory
    assert asyncio.run(over_config()) == ["hi"]
    # And the HTTP config, its URL pointed at the local gateway, with its header and a real key
    assert http["url"].endswith("/mcp") and http["headers"]["Authorization"].startswith("Bearer mhk_")
    assert over_http(secure.base_url, key, roundtrip) == ["hi", "hi"]


def test_tools_given_a_refused_call_log_the_key_id_and_source_never_the_key(
    secure: SecureApi, caplog: pytest.LogCaptureFixture
) -> None:
    reader = secure.key("acme", "read")
    key_id = reader.split("_")[1]
    caplog.clear()
    # When a read-only key calls a write tool
    refused = call(
        secure.base_url, reader, "add_memory", {"session_id": "s", "messages": [{"role": "u", "content": "x"}]}
    )
    assert refused.is_error
    # Then one line says so, with the key's public id and the caller's address, never the key nor the session
    lines = [json.loads(logger.registered_formatter.format(record)) for record in caplog.records]
    refusals = [line for line in lines if line["message"] == "tool refused"]
    assert len(refusals) == 1, lines
    assert refusals[0]["origin"] == {"key_id": key_id, "source_ip": "127.0.0.1"} and refusals[0]["status"] == 403
    assert not any(reader in json.dumps(line) or '"s"' in json.dumps(line) for line in lines)


# --- the sample event ------------------------------------------------------------------------------------------------


def test_event_given_the_sample_tools_call_the_function_answers_get_memorys_json(api: Api) -> None:
    # Given session-42 written by the sample POST event
    assert api.invoke("PostMemoryFunction", load_event("post_memory-ok"))["statusCode"] == 200
    # When the MCP function handles the sample tools/call of get_memory (events/mcp-get-memory.json)
    answer = api.invoke("McpFunction", load_event("mcp-get-memory"))
    # Then it is a JSON-RPC result, no tool error, whose structured content is GET memory's body
    assert answer["statusCode"] == 200 and answer["headers"]["content-type"].startswith("application/json")
    result = json.loads(answer["body"])["result"]
    assert result.get("isError") is not True, result
    memory = json.loads(api.invoke("GetMemoryFunction", load_event("get_memory-ok"))["body"])
    assert memory["messages"] and result["structuredContent"] == memory
