"""Loads function handlers as Lambda does and builds API Gateway HTTP API (payload 2.0) events for them."""

from __future__ import annotations

import base64
import functools
import importlib.util
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote

from devserver.template import Route

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class FakeLambdaContext:
    """The attributes of the Lambda context object that handlers and powertools read."""

    function_name: str = "local"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:local:000000000000:function:local"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"

    deadline: float = field(default_factory=lambda: time.monotonic() + 900.0)  # Lambda's longest timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def load_module(code_uri: Path, module_name: str, alias: str) -> Any:
    """Import ``<code_uri>/<module_name>.py`` under a unique ``alias`` (every function's module is ``app``)."""
    spec = importlib.util.spec_from_file_location(alias, code_uri / f"{module_name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {code_uri / module_name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FunctionSpec(Protocol):
    """What the template says of a function: enough to load it as Lambda does."""

    @property
    def function_id(self) -> str: ...

    @property
    def code_uri(self) -> Path: ...

    @property
    def handler(self) -> str: ...


def load_function(route: FunctionSpec) -> tuple[Any, LambdaHandler]:
    """The function's module and its handler, from the template's ``CodeUri`` and ``Handler`` (``app.handler``)."""
    module_name, _, attribute = route.handler.rpartition(".")
    module = load_module(route.code_uri, module_name, f"fn_{route.function_id}")
    handler: LambdaHandler = getattr(module, attribute)
    return module, handler


def http_event(
    route: Route,
    *,
    method: str,
    raw_path: str,
    raw_query: str = "",
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    source_ip: str = "127.0.0.1",
    path_parameters: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The event API Gateway would send for this request (payload format 2.0): the path decoded once (``rawPath``
    and ``requestContext.http.path`` both, as API Gateway HTTP APIs deliver them), and the route's path parameters,
    each decoded once (``path_parameters``, when the caller has matched ``raw_path`` already, as the gateway has). A
    path that does not decode to UTF-8 raises ``UnicodeDecodeError``."""
    lowered = {name.lower(): value for name, value in (headers or {}).items()}
    if path_parameters is None:
        path_parameters = route.match(raw_path) or {}
    decoded_path = unquote(raw_path, errors="strict")
    query: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    now = time.time()
    route_key = route.route_key
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": decoded_path,
        "rawQueryString": raw_query,
        "headers": lowered,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "local",
            "domainName": lowered.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": decoded_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": _request_time(int(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if body:
        try:
            event["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


@functools.lru_cache(maxsize=2)
def _request_time(second: int) -> str:
    """``requestContext.time`` (``10/Jun/2024:10:00:09 +0000``), formatted once a second rather than per request."""
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(second))


def response_body(response: Mapping[str, Any]) -> bytes:
    """The raw body of a handler's response."""
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        return base64.b64decode(body)
    return str(body).encode("utf-8")


def sqs_event(messages: list[dict[str, Any]], *, queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping sends, from messages as ``ReceiveMessage`` returns them."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": dict(message.get("Attributes", {})),
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "binaryValue": value.get("BinaryValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value["DataType"],
                    }
                    for name, value in message.get("MessageAttributes", {}).items()
                },
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }
