"""One incremental, per-process cache of a session's indexed messages, shared by the exact vector index (messages and
their vectors) and the keyword index (messages and their postings).

Both backends append every indexed message to the session's ``docs`` list (the `exact` one also appends its vector
to ``vectors``), in one atomic script, and never rewrite what is there. So a reader keeps what it has read, and asks
only for the rows after it: one consistent read of the generation and the new rows. When the generation differs from
the cached one (first read, session deleted and re-created, or a list shorter than the cache after a failover lost
its last writes), the cache of that session starts over.

Memory is bounded: the cache keeps the ``max_sessions`` most recently used sessions, and drops the least recently
used ones while it holds more than ``max_rows`` rows in all (the session just read is always kept). At 384 dims a
row of the exact index costs about 1.8 kB (its vector and message), so the default bound is about 360 MB per cache
at most, and a session bigger than the bound is read whole for each search.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from motorhead.adapters.redis_db.codec import decode
from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.keys import Keys, SessionKeys
from motorhead.core.values import SessionRef, StoredMessage

# KEYS: meta, docs[, vectors]. ARGV: 1 row offset, 2 bytes per vector row, 3 most rows to return. The generation, up
# to that many messages after the offset and, with a third key, their vectors; the generation comes back marked when
# the list is shorter than the offset, so the cache starts over then too.
_READ_FROM = """
local generation = redis.call('HGET', KEYS[1], 'gen') or ''
local offset = tonumber(ARGV[1])
if redis.call('LLEN', KEYS[2]) < offset then
  generation = generation .. '/shorter'
end
local docs = redis.call('LRANGE', KEYS[2], offset, offset + tonumber(ARGV[3]) - 1)
if #KEYS < 3 or #docs == 0 then
  return {generation, docs, ''}
end
local width = tonumber(ARGV[2])
return {generation, docs, redis.call('GETRANGE', KEYS[3], offset * width, (offset + #docs) * width - 1)}
"""

MAX_CACHED_SESSIONS = 16
MAX_CACHED_ROWS = 200_000
PAGE_ROWS = 2_000  # rows per read: a big session is read in pages, never in one reply that could outlast the timeout

T = TypeVar("T")
Extend = Callable[[T, list[StoredMessage], bytes], None]


@dataclass
class _Entry(Generic[T]):
    generation: str
    rows: int
    value: T


class SessionRowCache(Generic[T]):
    """``get(session)`` is the session's rows as ``extend`` folded them into ``new()``, read incrementally.

    ``vector_bytes`` > 0 also reads the session's vectors (that many bytes per row) and hands them to ``extend``
    beside the messages."""

    def __init__(
        self,
        connector: RedisConnector,
        keys: Keys,
        *,
        new: Callable[[], T],
        extend: Extend[T],
        vector_bytes: int = 0,
        max_sessions: int = MAX_CACHED_SESSIONS,
        max_rows: int = MAX_CACHED_ROWS,
        page_rows: int = PAGE_ROWS,
    ) -> None:
        self._connector = connector
        self._keys = keys
        self._new = new
        self._extend = extend
        self._vector_bytes = vector_bytes
        self._max_sessions = max_sessions
        self._max_rows = max_rows
        self._page_rows = page_rows
        self._entries: OrderedDict[str, _Entry[T]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: SessionRef) -> T:
        keys = self._keys.session(session)
        with self._lock:
            cached = self._entries.pop(keys.tag, None)
        try:
            while True:  # a page at a time, until a page comes back short
                generation, docs, raw = self._read(keys, cached.rows if cached else 0)
                if cached is None or generation != cached.generation:
                    if cached is not None and cached.rows:  # what was read starts at the old offset: read it all
                        generation, docs, raw = self._read(keys, 0)
                    cached = _Entry(generation=generation, rows=0, value=self._new())
                if docs:
                    self._extend(cached.value, [decode(doc) for doc in docs], raw)
                    cached.rows += len(docs)
                if len(docs) < self._page_rows:
                    return cached.value
        finally:  # kept even when a page fails: what was read is consistent (rows are counted page by page)
            if cached is not None:
                self._keep(keys.tag, cached)

    def _keep(self, tag: str, entry: _Entry[T]) -> None:
        with self._lock:
            self._entries[tag] = entry
            rows = sum(e.rows for e in self._entries.values())
            while len(self._entries) > 1 and (len(self._entries) > self._max_sessions or rows > self._max_rows):
                rows -= self._entries.popitem(last=False)[1].rows

    def _read(self, keys: SessionKeys, offset: int) -> tuple[str, list[bytes], bytes]:
        script_keys = [keys.meta, keys.docs] + ([keys.vectors] if self._vector_bytes else [])
        generation, docs, raw = self._connector.run_script(
            _READ_FROM, script_keys, [offset, self._vector_bytes, self._page_rows], binary=True
        )
        return generation.decode(), list(docs), bytes(raw)

    def cached_rows(self) -> int:
        """How many rows the cache holds in all."""
        with self._lock:
            return sum(entry.rows for entry in self._entries.values())
