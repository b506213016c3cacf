"""The examples (examples/), run as their READMEs say, in subprocesses, against the real local server (`make run`,
tests/make_run.py) and, for the model path, the OpenAI stub (tests/openai_stub.py): chat-py with piped input, the
chat-web server's proxy, the MCP agent over streamable HTTP. Offline runs have no OPENAI_* variable at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
import requests

from devserver.embedded_redis import free_port
from tests.make_run import make_run, user_environment
from tests.openai_stub import Answer, Malformed, OpenAIStub
from tests.support import REPO

CHAT_PY = "examples/chat-py/chat.py"
CHAT_WEB = "examples/chat-web/server.py"
AGENT = "examples/mcp-agent/agent.py"
OFFLINE = "[offline responder: no model configured, answering from the memory]"
TOOLS = ["add_memory", "get_memory", "search_memory", "delete_memory", "list_sessions"]
HOSTILE_ID = "ana@example.com:{chat} 1 ü%25?#"
WEB_ID = "web: " + HOSTILE_ID


@dataclass(frozen=True, slots=True)
class Server:
    url: str
    key: str | None = None

    def rest(self, method: str, path: str, body: Any = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        return requests.request(method, self.url + path, json=body, headers=headers, timeout=30)

    def window(self, session_id: str) -> list[tuple[str, str]]:
        """The session's messages as REST returns them, oldest first."""
        got = self.rest("GET", memory_path(session_id))
        assert got.status_code == 200, got.text
        return [(m["role"], m["content"]) for m in reversed(got.json()["messages"])]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`make run` as it starts by default: no authentication, long-term memory off."""
    port = free_port()
    with make_run(tmp_path_factory.mktemp("make-run"), port):
        yield Server(f"http://127.0.0.1:{port}")


@pytest.fixture(scope="module")
def ltm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`MOTORHEAD_AUTH=api-key MOTORHEAD_LONG_TERM_MEMORY=true make run`, and a key made by `make key TENANT=acme`."""
    port = free_port()
    data = tmp_path_factory.mktemp("make-run-ltm")
    with make_run(data, port, MOTORHEAD_AUTH="api-key", MOTORHEAD_LONG_TERM_MEMORY="true"):
        created = subprocess.run(
            [sys.executable, "-m", "devserver.keys", "create", "--tenant", "acme"],
            cwd=REPO,
            env=user_environment(MOTORHEAD_DATA_DIR=str(data)),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        yield Server(f"http://127.0.0.1:{port}", key=created.stdout.splitlines()[-1])


def memory_path(session_id: str) -> str:
    return f"/sessions/{quote(session_id, safe='')}/memory"


def example_environment(server: Server, **env: str) -> dict[str, str]:
    """A shell in a fresh clone: ours without any Motorhead, OpenAI, AWS or Redis setting, nor PYTHONPATH; then
    MOTORHEAD_URL (and MOTORHEAD_API_KEY) for ``server``, and ``env``."""
    clean = {
        name: value
        for name, value in os.environ.items()
        if name not in ("REDIS_URL", "PYTHONPATH") and not name.startswith(("MOTORHEAD_", "OPENAI_", "AWS_"))
    }
    key = {"MOTORHEAD_API_KEY": server.key} if server.key else {}
    return {**clean, "MOTORHEAD_URL": server.url, **key, **env}


def run_example(script: str, *args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``python <script> <args>`` from the clone's root, as the READMEs say, ``stdin`` piped in."""
    return subprocess.run(
        [sys.executable, script, *args],
        cwd=REPO,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def replies(stdout: str) -> list[str]:
    return [line.removeprefix("ai> ") for line in stdout.splitlines() if line.startswith("ai> ")]


def stub_environment(stub: OpenAIStub) -> dict[str, str]:
    return {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": stub.base_url, "OPENAI_MODEL": "stub-model"}


# --- chat-py ---------------------------------------------------------------------------------------------------------


def test_chat_py_given_piped_lines_and_no_model_stores_each_turn_and_answers_from_the_memory(server: Server) -> None:
    # Given `make run` as it starts (long-term memory off) and no model / When lines are piped into chat-py
    lines = "My name is Ana and I live in Lisbon.\nI like jazz.\nWhere do I live?\n/recall Lisbon\n"
    got = run_example(CHAT_PY, "--session", HOSTILE_ID, env=example_environment(server), stdin=lines)
    # Then it ran to the end of input, each answer labelled as the offline responder's
    assert got.returncode == 0, got.stderr
    answers = replies(got.stdout)
    assert len(answers) == 3 and all(answer.startswith(OFFLINE) for answer in answers)
    assert "offline responder" in got.stderr
    # And the answers come from what the server returned: nothing at first, then the message that matches the question
    assert "Nothing is remembered in this session yet" in answers[0]
    assert "Earlier you said “My name is Ana and I live in Lisbon.” (1 of 2 things you said" in answers[2]
    # And /recall says long-term memory is off, with the server's message, and the chat went on
    assert "(recall is unavailable: long-term memory is disabled (set MOTORHEAD_LONG_TERM_MEMORY=true))" in got.stdout
    # And every turn is in the server, under the (hostile) session id, the user's words and the answers
    window = server.window(HOSTILE_ID)
    assert [role for role, _ in window] == ["Human", "AI"] * 3
    assert [content for _, content in window[::2]] == lines.replace("/recall Lisbon\n", "").splitlines()
    assert [content for _, content in window[1::2]] == answers


def test_chat_py_given_long_term_memory_and_a_key_recalls_what_the_user_said_in_another_session(
    ltm_server: Server,
) -> None:
    env = example_environment(ltm_server)
    # Given ana said something in one chat (through an API key: make run with MOTORHEAD_AUTH=api-key)
    first = run_example(CHAT_PY, "--session", "week-1", "--user", "ana", env=env, stdin="I am allergic to peanuts.\n")
    assert first.returncode == 0, first.stderr
    deadline = time.monotonic() + 20
    while not ltm_server.rest("POST", "/users/ana/retrieval", {"text": "peanuts"}).json():  # indexing runs after it
        assert time.monotonic() < deadline, "the first chat was never indexed"
        time.sleep(0.2)
    # When she asks in a new chat, and asks /recall
    lines = "What food should I avoid?\n/recall peanuts\n"
    got = run_example(CHAT_PY, "--session", "week-2", "--user", "ana", env=env, stdin=lines)
    # Then the answer quotes the other session's message, found by the user-level retrieval
    assert got.returncode == 0, got.stderr
    (answer,) = replies(got.stdout)
    assert "Long-term memory found “I am allergic to peanuts.” (session week-1)" in answer
    assert "Human: I am allergic to peanuts.  [session week-1]" in got.stdout
    # And both chats are ana's sessions
    listed = ltm_server.rest("GET", "/sessions?user_id=ana").json()
    assert sorted(listed) == ["week-1", "week-2"]


def test_chat_py_given_a_model_sends_it_the_memory_and_stores_its_answers(server: Server) -> None:
    with OpenAIStub() as stub:
        stub.script(Answer("Nice to meet you, Ana."), Answer("You live in Lisbon."))
        # Given an OpenAI-compatible model configured / When two lines are piped in
        lines = "My name is Ana and I live in Lisbon.\nWhere do I live?\n"
        env = example_environment(server, **stub_environment(stub))
        got = run_example(CHAT_PY, "--session", "model-chat", env=env, stdin=lines)
        requests_seen = stub.requests
    # Then the model's answers are printed, no offline label anywhere
    assert got.returncode == 0, got.stderr
    assert replies(got.stdout) == ["Nice to meet you, Ana.", "You live in Lisbon."]
    assert OFFLINE not in got.stdout and "model stub-model" in got.stderr
    # And the second prompt was built from the memory: the first turn, read back from the server, then the question
    assert len(requests_seen) == 2
    second = requests_seen[1]
    assert second.headers["authorization"] == "Bearer sk-test" and second.body["model"] == "stub-model"
    assert [(m["role"], m["content"]) for m in second.messages[1:]] == [
        ("user", "My name is Ana and I live in Lisbon."),
        ("assistant", "Nice to meet you, Ana."),
        ("user", "Where do I live?"),
    ]
    # And the server holds both turns with the model's answers
    assert server.window("model-chat")[1::2] == [("AI", "Nice to meet you, Ana."), ("AI", "You live in Lisbon.")]


# --- chat-web --------------------------------------------------------------------------------------------------------


@contextmanager
def chat_web(env: dict[str, str]) -> Iterator[str]:
    """`python examples/chat-web/server.py --port P` for the block; its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, CHAT_WEB, "--port", str(port)], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(url + "/api/config", timeout=5)
                break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "chat-web did not come up"
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_chat_web_given_a_turn_proxies_each_call_to_the_memory_server(server: Server) -> None:
    with chat_web(example_environment(server)) as web:
        # Given the page's server, no model / When the page loads, then makes a turn's calls, as app.js does
        page = requests.get(web + "/", timeout=10)
        script = requests.get(web + "/app.js", timeout=10)
        config = requests.get(web + "/api/config", timeout=10).json()
        path = f"/api/memory{memory_path(WEB_ID)}"
        before = requests.get(web + path, timeout=10)
        turn = {"messages": [{"role": "Human", "content": "<b>hi</b>"}, {"role": "AI", "content": "hello"}]}
        posted = requests.post(web + path + "?user_id=ana", json=turn, timeout=10)
        after = requests.get(web + path, timeout=10)
        recall = requests.post(web + "/api/memory/users/ana/retrieval", json={"text": "hi"}, timeout=10)
        model = requests.post(web + "/api/model", json={"messages": [{"role": "user", "content": "hi"}]}, timeout=10)
    # Then the page is served with a strict content policy (its script is its own, nothing from elsewhere)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert script.status_code == 200 and "textContent" in script.text and "innerHTML" not in script.text
    assert config == {"model": None}
    # And the memory calls reached the server: the turn is stored under the session and bound to the user
    assert before.json() == {"messages": [], "context": None, "tokens": 0}
    assert posted.status_code == 200 and posted.json() == {"status": "Ok"}
    assert server.window(WEB_ID) == [("Human", "<b>hi</b>"), ("AI", "hello")]
    assert after.json() == server.rest("GET", memory_path(WEB_ID)).json()
    assert WEB_ID in server.rest("GET", "/sessions?user_id=ana").json()
    # And the server's refusals come through as they are; with no model the page is told to answer offline
    assert recall.status_code == 400 and "long-term memory is disabled" in recall.json()["error"]
    assert model.status_code == 503


def test_chat_web_given_a_foreign_site_or_another_route_refuses_to_proxy(server: Server) -> None:
    with chat_web(example_environment(server)) as web:
        # Given the page's server / When a request is not the page's own, or names a route a chat does not need
        listing = requests.get(web + "/api/memory/sessions", timeout=10)
        user_deletion = requests.delete(web + "/api/memory/users/ana", timeout=10)
        rebound = requests.get(web + "/", headers={"Host": "attacker.example:8090"}, timeout=10)
        foreign = requests.post(
            web + "/api/memory/sessions/x/memory", json={"messages": []}, headers={"Origin": "https://attacker.example"}
        )
        form = requests.post(web + "/api/memory/sessions/x/memory", data={"messages": "x"}, timeout=10)
    # Then it refuses each, and nothing reached the memory server
    assert (listing.status_code, user_deletion.status_code) == (404, 404)
    assert (rebound.status_code, foreign.status_code, form.status_code) == (421, 403, 415)
    assert server.window("x") == []


def test_chat_web_given_a_key_and_a_model_keeps_both_server_side(ltm_server: Server) -> None:
    with OpenAIStub() as stub:
        stub.script(Answer("Hello from the model."))
        env = example_environment(ltm_server, **stub_environment(stub))
        with chat_web(env) as web:
            # Given the page's server with MOTORHEAD_API_KEY and a model / When the page stores a turn and asks
            config = requests.get(web + "/api/config", timeout=10).json()
            prompt = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]}
            answer = requests.post(web + "/api/model", json=prompt, timeout=30)
            path = f"/api/memory{memory_path('web-keyed')}"
            posted = requests.post(web + path, json={"messages": [{"role": "Human", "content": "hi"}]}, timeout=10)
        seen = stub.requests
    # Then the model answered through it, with the key it holds, the page's prompt unchanged
    assert config == {"model": "stub-model"}
    assert answer.status_code == 200 and answer.json() == {"content": "Hello from the model.", "model": "stub-model"}
    assert seen[0].headers["authorization"] == "Bearer sk-test" and seen[0].messages == prompt["messages"]
    # And the memory server took the write with the API key the page never saw
    assert posted.status_code == 200
    assert ltm_server.window("web-keyed") == [("Human", "hi")]


# --- the MCP agent ---------------------------------------------------------------------------------------------------


def test_mcp_agent_given_no_model_runs_its_plan_over_http_and_rest_sees_the_memory(ltm_server: Server) -> None:
    # Given long-term memory on, an API key, no model / When the agent runs as its README says
    got = run_example(AGENT, "--session", "agent-plan", "--user", "bo", env=example_environment(ltm_server))
    # Then it listed the five tools over streamable HTTP and its plan succeeded, printing each result
    assert got.returncode == 0, got.stdout + got.stderr
    assert f"5 tools on {ltm_server.url}/mcp: {', '.join(TOOLS)}" in got.stdout
    assert "<- Saved 4 message(s) to the session." in got.stdout
    assert "[agent-plan] Human: I am allergic to peanuts, so no satay for me." in got.stdout  # search_memory found it
    assert "agent: plan done" in got.stdout
    # And what it added is there for REST, in the session bound to its user
    assert ltm_server.window("agent-plan")[0] == ("Human", "My name is Ana and I live in Lisbon.")
    assert len(ltm_server.window("agent-plan")) == 4
    assert ltm_server.rest("GET", "/sessions?user_id=bo").json() == ["agent-plan"]


def test_mcp_agent_given_long_term_memory_off_reports_the_search_error_and_finishes(server: Server) -> None:
    # Given `make run` as it starts / When the agent's plan runs
    got = run_example(AGENT, "--session", "agent-off", "--forget", env=example_environment(server))
    # Then search_memory's tool error is shown and explained, the other tools worked, and --forget deleted the session
    assert got.returncode == 0, got.stdout + got.stderr
    assert "<- error: " in got.stdout and "long-term memory is disabled" in got.stdout
    assert "search_memory needs long-term memory" in got.stdout and "agent: plan done" in got.stdout
    assert "<- The session is forgotten." in got.stdout
    assert server.window("agent-off") == []


def tool_calls_completion(*calls: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """A chat.completion whose message asks for tool calls, as the real API sends it."""
    tool_calls = [
        {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
        for i, (name, arguments) in enumerate(calls)
    ]
    return {
        "id": "chatcmpl-stub-tools",
        "object": "chat.completion",
        "created": 0,
        "model": "stub-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "tool_calls": tool_calls},
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60},
    }


def test_mcp_agent_given_a_model_runs_its_tool_calls_on_the_mcp_server(server: Server) -> None:
    saved = {"session_id": "agent-model", "messages": [{"role": "Human", "content": "I am vegetarian."}]}
    with OpenAIStub() as stub:
        # Given a model that asks for add_memory and get_memory, then answers
        stub.script(
            Malformed(tool_calls_completion(("add_memory", saved), ("get_memory", {"session_id": "agent-model"}))),
            Answer("I saved that you are vegetarian."),
        )
        env = example_environment(server, **stub_environment(stub))
        # When the agent runs a task
        got = run_example(AGENT, "--session", "agent-model", "Remember that I am vegetarian", env=env)
        seen = stub.requests
    # Then the model was offered the five MCP tools with their schemas, and the task
    assert got.returncode == 0, got.stdout + got.stderr
    offered = {tool["function"]["name"]: tool["function"] for tool in seen[0].body["tools"]}
    assert sorted(offered) == sorted(TOOLS)
    assert offered["add_memory"]["parameters"]["required"] == ["session_id", "messages"]
    assert seen[0].messages[-1] == {"role": "user", "content": "Remember that I am vegetarian"}
    # And its calls ran on the MCP server, each result going back to it as the tool's structured content
    assert server.window("agent-model") == [("Human", "I am vegetarian.")]
    results = {m["tool_call_id"]: m["content"] for m in seen[1].messages if m["role"] == "tool"}
    assert json.loads(results["call_0"]) == {"status": "Ok"}
    assert json.loads(results["call_1"])["messages"][0]["content"] == "I am vegetarian."
    assert "agent> I saved that you are vegetarian." in got.stdout
