"""An agent with Motorhead's memory as MCP tools, over the real ``mcp`` client.

    .venv/bin/python examples/mcp-agent/agent.py                         # streamable HTTP: $MOTORHEAD_URL/mcp
    .venv/bin/python examples/mcp-agent/agent.py --stdio                 # spawns `make -s mcp` (stdio)
    .venv/bin/python examples/mcp-agent/agent.py "Remember that I am vegetarian, then tell me what you know about me"

It connects, lists the tools, then runs an agent loop. With a model configured (OPENAI_API_KEY, OPENAI_BASE_URL or
OPENAI_API_BASE, OPENAI_MODEL), OpenAI tool calling drives it: every tool of the server is offered to the model, each
call it makes is an MCP ``tools/call``, and the results go back to it until it answers. Offline, a scripted,
deterministic plan runs instead (add memories, read them back, search them, list the sessions), printing what each
tool returned, so anyone can see the tools work.

Environment: MOTORHEAD_URL (http://127.0.0.1:8080) and MOTORHEAD_API_KEY (a bearer token over HTTP; over stdio
``make -s mcp`` reads it, with MOTORHEAD_AUTH=api-key, and the other MOTORHEAD_* / REDIS_URL variables are passed on).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent, Tool

REPO = Path(__file__).resolve().parents[2]
DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_TASK = "Remember that I am vegetarian and allergic to peanuts, then tell me everything you know about me."
MAX_ROUNDS = 8  # tool-calling rounds before the agent gives up
SEARCH_WAIT_S = 20.0  # indexing runs after the write (about a second locally; the first one loads the model)
PLAN_MESSAGES = [
    {"role": "Human", "content": "My name is Ana and I live in Lisbon."},
    {"role": "AI", "content": "Nice to meet you, Ana."},
    {"role": "Human", "content": "I am allergic to peanuts, so no satay for me."},
    {"role": "Human", "content": "My favourite band is Radiohead."},
]
PLAN_QUESTION = "what food should I avoid?"
SYSTEM = (
    "You are an assistant with a long-term memory server, reached through tools. The current conversation is "
    "session_id {session!r}{user}. Save facts the user tells you with add_memory (role Human for the user's words, "
    "AI for yours), and look things up with search_memory and get_memory before answering questions about the past. "
    "Answer briefly once you are done with the tools."
)


# --- configuration: the one place that reads the environment --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelConfig:
    api_key: str
    base_url: str | None
    model: str


@dataclass(frozen=True, slots=True)
class Config:
    motorhead_url: str
    motorhead_api_key: str | None
    model: ModelConfig | None
    server_env: dict[str, str]  # what `make -s mcp` is given over stdio

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        api_key = env.get("OPENAI_API_KEY")
        model = (
            ModelConfig(
                api_key=api_key,
                base_url=env.get("OPENAI_BASE_URL") or env.get("OPENAI_API_BASE") or None,
                model=env.get("OPENAI_MODEL") or DEFAULT_MODEL,
            )
            if api_key
            else None
        )
        server_env = {
            name: value
            for name, value in env.items()
            if (name.startswith("MOTORHEAD_") and name != "MOTORHEAD_URL") or name == "REDIS_URL"
        }
        return cls(
            motorhead_url=(env.get("MOTORHEAD_URL") or DEFAULT_URL).rstrip("/"),
            motorhead_api_key=env.get("MOTORHEAD_API_KEY") or None,
            model=model,
            server_env=server_env,
        )


# --- the connection ---------------------------------------------------------------------------------------------------


@asynccontextmanager
async def connect(config: Config, *, stdio: bool) -> AsyncIterator[Client]:
    """A connected MCP client: ``make -s mcp`` spawned over stdio, or streamable HTTP on ``$MOTORHEAD_URL/mcp``."""
    if stdio:
        server = StdioServerParameters(command="make", args=["-s", "-C", str(REPO), "mcp"], env=config.server_env)
        async with Client(server) as client:
            yield client
        return
    headers = {"Authorization": f"Bearer {config.motorhead_api_key}"} if config.motorhead_api_key else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(f"{config.motorhead_url}/mcp", http_client=http)) as client,
    ):
        yield client


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def for_model(result: CallToolResult) -> str:
    """What the model reads of a result: the structured JSON when there is one, else the text; errors say so."""
    if result.is_error:
        return f"error: {text_of(result)}"
    if result.structured_content is not None:
        return json.dumps(result.structured_content, ensure_ascii=False)
    return text_of(result)


def brief(arguments: Mapping[str, Any], limit: int = 160) -> str:
    text = json.dumps(arguments, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def call(client: Client, tool: str, arguments: dict[str, Any], *, quiet: bool = False) -> CallToolResult:
    """One ``tools/call``, printed as the call and what it returned."""
    if not quiet:
        print(f"-> {tool} {brief(arguments)}")
    result = await client.call_tool(tool, arguments)
    if not quiet:
        label = "<- error: " if result.is_error else "<- "
        print(label + text_of(result).replace("\n", "\n   "), flush=True)
    return result


# --- offline: the scripted plan ---------------------------------------------------------------------------------------


async def search_when_indexed(client: Client, arguments: dict[str, Any], session_id: str) -> CallToolResult:
    """search_memory, asked again while it finds nothing of ``session_id`` (indexing runs just after a write), up to
    SEARCH_WAIT_S; a tool error (long-term memory off) is final."""
    deadline = time.monotonic() + SEARCH_WAIT_S
    print(f"-> search_memory {brief(arguments)}")
    while True:
        result = await call(client, "search_memory", arguments, quiet=True)
        hits = (result.structured_content or {}).get("hits") or []
        ours = [hit for hit in hits if hit.get("session_id", session_id) == session_id]
        if result.is_error or ours or time.monotonic() > deadline:
            label = "<- error: " if result.is_error else "<- "
            print(label + text_of(result).replace("\n", "\n   "), flush=True)
            return result
        await asyncio.sleep(0.5)


async def scripted_plan(client: Client, *, session_id: str, user_id: str | None, forget: bool) -> int:
    """Add a few memories, read them back, search them, list the sessions (and with ``forget``, delete the session).
    0 when every step worked; long-term memory being off is reported, not a failure."""
    print(f"agent: no model configured (OPENAI_API_KEY): the offline, scripted plan, on session {session_id!r}")
    owner = {"user_id": user_id} if user_id else {}
    added = await call(client, "add_memory", {"session_id": session_id, "messages": PLAN_MESSAGES, **owner})
    read = await call(client, "get_memory", {"session_id": session_id})
    scope = {"user_id": user_id} if user_id else {"session_id": session_id}
    found = await search_when_indexed(client, {"text": PLAN_QUESTION, "limit": 3, **scope}, session_id)
    if found.is_error:
        print("agent: search_memory needs long-term memory: start the server with MOTORHEAD_LONG_TERM_MEMORY=true")
    listed = await call(client, "list_sessions", {"size": 10, **owner})
    results = [added, read, listed]
    if forget:
        results.append(await call(client, "delete_memory", {"session_id": session_id}))
    failed = [result for result in results if result.is_error]
    print(f"agent: plan {'failed' if failed else 'done'}")
    return 1 if failed else 0


# --- with a model: OpenAI tool calling over the MCP tools -------------------------------------------------------------


def openai_tools(tools: Sequence[Tool]) -> list[dict[str, Any]]:
    """Each MCP tool as an OpenAI function tool: same name, description and JSON schema."""
    return [
        {
            "type": "function",
            "function": {"name": tool.name, "description": tool.description or "", "parameters": tool.input_schema},
        }
        for tool in tools
    ]


async def model_loop(
    client: Client, tools: Sequence[Tool], model: ModelConfig, *, task: str, session_id: str, user_id: str | None
) -> int:
    """Ask the model; run every tool call it makes on the MCP server and give it the results; until it answers."""
    from openai import AsyncOpenAI, OpenAIError  # only on this path

    llm = AsyncOpenAI(api_key=model.api_key, base_url=model.base_url)
    user = f" of user_id {user_id!r}" if user_id else ""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM.format(session=session_id, user=user)},
        {"role": "user", "content": task},
    ]
    print(f"agent: model {model.model}; task: {task}")
    for _ in range(MAX_ROUNDS):
        try:
            completion = await llm.chat.completions.create(
                model=model.model,
                messages=messages,  # type: ignore[arg-type]  # the SDK's TypedDicts: these dicts are their shape
                tools=openai_tools(tools),  # type: ignore[arg-type]
            )
        except OpenAIError as exc:
            print(f"agent: the model failed: {exc}", file=sys.stderr)
            return 1
        message = completion.choices[0].message
        calls = [c for c in message.tool_calls or [] if c.type == "function"]
        if not calls:
            print(f"agent> {message.content or ''}")
            return 0
        messages.append(
            {
                "role": "assistant",
                "content": message.content,
                "tool_calls": [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.function.name, "arguments": c.function.arguments},
                    }
                    for c in calls
                ],
            }
        )
        for tool_call in calls:
            messages.append(
                {"role": "tool", "tool_call_id": tool_call.id, "content": await run_tool_call(client, tool_call)}
            )
    print(f"agent: no answer after {MAX_ROUNDS} rounds of tool calls", file=sys.stderr)
    return 1


async def run_tool_call(client: Client, tool_call: Any) -> str:
    """The model's call on the MCP server; what the model reads back (arguments that are not JSON: an error)."""
    try:
        arguments = json.loads(tool_call.function.arguments or "{}")
    except json.JSONDecodeError:
        return "error: the arguments are not valid JSON"
    if not isinstance(arguments, dict):
        return "error: the arguments must be a JSON object"
    return for_model(await call(client, tool_call.function.name, arguments))


