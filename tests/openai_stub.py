"""A scripted OpenAI-compatible HTTP server for tests: real sockets, real HTTP, the real ``openai`` client in front.

Each request to ``POST /v1/chat/completions`` (or Azure's ``POST /openai/deployments/<id>/chat/completions``) is
recorded, then answered by the next scripted behaviour; when the script is empty, by the default behaviour::

    with OpenAIStub() as stub:
        stub.script(Status(429), Answer("the summary", prompt_tokens=90, completion_tokens=10))
        client = openai.OpenAI(api_key="sk-test", base_url=stub.base_url)
        ...
        assert stub.requests[0].headers["authorization"] == "Bearer sk-test"
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

OPENAI_PATH = "/v1/chat/completions"
AZURE_PATH = re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)/chat/completions$")
FAST_RETRY = {"retry-after": "0", "retry-after-ms": "1"}  # the openai client then retries after 1 ms, not 0.5 s


@dataclass(frozen=True, slots=True)
class Answer:
    """A well-formed chat.completion whose message content is ``text``."""

    text: str
    prompt_tokens: int = 100
    completion_tokens: int = 20


@dataclass(frozen=True, slots=True)
class Status:
    """An error status with an OpenAI-shaped error body (or ``body``), and the retry headers the API sends."""

    code: int
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=lambda: dict(FAST_RETRY))


@dataclass(frozen=True, slots=True)
class Hang:
    """Wait ``seconds`` (longer than the client's timeout) before answering; the stub's shutdown cuts it short."""

    seconds: float
    then: Answer = Answer("late answer")


@dataclass(frozen=True, slots=True)
class Malformed:
    """A 200 with this body as is: a dict is sent as JSON, a str as raw bytes (e.g. not JSON at all)."""

    body: Mapping[str, Any] | str


Behaviour = Answer | Status | Hang | Malformed


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the server saw it; header names are lower-cased."""

    index: int
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: dict[str, Any]
    deployment: str | None

    @property
    def messages(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.body.get("messages", [])
        return messages

    def content_of(self, role: str) -> str:
        """The content of the first message with this role."""
        return str(next(message["content"] for message in self.messages if message["role"] == role))


def echo_summary(request: RecordedRequest) -> Behaviour:
    """The default behaviour: a deterministic summary naming the call, usage derived from the request's size."""
    prompt_tokens = max(1, sum(len(str(message.get("content", ""))) for message in request.messages) // 4)
    return Answer(f"Summary #{request.index + 1}.", prompt_tokens=prompt_tokens, completion_tokens=4)


def completion(model: str, answer: Answer) -> dict[str, Any]:
    """The real chat.completion shape."""
    return {
        "id": f"chatcmpl-stub{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "total_tokens": answer.prompt_tokens + answer.completion_tokens,
        },
        "system_fingerprint": "fp_stub",
    }


def error_body(code: int) -> dict[str, Any]:
    try:
        phrase = HTTPStatus(code).phrase
    except ValueError:
        phrase = "error"
    return {"error": {"message": f"stub: {phrase}", "type": "stub_error", "param": None, "code": str(code)}}


class OpenAIStub:
    """The server. Thread-safe: the script and the records are shared by the handler threads."""

    def __init__(self, default: Callable[[RecordedRequest], Behaviour] = echo_summary) -> None:
        self.default = default
        self._script: deque[Behaviour] = deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="openai-stub", daemon=True
        )

    # --- lifecycle ----------------------------------------------------------------------------------------------
    def __enter__(self) -> OpenAIStub:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stopping.set()  # releases any Hang
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    # --- script and records -------------------------------------------------------------------------------------
    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours, consumed one per request, in order."""
        with self._lock:
            self._script.extend(behaviours)

    @property
    def pending(self) -> int:
        """Scripted behaviours not consumed yet."""
        with self._lock:
            return len(self._script)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def _record(self, request: RecordedRequest) -> Behaviour:
        with self._lock:
            request = replace(request, index=len(self._requests))
            self._requests.append(request)
            scripted = self._script.popleft() if self._script else None
        return scripted if scripted is not None else self.default(request)

    # --- HTTP ---------------------------------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the real API

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                url = urlsplit(self.path)
                azure = AZURE_PATH.match(url.path)
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                if url.path != OPENAI_PATH and azure is None:
                    self._send(404, {"error": {"message": f"stub: no route {url.path}", "type": "not_found"}})
                    return
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    self._send(400, {"error": {"message": "stub: body is not JSON", "type": "invalid_request"}})
                    return
                request = RecordedRequest(
                    index=-1,  # numbered by _record
                    method="POST",
                    path=url.path,
                    query=parse_qs(url.query),
                    headers={name.lower(): value for name, value in self.headers.items()},
                    body=body,
                    deployment=azure["deployment"] if azure else None,
                )
                self._behave(stub._record(request), model=str(body.get("model", "")))

            def _behave(self, behaviour: Behaviour, *, model: str) -> None:
                if isinstance(behaviour, Hang):
                    if stub._stopping.wait(behaviour.seconds):
                        return
                    behaviour = behaviour.then
                if isinstance(behaviour, Answer):
                    self._send(200, completion(model, behaviour))
                elif isinstance(behaviour, Status):
                    body = behaviour.body if behaviour.body is not None else error_body(behaviour.code)
                    self._send(behaviour.code, body, headers=behaviour.headers)
                else:
                    self._send(200, behaviour.body)

            def _send(
                self, code: int, body: Mapping[str, Any] | str, *, headers: Mapping[str, str] | None = None
            ) -> None:
                payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                try:
                    self.send_response(code)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.send_header("x-request-id", f"req_stub{time.monotonic_ns()}")
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout): nothing to tell
                    self.close_connection = True

        return Handler
