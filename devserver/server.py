"""An HTTP server that turns each request into an API Gateway event and invokes the function's Lambda handler.

What it does itself for each request stays a small fraction of what the handler does (``make bench ARGS="--only
gateway"`` measures both, side by side): the headers are split without the email package, each response leaves in
one write, the access log is written by a thread of its own, a connection's thread serves the next connection, and a
function imported into this process runs on its thread's event loop rather than on a new one per request.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import email.utils
import functools
import http.client
import io
import json
import logging
import queue
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import swagger_ui_bundle  # type: ignore[import-untyped]
from fastapi.openapi.docs import get_swagger_ui_html

from devserver.execution import FunctionFailed, FunctionTimedOut, LocalFunction
from devserver.lambda_runtime import (
    FakeLambdaContext,
    LambdaHandler,
    http_event,
    load_function,
    response_body,
)
from devserver.template import Route

log = logging.getLogger("devserver")

SWAGGER_UI = Path(swagger_ui_bundle.swagger_ui_path)
DOCS_ASSETS = "/docs/assets"
ASSET_TYPES = {".js": "application/javascript", ".css": "text/css", ".png": "image/png"}


class Routable(Protocol):
    """A function the gateway can route to: its route, how to invoke it, and its OpenAPI document."""

    @property
    def route(self) -> Route: ...

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]: ...

    def openapi(self) -> dict[str, Any] | None: ...


_thread_state = threading.local()


def thread_event_loop() -> asyncio.AbstractEventLoop:
    """This thread's event loop, made current: one per gateway connection thread (``close_thread_event_loop`` when
    the connection ends), not one per request, as creating and closing a loop costs more than a small handler."""
    loop: asyncio.AbstractEventLoop | None = getattr(_thread_state, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _thread_state.loop = loop
    asyncio.set_event_loop(loop)  # again each time: a handler may have set another one
    return loop


def close_thread_event_loop() -> None:
    loop: asyncio.AbstractEventLoop | None = getattr(_thread_state, "loop", None)
    if loop is not None:
        _thread_state.loop = None
        asyncio.set_event_loop(None)
        loop.close()


@dataclass(frozen=True)
class Function:
    """A function imported into this process (the tests' way: fast, no timeout enforced)."""

    route: Route
    module: Any
    handler: LambdaHandler

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        thread_event_loop()  # Mangum runs each invocation on the thread's event loop
        return self.handler(event, FakeLambdaContext(function_name=self.route.function_id))

    def openapi(self) -> dict[str, Any] | None:
        openapi = getattr(getattr(self.module, "app", None), "openapi", None)  # the MCP function's app has none
        return None if openapi is None else dict(openapi())


@dataclass(frozen=True)
class IsolatedFunction:
    """A function run by the local Lambda runtime (``devserver.execution``): its own processes, environment and
    timeout (``make run``'s way)."""

    route: Route
    runtime: LocalFunction

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.runtime.invoke(event, request_id=event.get("requestContext", {}).get("requestId"))

    def openapi(self) -> dict[str, Any] | None:
        return self.runtime.openapi()


def load_functions(routes: Sequence[Route]) -> list[Function]:
    """Import every function once, as Lambda's cold start would."""
    loaded: dict[str, tuple[Any, LambdaHandler]] = {}
    functions = []
    for route in routes:
        if route.function_id not in loaded:
            loaded[route.function_id] = load_function(route)
        module, handler = loaded[route.function_id]
        functions.append(Function(route=route, module=module, handler=handler))
    return functions


def merged_openapi(functions: Sequence[Routable], *, title: str, version: str) -> dict[str, Any]:
    """One OpenAPI document for the whole API, merged from each function's own app."""
    spec: dict[str, Any] = {"openapi": "3.1.0", "info": {"title": title, "version": version}, "paths": {}}
    schemas: dict[str, Any] = {}
    seen: set[str] = set()
    for function in functions:
        if function.route.function_id in seen:
            continue
        seen.add(function.route.function_id)
        part = function.openapi() or {}
        for path, operations in part.get("paths", {}).items():
            spec["paths"].setdefault(path, {}).update(operations)
        schemas.update(part.get("components", {}).get("schemas", {}))
    spec["components"] = {"schemas": schemas, "securitySchemes": SECURITY_SCHEMES}
    spec["security"] = [{name: []} for name in SECURITY_SCHEMES]
    for operation in spec["paths"].get("/", {}).values():  # the health check is public
        operation["security"] = []
    return spec


# How clients may send their key (motorhead.entrypoints.http.credentials), for Swagger UI's "Authorize" button
SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "an API key, or a JWT (MOTORHEAD_AUTH=jwt)"},
    "basic": {"type": "http", "scheme": "basic", "description": "any user name, the API key as the password"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
    "metalApiKey": {"type": "apiKey", "in": "header", "name": "x-metal-api-key"},
}


