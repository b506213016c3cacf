"""Test helpers: sample events, environments and functions loaded as Lambda's init phase would."""

from __future__ import annotations

import asyncio
import copy
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from devserver.lambda_runtime import FakeLambdaContext, LambdaHandler, load_function
from devserver.server import Function, load_functions
from devserver.template import load_function_specs, load_queue_consumers, load_routes
from motorhead.composition.access import access_control
from motorhead.composition.long_term import indexer_service, retrieval_service
from motorhead.composition.memory import memory_service, shared_connector
from motorhead.composition.summarization import summarizer_service
from motorhead.core.values import NO_TENANT, SessionRef
from motorhead.settings import get_settings

REPO = Path(__file__).resolve().parent.parent
EVENTS = REPO / "events"


def load_event(name: str) -> dict[str, Any]:
    """One of the sample events in events/, by file name without .json."""
    data: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))
    return data


def body(response: dict[str, Any]) -> Any:
    """The decoded JSON body of a handler's response."""
    return json.loads(response["body"])


@contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """Set (or unset, with None) environment variables for the block, and forget cached settings around it."""
    saved = {name: os.environ.get(name) for name in values}
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _forget_singletons()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _forget_singletons()


def _forget_singletons() -> None:
    get_settings.cache_clear()
    shared_connector.cache_clear()
    access_control.cache_clear()
    memory_service.cache_clear()
    summarizer_service.cache_clear()
    retrieval_service.cache_clear()
    indexer_service.cache_clear()


class Api:
    """The template's functions, imported fresh (as at a cold start) under one environment: the HTTP ones at once,
    the queue consumers (the summarizer) on first use."""

    def __init__(self, functions: list[Function]) -> None:
        self.by_id = {f.route.function_id: f for f in functions}
        self.functions = functions
        self._consumers: dict[str, LambdaHandler] = {}

    def consumer(self, function_id: str) -> LambdaHandler:
        if function_id not in self._consumers:
            spec = next(c for c in load_queue_consumers() if c.function_id == function_id)
            self._consumers[function_id] = load_function(spec)[1]
        return self._consumers[function_id]

    def admin(self, event: dict[str, Any]) -> dict[str, Any]:
        """Invoke the admin function (API keys), as ``aws lambda invoke`` or ``make key`` does."""
        if "AdminFunction" not in self._consumers:
            self._consumers["AdminFunction"] = load_function(load_function_specs()["AdminFunction"])[1]
        return self._consumers["AdminFunction"](event, FakeLambdaContext(function_name="AdminFunction"))

    def invoke(self, function_id: str, event: dict[str, Any]) -> dict[str, Any]:
        handler = self.by_id[function_id].handler if function_id in self.by_id else self.consumer(function_id)
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            return handler(event, FakeLambdaContext(function_name=function_id))
        finally:
            asyncio.set_event_loop(None)
            loop.close()


@contextmanager
def cold_start(**env: str | None) -> Iterator[Api]:
    """Load every function of template.yaml with this environment, as Lambda's init phase would (with
    ``MOTORHEAD_AUTH=none`` unless the environment says otherwise: the tests of access control set it)."""
    with environment(**{"MOTORHEAD_AUTH": "none", **env}):
        yield Api(load_functions(load_routes()))


def post_event(session_id: str, payload: Any, *, query: str = "") -> dict[str, Any]:
    """The sample POST event, re-aimed at another session and body."""
    event = copy.deepcopy(load_event("post_memory-ok"))
    event["pathParameters"] = {"session_id": session_id}
    event["requestContext"]["http"]["path"] = f"/sessions/{session_id}/memory"
    event["rawPath"] = event["requestContext"]["http"]["path"]
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    event["body"] = raw
    event["headers"]["content-length"] = str(len(raw.encode()))
    event["rawQueryString"] = query
    if query:
        event["queryStringParameters"] = dict(part.split("=", 1) for part in query.split("&"))
    return event


def get_event(session_id: str) -> dict[str, Any]:
    event = copy.deepcopy(load_event("get_memory-ok"))
    event["pathParameters"] = {"session_id": session_id}
    event["requestContext"]["http"]["path"] = f"/sessions/{session_id}/memory"
    event["rawPath"] = event["requestContext"]["http"]["path"]
    return event


def messages(n: int, start: int = 0) -> list[dict[str, str]]:
    return [{"role": "Human" if i % 2 == 0 else "AI", "content": f"message {i}"} for i in range(start, start + n)]


def with_wrong_secret(key: str, count: int = 1) -> str:
    """``key`` with its last ``count`` characters each replaced by a different one: always a wrong key of the same
    shape (a fixed replacement such as ``key[:-1] + "A"`` is the key itself whenever it already ends in ``A``)."""
    head, tail = key[: len(key) - count], key[len(key) - count :]
    return head + "".join("B" if c == "A" else "A" for c in tail)


def ref(session_id: str, tenant: str = NO_TENANT) -> SessionRef:
    """The session ``session_id`` of ``tenant`` (no tenant by default, as with ``MOTORHEAD_AUTH=none``)."""
    return SessionRef(tenant=tenant, id=session_id)
