"""Test helpers: sample events, environments and functions loaded as Lambda's init phase would."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from devserver.lambda_runtime import FakeLambdaContext
from devserver.server import Function, load_functions
from devserver.template import load_routes
from motorhead.service import memory_service
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
    get_settings.cache_clear()
    memory_service.cache_clear()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()
        memory_service.cache_clear()


class Api:
    """The five functions, imported fresh (as at a cold start) under one environment."""

    def __init__(self, functions: list[Function]) -> None:
        self.by_id = {f.route.function_id: f for f in functions}
        self.functions = functions

    def invoke(self, function_id: str, event: dict[str, Any]) -> dict[str, Any]:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            return self.by_id[function_id].handler(event, FakeLambdaContext(function_name=function_id))
        finally:
            asyncio.set_event_loop(None)
            loop.close()


@contextmanager
def cold_start(**env: str | None) -> Iterator[Api]:
    """Load every function of template.yaml with this environment, as Lambda's init phase would."""
    with environment(**env):
        yield Api(load_functions(load_routes()))
