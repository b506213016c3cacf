"""The `exact` vector backend: any Redis (standalone, cluster, no modules), exact cosine search with numpy.

A session's vectors are one append-only string of float32 rows (``P:{T}:vectors``) beside a list of the messages in
the same order (``P:{T}:docs``), written together by one Lua script on the session's slot. A search reads only what
it has not seen before (``GETRANGE``/``LRANGE`` from where its cache of that session ends) and scores every row with
one matrix product: exact, no approximation, and fast at 10,000 messages per session.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from motorhead.errors import ConfigError
from motorhead.keys import Keys
from motorhead.ltm_ports import Scored, Vectors
from motorhead.ports import StoredMessage
from motorhead.redis_client import RedisConnector, mapped_errors
from motorhead.vector_index import record_embedder

# KEYS: meta, vectors, docs, indexed. ARGV: 1 generation, then (id, message JSON, float32 row) per message.
_ADD = """
if redis.call('HGET', KEYS[1], 'gen') ~= ARGV[1] then
  return 0
end
local added = 0
for i = 2, #ARGV, 3 do
  local id = tonumber(ARGV[i])
  if redis.call('GETBIT', KEYS[4], id) == 0 then
    redis.call('APPEND', KEYS[2], ARGV[i + 2])
    redis.call('RPUSH', KEYS[3], ARGV[i + 1])
    redis.call('SETBIT', KEYS[4], id, 1)
    added = added + 1
  end
end
return added
"""

# KEYS: meta, vectors, docs. ARGV: byte offset, row offset. One consistent read of the rows a cache has not seen.
# The generation comes back marked when the list is shorter than the cache (a failover lost the last writes), so the
# cache starts over then too.
_READ_FROM = """
local generation = redis.call('HGET', KEYS[1], 'gen') or ''
if redis.call('LLEN', KEYS[3]) < tonumber(ARGV[2]) then
  generation = generation .. '/shorter'
end
return {generation, redis.call('GETRANGE', KEYS[2], ARGV[1], -1), redis.call('LRANGE', KEYS[3], ARGV[2], -1)}
"""

MAX_CACHED_SESSIONS = 16


@dataclass
class _Rows:
    """What this process has read of one session: its generation, vectors and messages, row by row."""

    generation: str = ""
    raw: bytearray = field(default_factory=bytearray)
    messages: list[StoredMessage] = field(default_factory=list)
    row_of: dict[int, int] = field(default_factory=dict)
    matrix: Vectors | None = None


class ExactVectorIndex:
    """Implements ``VectorIndex``."""

    name = "exact"

    def __init__(self, connector: RedisConnector, keys: Keys, *, dimensions: int) -> None:
        self._connector = connector
        self._keys = keys
        self._dimensions = dimensions
        self._row_bytes = dimensions * 4
        self._cache: OrderedDict[str, _Rows] = OrderedDict()
        self._lock = threading.Lock()

    def ensure_ready(self, *, embedder: str, dimensions: int) -> None:
        if dimensions != self._dimensions:
            raise ConfigError(f"embedder gives {dimensions} dims, the index was built for {self._dimensions}")
        record_embedder(self._connector, self._keys, embedder=embedder, dimensions=dimensions)

    def add(self, session_id: str, generation: str, messages: Sequence[StoredMessage], vectors: Vectors) -> int:
        keys = self._keys.session(session_id)
        rows = np.ascontiguousarray(vectors, dtype=np.float32)
        args: list[Any] = [generation]
        for message, row in zip(messages, rows, strict=True):
            body = {
                "id": message.id,
                "role": message.role,
                "content": message.content,
                "created_at": message.created_at,
            }
            args += [message.id, json.dumps(body), row.tobytes()]
        return int(self._connector.run_script(_ADD, (keys.meta, keys.vectors, keys.docs, keys.indexed), args))

    def _rows(self, session_id: str) -> _Rows:
        keys = self._keys.session(session_id)
        with self._lock:
            cached = self._cache.pop(session_id, None) or _Rows()
        with mapped_errors():
            generation, raw, docs = self._connector.run_script(
                _READ_FROM, (keys.meta, keys.vectors, keys.docs), [len(cached.raw), len(cached.messages)], binary=True
            )
            if generation.decode() != cached.generation:  # first read, re-created, or shorter: start over
                if cached.messages:  # what was read starts at our offset: read it all
                    generation, raw, docs = self._connector.run_script(
                        _READ_FROM, (keys.meta, keys.vectors, keys.docs), [0, 0], binary=True
                    )
                cached = _Rows(generation=generation.decode())
        if docs:
            for doc in docs:
                data = json.loads(doc)
                cached.row_of[int(data["id"])] = len(cached.messages)
                cached.messages.append(
                    StoredMessage(
                        id=int(data["id"]),
                        role=data["role"],
                        content=data["content"],
                        created_at=int(data["created_at"]),
                    )
                )
            cached.raw += raw
            cached.matrix = np.frombuffer(bytes(cached.raw), dtype=np.float32).reshape(-1, self._dimensions)
        with self._lock:
            self._cache[session_id] = cached
            while len(self._cache) > MAX_CACHED_SESSIONS:
                self._cache.popitem(last=False)
        return cached

    def vector_search(self, session_id: str, query: Vectors, k: int) -> list[Scored]:
        rows = self._rows(session_id)
        if rows.matrix is None or not rows.messages:
            return []
        similarity = rows.matrix @ np.asarray(query, dtype=np.float32)
        count = min(k, len(similarity))
        top = np.argpartition(-similarity, count - 1)[:count]
        top = top[np.argsort(-similarity[top], kind="stable")]
        return [Scored(message=rows.messages[i], distance=float(1.0 - similarity[i])) for i in top]

    def distances(self, session_id: str, ids: Sequence[int], query: Vectors) -> dict[int, float]:
        rows = self._rows(session_id)
        if rows.matrix is None:
            return {}
        wanted = [(i, rows.row_of[i]) for i in ids if i in rows.row_of]
        if not wanted:
            return {}
        similarity = rows.matrix[[row for _, row in wanted]] @ np.asarray(query, dtype=np.float32)
        return {message_id: float(1.0 - s) for (message_id, _), s in zip(wanted, similarity, strict=True)}