class LocalGateway(ThreadingHTTPServer):
    """API Gateway's part, locally: routes each request by the template's routes to its function.

    Each connection has a thread for as long as it lasts (its requests one after another, as http.server serves
    them), taken from the gateway's idle threads when one is free: starting a thread (and waiting for it to start)
    cost more than the rest of a request that comes on a connection of its own. A thread idle for
    ``idle_thread_seconds`` ends."""

    daemon_threads = True
    request_queue_size = 512  # the listen backlog: the standard library's 5 resets connections under load
    idle_thread_seconds = 60.0

    def __init__(
        self,
        address: tuple[str, int],
        functions: Sequence[Routable],
        openapi: dict[str, Any] | Callable[[], dict[str, Any]],
    ) -> None:
        super().__init__(address, _RequestHandler)
        self.functions = list(functions)
        self._openapi = openapi
        self._openapi_lock = threading.Lock()
        self.access_log = AccessLog(log)
        self._handed_over: queue.SimpleQueue[tuple[socket.socket, Any] | None] = queue.SimpleQueue()
        self._idle_threads = 0  # idle threads, less the connections handed over that none has taken yet
        self._threads_lock = threading.Lock()

    def process_request(self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any) -> None:
        assert isinstance(request, socket.socket)  # a TCP server's
        with self._threads_lock:
            reuse = self._idle_threads > 0
            if reuse:
                self._idle_threads -= 1
        if reuse:
            self._handed_over.put((request, client_address))
        else:
            threading.Thread(target=self._serve_connections, args=(request, client_address), daemon=True).start()

    def _serve_connections(self, request: socket.socket, client_address: Any) -> None:
        connection: tuple[socket.socket, Any] | None = (request, client_address)
        while connection is not None:
            self.process_request_thread(*connection)  # ThreadingMixIn's: the requests, then close the connection
            connection = self._next_connection()

    def _next_connection(self) -> tuple[socket.socket, Any] | None:
        """The next connection handed over to this thread, now idle; None when it should end."""
        with self._threads_lock:
            self._idle_threads += 1
        while True:
            try:
                return self._handed_over.get(timeout=self.idle_thread_seconds)
            except queue.Empty:
                with self._threads_lock:
                    if self._idle_threads > 0:  # more idle threads than connections handed over: one can go
                        self._idle_threads -= 1
                        return None
                # as many idle threads as connections handed over: one is on its way to this thread

    def server_close(self) -> None:
        super().server_close()
        self.access_log.close()
        with self._threads_lock:
            idle, self._idle_threads = self._idle_threads, 0
        for _ in range(idle):
            self._handed_over.put(None)

    @property
    def openapi(self) -> dict[str, Any]:
        """The merged OpenAPI document, built on first use (it asks every function, which starts them)."""
        with self._openapi_lock:
            if callable(self._openapi):
                self._openapi = self._openapi()
            return self._openapi

    def resolve(self, method: str, raw_path: str) -> tuple[Routable | None, dict[str, str], list[str]]:
        """The function for this request and its path parameters (each decoded once), or the methods the path allows
        (for a 405). A path parameter that is not percent-encoded UTF-8 raises ``UnicodeDecodeError``."""
        allowed = []
        for function in self.functions:
            parameters = function.route.match(raw_path)
            if parameters is None:
                continue
            if function.route.method == method:
                return function, parameters, []
            allowed.append(function.route.method)
        return None, {}, sorted(allowed)


# -- HTTP -----------------------------------------------------------------------------------------------------------

# What http.client.parse_headers allows: lines of at most 64 KiB, at most 100 lines (the blank one included).
MAX_LINE = 65536
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway HTTP API's payload quota: a bigger body is refused unread
MAX_HEADER_LINES = 100
# A header line as the email package (http.client's parser) takes it: a name of printable ASCII but ":", then ":".
_FIELD_NAME = re.compile(r"[!-9;-~]+:")
# A "%" not followed by two hex digits: no percent-escape, so no way to tell what the client meant.
_MALFORMED_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Headers the gateway sets itself, never copied from a function's response.
_OWN_HEADERS = frozenset({"content-length", "connection", "transfer-encoding"})
# The request line in the access log, with control characters escaped (as http.server's log_message does).
_CONTROL_CHARACTERS = BaseHTTPRequestHandler._control_char_table  # type: ignore[attr-defined]


