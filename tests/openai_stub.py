"""A scripted OpenAI-compatible HTTP server for tests: real sockets, real HTTP, the real ``openai`` client in front.

Each request to ``POST /v1/chat/completions`` or ``POST /v1/embeddings`` (or Azure's
``POST /openai/deployments/<id>/chat/completions`` and ``.../embeddings``) is recorded, then answered by the next
scripted behaviour; when the script is empty, by the route's default behaviour::

    with OpenAIStub() as stub:
        stub.script(Status(429), Answer("the summary", prompt_tokens=90, completion_tokens=10))
        client = openai.OpenAI(api_key="sk-test", base_url=stub.base_url)
        ...
        assert stub.requests[0].headers["authorization"] == "Bearer sk-test"

By default the embeddings route answers "OpenAI-shaped" vectors: a hashed bag-of-words random projection of each
input (see ``stub_embedding``), deterministic, unit length, so texts sharing words are closer, as real embeddings are.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import numpy as np

from tests.loopback_server import LoopbackServer

OPENAI_PATH = "/v1/chat/completions"
AZURE_PATH = re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)/chat/completions$")
OPENAI_EMBEDDINGS_PATH = "/v1/embeddings"
AZURE_EMBEDDINGS_PATH = re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)/embeddings$")
DEFAULT_EMBEDDING_DIMENSIONS = {"text-embedding-3-large": 3072}  # any other model: 1536, as -3-small and ada-002
WORD = re.compile(r"\w+")
FAST_RETRY = {"retry-after": "0", "retry-after-ms": "1"}  # the openai client then retries after 1 ms, not 0.5 s


@dataclass(frozen=True, slots=True)
class Answer:
    """A well-formed chat.completion whose message content is ``text``."""

    text: str
    prompt_tokens: int = 100
    completion_tokens: int = 20


@dataclass(frozen=True, slots=True)
class Embeddings:
    """A well-formed embedding list for the request's inputs: ``vectors`` as given, else each input's
    ``stub_embedding`` at the requested ``dimensions``; multiplied by ``scale`` (a server that does not normalize),
    the items listed in ``order`` (each still carries its ``index``, as the real API's do)."""

    vectors: Sequence[Sequence[float]] | None = None
    scale: float = 1.0
    order: Literal["input", "reversed"] = "input"


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
    then: Answer | Embeddings = Answer("late answer")  # on the embeddings route an Answer means Embeddings()


@dataclass(frozen=True, slots=True)
class Malformed:
    """A 200 with this body as is: a dict is sent as JSON, a str as raw bytes (e.g. not JSON at all)."""

    body: Mapping[str, Any] | str


Behaviour = Answer | Embeddings | Status | Hang | Malformed


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
    route: Literal["chat", "embeddings"] = "chat"

    @property
    def inputs(self) -> list[str]:
        """The texts of an embeddings request (``input`` is a string or a list of them)."""
        raw = self.body.get("input", [])
        return [raw] if isinstance(raw, str) else [str(text) for text in raw]

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


def embed_inputs(request: RecordedRequest) -> Behaviour:
    """The default behaviour of the embeddings route: every input's ``stub_embedding``."""
    return Embeddings()


def requested_dimensions(body: Mapping[str, Any]) -> int:
    if "dimensions" in body:
        return int(body["dimensions"])
    return DEFAULT_EMBEDDING_DIMENSIONS.get(str(body.get("model", "")), 1536)


@lru_cache(maxsize=65_536)
def word_vector(word: str, dimensions: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    """A fixed random Gaussian direction per (word, dimensions), seeded by the word's hash."""
    seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
    return np.random.default_rng(seed).standard_normal(dimensions)


def stub_embedding(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector: the sum of the random directions of the text's lower-cased words (the whole text
    if it has none), so texts sharing words point alike and unrelated texts are nearly orthogonal."""
    words = WORD.findall(text.lower()) or [text]
    vector = np.sum([word_vector(word, dimensions) for word in words], axis=0)
    norm = float(np.linalg.norm(vector))
    return [float(x) for x in (vector / norm if norm else vector)]


def embedding_list(request: RecordedRequest, behaviour: Embeddings) -> dict[str, Any]:
    """The real create-embedding-response shape, floats or base64 (little-endian float32) as asked."""
    dimensions = requested_dimensions(request.body)
    inputs = request.inputs
    vectors = (
        [list(vector) for vector in behaviour.vectors]
        if behaviour.vectors is not None
        else [stub_embedding(text, dimensions) for text in inputs]
    )
    items = []
    for index, vector in enumerate(vectors):
        scaled = [x * behaviour.scale for x in vector]
        if request.body.get("encoding_format") == "base64":
            encoded: list[float] | str = base64.b64encode(np.asarray(scaled, dtype="<f4").tobytes()).decode()
        else:
            encoded = scaled
        items.append({"object": "embedding", "index": index, "embedding": encoded})
    if behaviour.order == "reversed":
        items.reverse()
    tokens = sum(len(text) for text in inputs) // 4 + len(inputs)
    return {
        "object": "list",
        "data": items,
        "model": str(request.body.get("model", "")),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


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


class OpenAIStub(LoopbackServer):
    """The server. Thread-safe: the script and the records are shared by the handler threads."""

    def __init__(
        self,
        default: Callable[[RecordedRequest], Behaviour] = echo_summary,
        embeddings_default: Callable[[RecordedRequest], Behaviour] = embed_inputs,
    ) -> None:
        self.default = default
        self.embeddings_default = embeddings_default
        self._script: deque[Behaviour] = deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        super().__init__(self._handler_class(), name="openai-stub")

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

    def _record(self, request: RecordedRequest) -> tuple[RecordedRequest, Behaviour]:
        """Number and keep the request; the behaviour that answers it."""
        with self._lock:
            request = replace(request, index=len(self._requests))
            self._requests.append(request)
            scripted = self._script.popleft() if self._script else None
        if scripted is not None:
            return request, scripted
        default = self.embeddings_default if request.route == "embeddings" else self.default
        return request, default(request)

    # --- HTTP ---------------------------------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the real API

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                url = urlsplit(self.path)
                azure = AZURE_PATH.match(url.path) or AZURE_EMBEDDINGS_PATH.match(url.path)
                route: Literal["chat", "embeddings"] = "embeddings" if url.path.endswith("/embeddings") else "chat"
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                if url.path not in (OPENAI_PATH, OPENAI_EMBEDDINGS_PATH) and azure is None:
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
                    route=route,
                )
                self._behave(*stub._record(request))

            def _behave(self, request: RecordedRequest, behaviour: Behaviour) -> None:
                if isinstance(behaviour, Hang):
                    if stub._stopping.wait(behaviour.seconds):
                        return
                    behaviour = behaviour.then
                if request.route == "embeddings" and isinstance(behaviour, Answer):
                    behaviour = Embeddings()
                if isinstance(behaviour, Embeddings):
                    if request.route != "embeddings":
                        self._send(500, {"error": {"message": "stub: Embeddings scripted for a chat request"}})
                    else:
                        self._send(200, embedding_list(request, behaviour))
                elif isinstance(behaviour, Answer):
                    self._send(200, completion(str(request.body.get("model", "")), behaviour))
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
