"""A terminal chat whose memory lives in Motorhead, over plain HTTP (the REST API, nothing else).

Each turn reads the session back (GET /sessions/{id}/memory: the newest messages and the running summary), looks up
related past messages when long-term memory is on (POST /users/{u}/retrieval, or /sessions/{id}/retrieval), builds the
prompt from them, answers, and stores the user's message and the answer (POST /sessions/{id}/memory). With no model
configured, the offline responder answers from what the memory returned, and says so.

    python examples/chat-py/chat.py --session demo [--user ana]        # then type; /help lists the commands
    printf 'I live in Lisbon\\nWhere do I live?\\n' | python examples/chat-py/chat.py --session demo

Environment: MOTORHEAD_URL (http://127.0.0.1:8080), MOTORHEAD_API_KEY (sent as a bearer token), and for a model
OPENAI_API_KEY, OPENAI_BASE_URL (or OPENAI_API_BASE) and OPENAI_MODEL (gpt-4o-mini). The memory calls use the standard
library only; the ``openai`` package is imported only when a model is configured.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlencode

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_MODEL = "gpt-4o-mini"
OFFLINE_LABEL = "[offline responder: no model configured, answering from the memory]"
RECALL_LIMIT = 3
QUOTE_CHARS = 200
WORD = re.compile(r"\w+")
STOP_WORDS = frozenset(
    {"the", "and", "you", "what", "that", "this", "with", "are", "was", "for", "have", "your", "about", "did", "does"}
    | {"where", "who", "when", "how", "which", "tell", "me"}
)
HELP = """commands:
  /recall <question>  search long-term memory (every session of --user, else this session)
  /memory             what the server holds for this session: summary and newest messages
  /forget             delete this session's memory
  /quit               leave (end of input does too)"""


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

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        """A model is configured when OPENAI_API_KEY is set (any value for a local server that takes none)."""
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
        return cls(
            motorhead_url=(env.get("MOTORHEAD_URL") or DEFAULT_URL).rstrip("/"),
            motorhead_api_key=env.get("MOTORHEAD_API_KEY") or None,
            model=model,
        )


# --- the memory server, over HTTP ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True, slots=True)
class Memory:
    """A session as GET returns it, but oldest first (the API lists the newest first)."""

    messages: list[Message]
    context: str | None


@dataclass(frozen=True, slots=True)
class Hit:
    role: str
    content: str
    session_id: str | None


class ServerError(Exception):
    """The memory server answered an error (``status`` and its ``{"error": ...}`` message) or could not be reached
    (``status`` 0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class MemoryClient:
    """The four REST calls the chat makes. Ids are percent-encoded: any session or user id works."""

    def __init__(self, base_url: str, api_key: str | None, *, timeout: float = 30.0) -> None:
        self.base_url = base_url
        self.headers = {"Accept": "application/json"} | ({"Authorization": f"Bearer {api_key}"} if api_key else {})
        self.timeout = timeout

    def get(self, session_id: str) -> Memory:
        body = self._call("GET", f"/sessions/{quote(session_id, safe='')}/memory")
        messages = [Message(str(m["role"]), str(m["content"])) for m in reversed(body["messages"])]
        return Memory(messages=messages, context=body.get("context"))

    def add(self, session_id: str, messages: Sequence[Message], *, user_id: str | None = None) -> None:
        query = f"?{urlencode({'user_id': user_id})}" if user_id else ""
        payload = {"messages": [{"role": m.role, "content": m.content} for m in messages]}
        self._call("POST", f"/sessions/{quote(session_id, safe='')}/memory{query}", payload)

    def delete(self, session_id: str) -> None:
        self._call("DELETE", f"/sessions/{quote(session_id, safe='')}/memory")

    def recall(self, text: str, *, session_id: str, user_id: str | None, limit: int = RECALL_LIMIT) -> list[Hit]:
        """Long-term memory: every session of ``user_id`` when given, else this session (a 400 when it is off)."""
        if user_id:
            body = self._call("POST", f"/users/{quote(user_id, safe='')}/retrieval", {"text": text, "limit": limit})
        else:
            body = self._call("POST", f"/sessions/{quote(session_id, safe='')}/retrieval", {"text": text, "k": limit})
        return [Hit(str(h["role"]), str(h["content"]), h.get("session_id")) for h in body]

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        headers = self.headers | ({"Content-Type": "application/json"} if data is not None else {})
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise ServerError(exc.code, _error_message(exc)) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ServerError(0, f"cannot reach {self.base_url} ({exc}); is `make run` running?") from None


def _error_message(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read())["error"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {exc.code}"


# --- one turn: what the memory gave, the prompt built from it, the answer --------------------------------------------


@dataclass(frozen=True, slots=True)
class Turn:
    """What the answer is built from: the user's text, the session's window (oldest first), its summary, and the
    related messages long-term memory found (those not already in the window)."""

    text: str
    window: list[Message]
    context: str | None
    recalled: list[Hit]


class ModelError(Exception):
    """The model could not answer; the turn is not stored."""


class Responder(Protocol):
    label: str

    def reply(self, turn: Turn) -> str: ...


def prompt_messages(turn: Turn) -> list[dict[str, str]]:
    """The chat-completions prompt: a system message with the summary and the recalled messages, the window, the
    user's text."""
    system = ["You are a helpful assistant. Your memory of this user is kept on a memory server."]
    if turn.context:
        system.append(f"Summary of the earlier conversation: {turn.context}")
    if turn.recalled:
        system.append("Possibly relevant messages from earlier conversations:")
        system += [f"- {hit.role}: {hit.content}" for hit in turn.recalled]
    window = [{"role": "assistant" if m.role == "AI" else "user", "content": m.content} for m in turn.window]
    return [{"role": "system", "content": "\n".join(system)}, *window, {"role": "user", "content": turn.text}]


def _words(text: str) -> set[str]:
    return {word for word in WORD.findall(text.lower()) if len(word) > 2 and word not in STOP_WORDS}


def _quote(text: str) -> str:
    short = text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1] + "…"
    return f"“{short}”"


def closest(question: str, candidates: Sequence[str]) -> str | None:
    """The candidate sharing the most words with the question, the newest on a tie (candidates are oldest first)."""
    if not candidates:
        return None
    asked = _words(question)
    return max(reversed(candidates), key=lambda candidate: len(asked & _words(candidate)))


def _sentence(parts: Sequence[str]) -> str:
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "!", "?", "”")) else ".")


class OfflineResponder:
    """No model: an answer made only of what the memory server returned, labelled as such. Deterministic."""

    label = "offline responder (no OPENAI_API_KEY)"

    def reply(self, turn: Turn) -> str:
        said = [m.content for m in turn.window if m.role != "AI"]
        recalled = [hit for hit in turn.recalled if hit.role != "AI"]
        parts = []
        if recalled:
            found = ", ".join(
                _quote(h.content) + (f" (session {h.session_id})" if h.session_id else "") for h in recalled
            )
            parts.append(f"long-term memory found {found}")
        earlier = closest(turn.text, said)
        if earlier is not None:
            of = f" (1 of {len(said)} things you said in this session)" if len(said) > 1 else ""
            parts.append(f"earlier you said {_quote(earlier)}{of}")
        if turn.context:
            parts.append(f"the summary so far is {_quote(turn.context)}")
        if not parts:
            parts.append("nothing is remembered in this session yet: tell me something, then ask me about it")
        return f"{OFFLINE_LABEL} {_sentence(parts)}"


class ModelResponder:
    """Any OpenAI-compatible chat-completions server."""

    def __init__(self, config: ModelConfig) -> None:
        from openai import OpenAI  # only on this path: the offline chat needs no package

        self.client = OpenAI(api_key=config.api_key, base_url=config.base_url)
        self.model = config.model
        self.label = f"model {config.model}" + (f" at {config.base_url}" if config.base_url else "")

    def reply(self, turn: Turn) -> str:
        from openai import OpenAIError

        try:
            completion = self.client.chat.completions.create(
                model=self.model,
                messages=prompt_messages(turn),  # type: ignore[arg-type]  # the SDK's TypedDicts: this is their shape
            )
        except OpenAIError as exc:
            raise ModelError(str(exc)) from None
        return completion.choices[0].message.content or ""