class AccessLog:
    """The gateway's access log: one INFO line per request on the ``devserver`` logger (client, request line, status,
    body bytes), with the request's time, written by a thread of its own a batch at a time (at most ``batch_seconds``
    late). Written from each connection's thread, as http.server writes it, the lines cost the gateway several times
    more (their handler's lock, passed between the threads, and a write each): a sixth of its own work per request."""

    batch_seconds = 0.05

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._pending: collections.deque[tuple[float, str, str, int | str, int | str]] = collections.deque()
        self._wake = threading.Event()
        self._closed = False
        self._writer = threading.Thread(target=self._write, name="access-log", daemon=True)
        self._writer.start()

    def add(self, client: str, requestline: str, status: int | str, size: int | str) -> None:
        if self._logger.isEnabledFor(logging.INFO):
            self._pending.append((time.time(), client, requestline, status, size))  # thread-safe, no lock
            if not self._wake.is_set():
                self._wake.set()

    def close(self) -> None:
        """Write what is pending, and stop the writer."""
        self._closed = True
        self._wake.set()
        self._writer.join()
        self._flush()

    def _write(self) -> None:
        while not self._closed:
            self._wake.wait()
            time.sleep(self.batch_seconds)  # let the batch gather
            self._wake.clear()  # before the batch is taken: a line added from now on sets it again
            self._flush()

    def _flush(self) -> None:
        while self._pending:
            created, client, requestline, status, size = self._pending.popleft()
            message = '%s "%s" %s %s'
            line = (client, requestline.translate(_CONTROL_CHARACTERS), status, size)
            record = self._logger.makeRecord(self._logger.name, logging.INFO, __file__, 0, message, line, None)
            record.created, record.msecs = created, (created - int(created)) * 1000
            self._logger.handle(record)


def read_headers(rfile: io.BufferedIOBase) -> http.client.HTTPMessage:
    """The request's header fields, read as ``http.client.parse_headers`` reads them (the same limits, errors and
    values: a value's leading blanks and its line end stripped, folded lines kept, a field with no name skipped, the
    lines from the first that is no field on ignored) but split here: the email package's parser, which
    ``parse_headers`` runs on them, was the largest part of the gateway's own work per request."""
    message = http.client.HTTPMessage()
    field: list[str] = []  # the lines of the field being read: its first, then any folded ones

    def keep() -> None:
        if field:
            name, _, value = field[0].partition(":")
            message.set_raw(name, (value.lstrip(" \t") + "".join(field[1:])).rstrip("\r\n"))
            field.clear()

    lines, fields_over = 0, False
    while True:
        raw = rfile.readline(MAX_LINE + 1)
        if len(raw) > MAX_LINE:
            raise http.client.LineTooLong("header line")
        lines += 1
        if lines > MAX_HEADER_LINES:
            raise http.client.HTTPException(f"got more than {MAX_HEADER_LINES} headers")
        if raw in (b"\r\n", b"\n", b""):
            keep()
            return message
        if fields_over:
            continue
        line = raw.decode("iso-8859-1")
        if line[0] in " \t":
            if field:  # obsolete line folding: the field goes on
                field.append(line)
        elif _FIELD_NAME.match(line):
            keep()
            field.append(line)
        elif not line.startswith((":", "From ")):  # those the email package skips; the rest ends the fields
            keep()
            fields_over = True


