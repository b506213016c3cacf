"""The MCP tools on in-memory fakes, through the SDK's in-process client: the caller they act as, its scopes, the
REST API's client-safe messages for domain errors; and the Host check's patterns (no network)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, TextContent

from motorhead.core.auth import ALL_SCOPES, Caller, Scope
from motorhead.core.memory import MemoryService
from motorhead.core.values import MemoryLimits, SessionRef, SessionSnapshot
from motorhead.entrypoints.mcp.http import transport_security
from motorhead.entrypoints.mcp.tools import MemoryServer, acting_as, memory_server
from motorhead.errors import StoreUnavailableError
from motorhead.ltm.disabled import DisabledRetrieval
from motorhead.observability import logger
from motorhead.settings import Settings
from tests.fakes import FakeMemoryStore

WRITER = Caller(tenant="acme", scopes=ALL_SCOPES, method="api-key")
READER = Caller(tenant="acme", scopes=frozenset({Scope.READ}), method="api-key")
MESSAGES = [{"role": "Human", "content": "hi"}]


class DownStore(FakeMemoryStore):
    def read(self, session: SessionRef, *, limit: int) -> SessionSnapshot:
        raise StoreUnavailableError("connection refused by 10.0.0.5:6379")


def calls(store: FakeMemoryStore, caller: Caller | None, *steps: tuple[str, dict[str, Any]]) -> list[CallToolResult]:
    memory = MemoryService(store=store, limits=MemoryLimits())
    server = memory_server(memory=memory, retrieval=DisabledRetrieval(), settings=Settings(MOTORHEAD_AUTH="none"))

    async def run() -> list[CallToolResult]:
        async with Client(server) as client:
            return [await client.call_tool(name, arguments) for name, arguments in steps]

    if caller is None:
        return asyncio.run(run())
    with acting_as(caller):
        return asyncio.run(run())


def text(result: CallToolResult) -> str:
    (block,) = result.content
    assert isinstance(block, TextContent)
    return block.text


def test_tools_given_a_caller_act_on_its_tenant() -> None:
    store = FakeMemoryStore()
    add = ("add_memory", {"session_id": "s", "messages": MESSAGES})
    added, read = calls(store, WRITER, add, ("get_memory", {"session_id": "s"}))
    assert added.structured_content == {"status": "Ok"}
    assert read.structured_content is not None and read.structured_content["messages"][0]["content"] == "hi"
    assert [ref.tenant for ref in store.sessions] == ["acme"]


def test_tools_given_a_read_only_caller_refuse_the_write_with_the_scope_named() -> None:
    store = FakeMemoryStore()
    (refused,) = calls(store, READER, ("add_memory", {"session_id": "s", "messages": MESSAGES}))
    assert refused.is_error and "this credential does not allow 'write'" in text(refused)
    assert store.sessions == {}


def test_tools_given_no_admitted_caller_fail_closed_with_the_fixed_text() -> None:
    (refused,) = calls(FakeMemoryStore(), None, ("get_memory", {"session_id": "s"}))
    assert refused.is_error and "the service is misconfigured" in text(refused)


def test_tools_given_redis_down_answer_the_rest_apis_text_and_nothing_internal() -> None:
    (failed,) = calls(DownStore(), WRITER, ("get_memory", {"session_id": "s"}))
    assert failed.is_error and "redis unavailable" in text(failed)
    assert "10.0.0.5" not in text(failed)


def test_transport_security_given_a_matching_host_allows_it_and_only_it() -> None:
    patterns = ["127.0.0.1:*", "*.execute-api.us-east-1.amazonaws.com"]
    api = transport_security(patterns, "r3pmxmplak.execute-api.us-east-1.amazonaws.com")
    assert api.allowed_hosts == ["r3pmxmplak.execute-api.us-east-1.amazonaws.com"]
    assert transport_security(patterns, "127.0.0.1:8080").allowed_hosts == ["127.0.0.1:8080"]
    # A host no pattern matches leaves the SDK the patterns alone: it answers 421
    for foreign in ("evil.example.com", "r3pmxmplak.execute-api.eu-west-1.amazonaws.com", None):
        assert transport_security(patterns, foreign).allowed_hosts == patterns


def server_on(store: FakeMemoryStore) -> MemoryServer:
    memory = MemoryService(store=store, limits=MemoryLimits())
    return memory_server(memory=memory, retrieval=DisabledRetrieval(), settings=Settings(MOTORHEAD_AUTH="none"))


@pytest.mark.parametrize("mode", ["auto", "legacy"])  # server/discover (2026-07-28), and initialize before it
def test_capabilities_given_either_protocol_era_advertise_tools_alone(mode: str) -> None:
    async def run() -> tuple[dict[str, Any], str]:
        async with Client(server_on(FakeMemoryStore()), mode=mode) as client:
            advertised = client.server_capabilities.model_dump(by_alias=True, exclude_none=True)
            try:
                await client.list_prompts()
            except MCPError as exc:
                return advertised, exc.error.message
            return advertised, "prompts listed"

    # When a real client connects (discovering, or initializing)
    with acting_as(WRITER):
        advertised, prompts = asyncio.run(run())
    # Then the server says it has tools, whose list never changes, and nothing else: no prompts, no resources
    assert advertised == {"tools": {"listChanged": False}}
    # And what it does not advertise it does not serve
    assert prompts == "Method not found"


def test_tools_given_a_call_on_a_session_then_one_on_none_log_the_second_without_the_first_ones_session(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.clear()
    # Given one process serving calls in turn, as stdio does: a read of "s", then a list (refused: read-only key)
    read, listed = calls(FakeMemoryStore(), READER, ("get_memory", {"session_id": "s"}), ("list_sessions", {}))
    assert not read.is_error and listed.is_error
    lines = [json.loads(logger.registered_formatter.format(record)) for record in caplog.records]
    # Then the refused list's line carries no session: the read's was cleared when it ended
    (refusal,) = [line for line in lines if line["message"] == "tool refused"]
    assert "session" not in refusal, refusal
    assert "session" not in logger.get_current_keys()


def test_tools_given_an_empty_role_or_a_long_search_text_speak_of_characters() -> None:
    bad_role = ("add_memory", {"session_id": "s", "messages": [{"role": "", "content": "x"}]})
    long_text = ("search_memory", {"text": "x" * 8_193, "session_id": "s"})
    role, search = calls(FakeMemoryStore(), WRITER, bad_role, long_text)
    assert text(role) == "invalid arguments for add_memory: messages.0.role: String should have at least 1 character"
    assert text(search) == "invalid arguments for search_memory: text: String should have at most 8192 characters"