def responder_for(config: Config) -> Responder:
    return ModelResponder(config.model) if config.model is not None else OfflineResponder()


# --- the chat loop ---------------------------------------------------------------------------------------------------


class Chat:
    def __init__(
        self, memory: MemoryClient, responder: Responder, *, session_id: str, user_id: str | None, recall: bool
    ) -> None:
        self.memory = memory
        self.responder = responder
        self.session_id = session_id
        self.user_id = user_id
        self.recall_on = recall  # turned off for the rest of the chat when the server says it cannot

    def turn(self, text: str) -> str:
        """Read the memory, answer from it, store the user's text and the answer; the answer."""
        memory = self.memory.get(self.session_id)
        in_window = {m.content for m in memory.messages}
        recalled = [hit for hit in self._auto_recall(text) if hit.content not in in_window]
        answer = self.responder.reply(Turn(text, memory.messages, memory.context, recalled))
        self.memory.add(self.session_id, [Message("Human", text), Message("AI", answer)], user_id=self.user_id)
        return answer

    def recall(self, question: str) -> list[str]:
        try:
            hits = self.memory.recall(question, session_id=self.session_id, user_id=self.user_id)
        except ServerError as exc:
            if exc.status != 400:
                raise
            return [f"(recall is unavailable: {exc})"]
        if not hits:
            return ["(nothing found yet: indexing takes about a second after a message is stored)"]
        return [f"{h.role}: {h.content}" + (f"  [session {h.session_id}]" if h.session_id else "") for h in hits]

    def show(self) -> list[str]:
        memory = self.memory.get(self.session_id)
        lines = [f"summary: {memory.context or '(none yet)'}", f"{len(memory.messages)} messages in the window:"]
        return lines + [f"  {m.role}: {m.content}" for m in memory.messages]

    def _auto_recall(self, text: str) -> list[Hit]:
        if not self.recall_on:
            return []
        try:
            return self.memory.recall(text, session_id=self.session_id, user_id=self.user_id)
        except ServerError as exc:
            if exc.status != 400:
                raise
            self.recall_on = False
            print(f"chat: long-term recall is off for this chat: {exc}", file=sys.stderr)
            return []


def handle(chat: Chat, line: str) -> list[str] | None:
    """The output lines for one input line; None to quit."""
    command, _, rest = line.partition(" ")
    if command in ("/quit", "/exit"):
        return None
    if command == "/help":
        return HELP.splitlines()
    if command == "/recall":
        return chat.recall(rest.strip()) if rest.strip() else ["usage: /recall <question>"]
    if command == "/memory":
        return chat.show()
    if command == "/forget":
        chat.memory.delete(chat.session_id)
        return [f"(session {chat.session_id} forgotten)"]
    try:
        return [f"ai> {chat.turn(line)}"]
    except ModelError as exc:
        return [f"(the model failed, nothing stored: {exc})"]


def input_lines(interactive: bool) -> Iterator[str]:
    """Non-empty input lines: from the prompt in a terminal, else from stdin as piped (echoed, for a transcript)."""
    if interactive:
        while True:
            try:
                line = input("you> ").strip()
            except EOFError:
                return
            if line:
                yield line
    else:
        for raw in sys.stdin:
            line = raw.strip()
            if line:
                print(f"you> {line}")
                yield line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="A terminal chat keeping its memory in a Motorhead server.")
    parser.add_argument("--session", required=True, help="the session (conversation) id: any string")
    parser.add_argument("--user", help="the user the session belongs to: /recall then searches all their sessions")
    parser.add_argument("--no-recall", action="store_true", help="do not look up long-term memory on each turn")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    config = Config.from_env(os.environ)
    memory = MemoryClient(config.motorhead_url, config.motorhead_api_key)
    chat = Chat(memory, responder_for(config), session_id=args.session, user_id=args.user, recall=not args.no_recall)
    print(
        f"chat: session {args.session!r} on {config.motorhead_url}; answers by the {chat.responder.label}; /help",
        file=sys.stderr,
    )
    try:
        for line in input_lines(sys.stdin.isatty()):
            output = handle(chat, line)
            if output is None:
                break
            print("\n".join(output), flush=True)
    except ServerError as exc:
        print(f"chat: the memory server: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