def combined_headers(fields: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The header fields as API Gateway hands them to a function (payload format 2.0): names in lower case, and the
    values of a repeated field joined with commas. So two ``Authorization`` (or ``x-api-key``) headers reach the
    function as one value that no credential parses, a 401 as on AWS, never "the last one wins"."""
    combined: dict[str, str] = {}
    for name, value in fields:
        key = name.lower()
        combined[key] = f"{combined[key]},{value}" if key in combined else value
    return combined


@functools.lru_cache(maxsize=2)
def _http_date(second: int) -> str:
    return email.utils.formatdate(second, usegmt=True)


@functools.lru_cache(maxsize=64)
def _status_line(protocol: str, status: int) -> str:
    reason = BaseHTTPRequestHandler.responses[status][0] if status in BaseHTTPRequestHandler.responses else ""
    return f"{protocol} {status} {reason}\r\n"


class _RequestHandler(BaseHTTPRequestHandler):
    """One connection (one thread, as many requests as the client keeps it for): http.server's, with what it does for
    every request made cheap (see ``read_headers``, ``_reply`` and ``log_request``), so that the gateway costs a
    fraction of the handler it calls (``make bench ARGS="--only gateway"``)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # a response leaves at once, not after the client's delayed ACK of the last one
    server: LocalGateway
    raw_requestline: bytes  # set by http.server's handle_one_request

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch()

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch()

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch()

    def do_OPTIONS(self) -> None:  # noqa: N802
        self._dispatch()

    def parse_request(self) -> bool:
        """http.server's ``parse_request`` (the request line, the version, ``Connection``, ``Expect``), with the
        headers read by ``read_headers``."""
        self.command = ""  # in case of an error on the first line
        self.request_version = version = self.default_request_version
        self.close_connection = True
        self.requestline = requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = requestline.split()
        if not words:
            return False
        if len(words) >= 3:  # enough to know the protocol's version
            version = words[-1]
            numbers = version[5:].split(".") if version.startswith("HTTP/") else []
            if len(numbers) != 2 or not all(n.isdecimal() and len(n) <= 10 for n in numbers):
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request version ({version!r})")
                return False
            major, minor = int(numbers[0]), int(numbers[1])
            if (major, minor) >= (1, 1):
                self.close_connection = False
            if major >= 2:
                self.send_error(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, f"Invalid HTTP version ({version[5:]})")
                return False
            self.request_version = version
        if not 2 <= len(words) <= 3:
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request syntax ({requestline!r})")
            return False
        self.command, self.path = words[0], words[1]
        if len(words) == 2:
            self.close_connection = True
            if self.command != "GET":
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad HTTP/0.9 request type ({self.command!r})")
                return False
        if self.path.startswith("//"):
            self.path = "/" + self.path.lstrip("/")  # gh-87389: no open redirect through a //host path
        try:
            self.headers = read_headers(self.rfile)
        except http.client.LineTooLong as error:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long", str(error))
            return False
        except http.client.HTTPException as error:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers", str(error))
            return False
        connection = self.headers.get("Connection", "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        expect = self.headers.get("Expect", "").lower()
        if expect == "100-continue" and self.request_version >= "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        self.route_key = "-"  # what the access log names, never the path (ids in it): as API Gateway logs routeKey
        if url.path in ("/openapi.json", "/docs") or url.path.startswith(DOCS_ASSETS + "/"):
            self.route_key = f"{self.command} {url.path}"
        body = self._body()
        if body is None:
            return
        # raw bytes where percent-encoding belongs, or a "%" that starts no escape (100%, %zz, a%2): never guess which
        # session, user or namespace they name (the function refuses them too: motorhead's EscapeMiddleware)
        if not url.path.isascii() or _MALFORMED_ESCAPE.search(url.path):
            self._reply(400, {"content-type": "application/json"}, {"error": "the path is not percent-encoded UTF-8"})
            return
        if _MALFORMED_ESCAPE.search(url.query):
            message = {"error": "the query string is not percent-encoded UTF-8"}
            self._reply(400, {"content-type": "application/json"}, message)
            return
        if self.command == "GET" and url.path == "/openapi.json":
            self._reply(200, {"content-type": "application/json"}, json.dumps(self.server.openapi).encode())
            return
        if self.command == "GET" and url.path == "/docs":
            page = get_swagger_ui_html(
                openapi_url="/openapi.json",
                title="Motorhead Serverless",
                swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
            )
            self._reply(200, {"content-type": "text/html; charset=utf-8"}, bytes(page.body))
            return
        if self.command == "GET" and url.path.startswith(DOCS_ASSETS + "/"):
            self._reply_asset(url.path[len(DOCS_ASSETS) + 1 :])
            return
        try:
            function, path_parameters, allowed = self.server.resolve(self.command, url.path)
        except UnicodeDecodeError:
            self._reply(400, {"content-type": "application/json"}, {"error": "the path is not percent-encoded UTF-8"})
            return
        if function is not None:
            self.route_key = function.route.route_key
        if function is None:
            if allowed:
                message = {"error": f"method {self.command} not allowed; use {', '.join(allowed)}"}
                self._reply(405, {"content-type": "application/json", "allow": ", ".join(allowed)}, message)
            else:
                self._reply(404, {"content-type": "application/json"}, {"error": "not found"})
            return
        event = http_event(
            function.route,
            method=self.command,
            raw_path=url.path,
            raw_query=url.query,
            headers=combined_headers(self.headers.raw_items()),
            body=body,
            source_ip=self.client_address[0],
            path_parameters=path_parameters,
        )
        try:
            response = function.invoke(event)
        except FunctionTimedOut:
            self._reply(504, {"content-type": "application/json"}, {"error": "the function timed out"})
            return
        except FunctionFailed:
            self._reply(502, {"content-type": "application/json"}, {"error": "the function failed"})
            return
        headers = {name.lower(): str(value) for name, value in (response.get("headers") or {}).items()}
        self._reply(int(response["statusCode"]), headers, response_body(response))

    def _body(self) -> bytes | None:
        """The request's body, framed by one valid Content-Length; None once an error is answered (the connection
        then closes: what follows on it cannot be told apart from a next request). No chunked bodies: a request
        smuggled inside one must never reach a function as a request of its own."""
        lengths = self.headers.get_all("Content-Length") or []
        refusal: tuple[int, str] | None = None
        if "Transfer-Encoding" in self.headers:
            refusal = (411, "chunked request bodies are not supported: send Content-Length")
        elif len(set(lengths)) > 1 or not all(value.strip().isdecimal() for value in lengths):
            refusal = (400, "invalid Content-Length")
        elif lengths and int(lengths[0]) > MAX_PAYLOAD_BYTES:
            refusal = (413, f"request body is over API Gateway's limit of {MAX_PAYLOAD_BYTES} bytes")
        if refusal is not None:
            self.close_connection = True
            self._reply(refusal[0], {"content-type": "application/json"}, {"error": refusal[1]})
            return None
        length = int(lengths[0]) if lengths else 0
        return self.rfile.read(length) if length > 0 else b""

    def _reply_asset(self, name: str) -> None:
        """One file of Swagger UI, from the PyPI package ``swagger-ui-bundle-v2``: /docs needs no other host."""
        path = (SWAGGER_UI / name).resolve()
        if path.parent != SWAGGER_UI.resolve() or not path.is_file() or path.suffix not in ASSET_TYPES:
            self._reply(404, {"content-type": "application/json"}, {"error": "not found"})
            return
        self._reply(200, {"content-type": ASSET_TYPES[path.suffix]}, path.read_bytes())

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's errors, as the API's: JSON, and 405 with ``Allow`` for a method no route has (TRACE,
        CONNECT, anything unknown), where the standard library answers 501 with an HTML page."""
        if code == HTTPStatus.NOT_IMPLEMENTED and self.path:
            try:
                _, _, allowed = self.server.resolve(self.command, urlsplit(self.path).path)
            except UnicodeDecodeError:
                allowed = []
            allow = ", ".join(allowed) or "GET"
            self.close_connection = True
            self._reply(
                405, {"content-type": "application/json", "allow": allow}, {"error": f"method not allowed; use {allow}"}
            )
            return
        self.close_connection = True
        body = {"error": message or HTTPStatus(code).phrase}
        with contextlib.suppress(OSError):  # the client may be gone already
            self._reply(code, {"content-type": "application/json"}, body)

    def _reply(self, status: int, headers: dict[str, str], payload: bytes | dict[str, Any]) -> None:
        """The whole response in one write: one system call, and nothing left for the client's delayed ACK to hold."""
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.log_request(status, len(data))
        head_only = self.command == "HEAD"
        if self.request_version == "HTTP/0.9":  # no status line and no headers, as http.server
            self.wfile.write(b"" if head_only else data)
            return
        lines = [
            _status_line(self.protocol_version, status),
            f"Server: {self.version_string()}\r\nDate: {self.date_time_string()}\r\n",
        ]
        lines += [f"{name}: {value}\r\n" for name, value in headers.items() if name not in _OWN_HEADERS]
        lines.append(f"content-length: {0 if head_only else len(data)}\r\n\r\n")
        head = "".join(lines).encode("latin-1", "strict")
        self.wfile.write(head if head_only else head + data)

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header's value, formatted once a second rather than for every response."""
        return _http_date(int(time.time() if timestamp is None else timestamp))

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """The access log's line for this request (see ``AccessLog``), in place of http.server's (formatted twice)."""
        line = f"{getattr(self, 'route_key', '-')} {self.request_version}"  # the route, never the path or query
        self.server.access_log.add(self.client_address[0], line, code, size)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        log.info("%s %s", self.address_string(), format % args)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            close_thread_event_loop()  # the connection's thread ends with it
