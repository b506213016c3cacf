"""LangChain's own MotorheadMemory client, unchanged, against the local server over real HTTP."""

from __future__ import annotations

import asyncio

import pytest
import requests
from langchain_community.memory.motorhead_memory import MotorheadMemory

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def loaded(base_url: str, session_id: str) -> MotorheadMemory:
    """A fresh client that has run its init() (a GET of the session), as an app does at start."""
    memory = MotorheadMemory(session_id=session_id, url=base_url, memory_key="history")
    asyncio.run(memory.init())
    return memory


def test_langchain_memory_given_saved_turns_reloads_them_in_order(base_url: str) -> None:
    # Given LangChain's client pointed at our server, on an empty session
    memory = loaded(base_url, "lc-session:1")
    assert memory.chat_memory.messages == []
    # When it saves two turns, and a fresh client loads the session
    memory.save_context({"input": "hi"}, {"output": "hello! how can I help?"})
    memory.save_context({"input": "what is salsa?"}, {"output": "a dance"})
    reloaded = loaded(base_url, "lc-session:1")
    # Then it sees the four messages oldest first, human/AI alternating, and no context
    assert [(m.type, m.content) for m in reloaded.chat_memory.messages] == [
        ("human", "hi"),
        ("ai", "hello! how can I help?"),
        ("human", "what is salsa?"),
        ("ai", "a dance"),
    ]
    assert reloaded.context is None
    assert "Human: hi\nAI: hello! how can I help?" in reloaded.load_memory_variables({})["history"]
    # When it deletes the session / Then a new client finds it empty
    reloaded.delete_session()
    assert loaded(base_url, "lc-session:1").chat_memory.messages == []


def test_langchain_memory_given_more_turns_than_the_window_loads_the_newest(base_url: str) -> None:
    # Given six turns saved through the client (the fixture's window is 4 messages)
    memory = loaded(base_url, "lc-window")
    for turn in range(6):
        memory.save_context({"input": f"q{turn}"}, {"output": f"a{turn}"})
    # When a fresh client loads / Then it gets exactly the last two turns, in order
    assert [m.content for m in loaded(base_url, "lc-window").chat_memory.messages] == ["q4", "a4", "q5", "a5"]


def test_langchain_memory_given_context_from_elsewhere_loads_it(base_url: str) -> None:
    # Given a session whose summary was loaded through Motorhead's context override
    requests.post(
        f"{base_url}/sessions/lc-2/memory",
        json={"messages": [{"role": "Human", "content": "x"}], "context": "The user likes salsa."},
        timeout=5,
    )
    # When LangChain's client loads it / Then it keeps the context
    assert loaded(base_url, "lc-2").context == "The user likes salsa."
