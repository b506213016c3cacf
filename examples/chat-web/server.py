"""The chat page's server: serves ``static/`` and proxies the page's calls, standard library only.

    python examples/chat-web/server.py            # then open http://127.0.0.1:8090

- ``/api/memory/...`` goes to the memory server unchanged (path, query, body, status, JSON answer), with
  ``Authorization: Bearer $MOTORHEAD_API_KEY`` added here: the key never reaches the browser, and the page calls its
  own origin, so the API needs no CORS. Only the routes a chat needs pass: a session's memory (GET, POST, DELETE),
  a session's or a user's retrieval (POST). Anything else is a 404 here.
- ``POST /api/model`` sends the page's prompt (``{"messages": [...]}``) to the OpenAI-compatible model configured by
  ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` / ``OPENAI_MODEL`` and answers ``{"content": ...}``; with none configured
  it answers 503 and the page uses its offline responder. ``GET /api/config`` tells the page which.

It listens on loopback only (``--host`` to change), accepts only a loopback ``Host`` or ``--host``'s (DNS rebinding)
and no cross-origin write (a foreign ``Origin``, or a body that is not JSON): another web site cannot use it, nor the
key.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

STATIC = Path(__file__).resolve().parent / "static"
PAGES = {"/": "index.html", "/index.html": "index.html", "/app.js": "app.js", "/style.css": "style.css"}
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
SEGMENT = r"(?!\.\.?/)[^/?#]+"  # one path segment, not . or ..
PROXIED = [  # (method, path on the memory server): what a chat needs, nothing more (no listing, no user deletion)
    ("GET", re.compile(rf"/sessions/{SEGMENT}/memory")),
    ("POST", re.compile(rf"/sessions/{SEGMENT}/memory")),
    ("DELETE", re.compile(rf"/sessions/{SEGMENT}/memory")),
    ("POST", re.compile(rf"/sessions/{SEGMENT}/retrieval")),
    ("POST", re.compile(rf"/users/{SEGMENT}/retrieval")),
]
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_BODY_BYTES = 1_048_576
ROLES = {"system", "user", "assistant"}
DEFAULT_MODEL = "gpt-4o-mini"


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
            motorhead_url=(env.get("MOTORHEAD_URL") or "http://127.0.0.1:8080").rstrip("/"),
            motorhead_api_key=env.get("MOTORHEAD_API_KEY") or None,
            model=model,
        )


# --- what the proxy does ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"


def json_reply(status: int, value: Any) -> Reply:
    return Reply(status, json.dumps(value).encode())


def is_proxied(method: str, path: str) -> bool:
    return any(method == allowed and pattern.fullmatch(path) for allowed, pattern in PROXIED)


def forward(config: Config, method: str, target: str, body: bytes | None) -> Reply:
    """``target`` (path and query, still percent-encoded: ids are decoded once, by the memory server) on the memory
    server, with the key; its answer as it is, or a 502 when it cannot be reached."""
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if config.motorhead_api_key:
        headers["Authorization"] = f"Bearer {config.motorhead_api_key}"
    request = urllib.request.Request(config.motorhead_url + target, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Reply(response.status, response.read())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, exc.read())
    except (urllib.error.URLError, OSError):
        return json_reply(502, {"error": f"the memory server at {config.motorhead_url} cannot be reached"})


def chat_messages(payload: Any) -> list[dict[str, str]] | None:
    """The prompt in ``{"messages": [{"role", "content"}...]}``, or None when it is not that shape."""
    messages = payload.get("messages") if isinstance(payload, dict) else None
    if not isinstance(messages, list) or not messages:
        return None
    valid = all(isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str) for m in messages)
    return [{"role": m["role"], "content": m["content"]} for m in messages] if valid else None


class Model:
    """The configured OpenAI-compatible model (the ``openai`` package is imported only when there is one)."""

    def __init__(self, config: ModelConfig) -> None:
        from openai import OpenAI

        self.client = OpenAI(api_key=config.api_key, base_url=config.base_url, timeout=60)
        self.name = config.model

    def complete(self, messages: list[dict[str, str]]) -> Reply:
        from openai import OpenAIError

        try:
            completion = self.client.chat.completions.create(model=self.name, messages=messages)  # type: ignore[arg-type]
        except OpenAIError as exc:
            print(f"chat-web: the model failed: {exc}", file=sys.stderr)
            return json_reply(502, {"error": "the model failed (the server's log says why)"})
        return json_reply(200, {"content": completion.choices[0].message.content or "", "model": self.name})


# --- HTTP ------------------------------------------------------------------------------------------------------------


def handler_class(config: Config, model: Model | None, hosts: frozenset[str]) -> type[BaseHTTPRequestHandler]:
    """The handler, accepting the ``Host`` names in ``hosts``."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "chat-web"
        protocol_version = "HTTP/1.1"  # every answer has a Content-Length: keep-alive

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def log_message(self, format: str, *args: Any) -> None:
            print(f"chat-web: {self.address_string()} {format % args}", file=sys.stderr)

        def _serve(self, method: str) -> None:
            refused = self._refusal(method)
            if refused is not None:
                self._send(refused)
                return
            body = self._body() if method != "GET" else None
            if isinstance(body, Reply):
                self._send(body)
                return
            self._send(self._route(method, body))

        def _route(self, method: str, body: bytes | None) -> Reply:
            url = urlsplit(self.path)
            if method == "GET" and url.path in PAGES:
                return self._page(PAGES[url.path])
            if method == "GET" and url.path == "/favicon.ico":
                return Reply(204, b"")
            if method == "GET" and url.path == "/api/config":
                return json_reply(200, {"model": model.name if model else None})
            if method == "POST" and url.path == "/api/model":
                return self._model(body)
            upstream = url.path.removeprefix("/api/memory")
            if url.path.startswith("/api/memory/") and is_proxied(method, upstream):
                target = upstream + (f"?{url.query}" if url.query else "")
                return forward(config, method, target, body)
            return json_reply(404, {"error": "not found"})

        def _model(self, body: bytes | None) -> Reply:
            if model is None:
                return json_reply(503, {"error": "no model is configured (OPENAI_API_KEY): use the offline responder"})
            try:
                messages = chat_messages(json.loads(body or b""))
            except ValueError:
                messages = None
            if messages is None:
                return json_reply(422, {"error": 'the body must be {"messages": [{"role", "content"}, ...]}'})
            return model.complete(messages)

        def _refusal(self, method: str) -> Reply | None:
            """Only this machine's pages: a loopback Host, and for a write no foreign Origin and a JSON body."""
            host = self.headers.get("Host", "")
            if urlsplit(f"//{host}").hostname not in hosts:
                return json_reply(421, {"error": "unexpected Host"})
            if method == "GET":
                return None
            origin = self.headers.get("Origin")
            if origin is not None and urlsplit(origin).netloc != host:
                return json_reply(403, {"error": "cross-origin requests are refused"})
            content_type = self.headers.get("Content-Type", "")
            has_body = int(self.headers.get("Content-Length") or 0) > 0
            if has_body and content_type.split(";")[0].strip() != "application/json":
                return json_reply(415, {"error": "send JSON (Content-Type: application/json)"})
            return None

        def _body(self) -> bytes | Reply | None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self.close_connection = True
                return json_reply(413, {"error": "body too large"})
            return self.rfile.read(length) if length else None

        def _page(self, name: str) -> Reply:
            path = STATIC / name
            return Reply(200, path.read_bytes(), CONTENT_TYPES.get(path.suffix, "application/octet-stream"))

        def _send(self, reply: Reply) -> None:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in SECURITY_HEADERS.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)

    return Handler


def serve(config: Config, host: str, port: int) -> ThreadingHTTPServer:
    model = Model(config.model) if config.model is not None else None
    server = ThreadingHTTPServer((host, port), handler_class(config, model, LOOPBACK_HOSTS | {host}))
    server.daemon_threads = True
    return server


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve the chat page and proxy its calls to Motorhead and a model.")
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=8090)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    config = Config.from_env(os.environ)
    server = serve(config, args.host, args.port)
    responder = f"model {config.model.model}" if config.model else "the page's offline responder (no OPENAI_API_KEY)"
    print(
        f"chat-web: http://{args.host}:{server.server_address[1]} -> memory {config.motorhead_url}; {responder}",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
