"""Wires the production objects once per process: settings → Redis connector → store → memory service."""

from __future__ import annotations

from functools import lru_cache

from motorhead.keys import Keys
from motorhead.memory import MemoryService
from motorhead.redis_client import RedisConnector
from motorhead.redis_store import RedisMemoryStore
from motorhead.settings import get_settings


@lru_cache(maxsize=1)
def memory_service() -> MemoryService:
    settings = get_settings()
    store = RedisMemoryStore(RedisConnector(settings), Keys(settings.key_prefix))
    return MemoryService(store=store, settings=settings)