# --- the command ------------------------------------------------------------------------------------------------------


async def run(config: Config, args: argparse.Namespace) -> int:
    async with connect(config, stdio=args.stdio) as client:
        tools = (await client.list_tools()).tools
        where = "stdio (make -s mcp)" if args.stdio else f"{config.motorhead_url}/mcp"
        print(f"agent: {len(tools)} tools on {where}: {', '.join(tool.name for tool in tools)}")
        if config.model is None:
            if args.task:
                print("agent: (a task needs a model: OPENAI_API_KEY; running the scripted plan instead)")
            return await scripted_plan(client, session_id=args.session, user_id=args.user, forget=args.forget)
        task = " ".join(args.task) or DEFAULT_TASK
        return await model_loop(client, tools, config.model, task=task, session_id=args.session, user_id=args.user)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="An agent using Motorhead's memory over MCP.")
    parser.add_argument("task", nargs="*", help="what to ask the model (with a model configured)")
    parser.add_argument("--stdio", action="store_true", help="spawn `make -s mcp` instead of HTTP on $MOTORHEAD_URL")
    parser.add_argument("--session", default="agent-demo", help="the session id the agent works in")
    parser.add_argument("--user", default="ana", help="the user the session belongs to ('' for none)")
    parser.add_argument("--forget", action="store_true", help="offline plan: delete the session at the end")
    args = parser.parse_args(argv)
    args.user = args.user or None
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(run(Config.from_env(os.environ), args))
    except (httpx2.HTTPError, OSError) as exc:
        print(f"agent: cannot talk to the MCP server ({exc}); is `make run` running?", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
