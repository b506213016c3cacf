"""An HTTP server that turns each request into an API Gateway event and invokes the function's Lambda handler."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from fastapi.openapi.docs import get_swagger_ui_html

from devserver.lambda_runtime import (
    FakeLambdaContext,
    LambdaHandler,
    http_event,
    load_function,
    response_body,
)
from devserver.template import Route

log = logging.getLogger("devserver")


@dataclass(frozen=True)
class Function:
    route: Route
    module: Any
    handler: LambdaHandler


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


def merged_openapi(functions: Sequence[Function], *, title: str, version: str) -> dict[str, Any]:
    """One OpenAPI document for the whole API, merged from each function's own app."""
    spec: dict[str, Any] = {"openapi": "3.1.0", "info": {"title": title, "version": version}, "paths": {}}
    schemas: dict[str, Any] = {}
    seen: set[str] = set()
    for function in functions:
        if function.route.function_id in seen:
            continue
        seen.add(function.route.function_id)
        part = function.module.app.openapi()
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
    daemon_threads = True

    def __init__(self, address: tuple[str, int], functions: Sequence[Function], openapi: dict[str, Any]) -> None:
        super().__init__(address, _RequestHandler)
        self.functions = list(functions)
        self.openapi = openapi

    def resolve(self, method: str, raw_path: str) -> tuple[Function | None, list[str]]:
        """The function for this request, or the methods the path allows (for a 405)."""
        allowed = []
        for function in self.functions:
            if function.route.match(raw_path) is None:
                continue
            if function.route.method == method:
                return function, []
            allowed.append(function.route.method)
        return None, sorted(allowed)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LocalGateway

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

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        if self.command == "GET" and url.path == "/openapi.json":
            self._reply(200, {"content-type": "application/json"}, json.dumps(self.server.openapi).encode())
            return
        if self.command == "GET" and url.path == "/docs":
            page = get_swagger_ui_html(openapi_url="/openapi.json", title="Motorhead Serverless")
            self._reply(200, {"content-type": "text/html; charset=utf-8"}, bytes(page.body))
            return
        try:
            function, allowed = self.server.resolve(self.command, url.path)
        except UnicodeDecodeError:
            self._reply(400, {"content-type": "application/json"}, {"error": "the path is not percent-encoded UTF-8"})
            return
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
            headers=dict(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
        )
        loop = asyncio.new_event_loop()  # Mangum runs each invocation on the thread's event loop
        asyncio.set_event_loop(loop)
        try:
            response = function.handler(event, FakeLambdaContext(function_name=function.route.function_id))
        finally:
            asyncio.set_event_loop(None)
            loop.close()
        headers = {name.lower(): str(value) for name, value in (response.get("headers") or {}).items()}
        self._reply(int(response["statusCode"]), headers, response_body(response))

    def _reply(self, status: int, headers: dict[str, str], payload: bytes | dict[str, Any]) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        for name, value in headers.items():
            if name not in {"content-length", "connection", "transfer-encoding"}:
                self.send_header(name, value)
        self.send_header("content-length", str(0 if self.command == "HEAD" else len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        log.info("%s %s", self.address_string(), format % args)
