"""The `exact` vector backend: any Redis (standalone, cluster, no modules), exact cosine search with numpy.

A session's vectors are one append-only string of float32 rows (``S:vectors``) beside a list of the messages in the
same order (``S:docs``), written together by one Lua script on the session's slot. A search reads only what it has
not seen before (``SessionRowCache``) and scores every row with one matrix product: exact, no approximation, and fast
at 10,000 messages per session.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from motorhead.adapters.redis_db.codec import encode
from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.index_record import record_embedder
from motorhead.adapters.redis_db.keys import Keys
from motorhead.adapters.redis_db.session_cache import SessionRowCache
from motorhead.core.values import SessionRef, StoredMessage, UserRef
from motorhead.errors import ConfigError
from motorhead.ltm.bm25 import SessionTexts
from motorhead.ltm.ports import KeywordIndex, Lookup, Scored, UserLookup, Vectors, lookup_apart
from motorhead.ltm.recipe import DenseText
from motorhead.ltm.vectors import top_k

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


EINSUM_ROWS = 32_768  # from this many rows, einsum streams the matrix faster than BLAS on one thread
SPLIT_ROWS = 65_536  # from this many rows, a second thread scans half of them


@lru_cache(maxsize=1)
def _scan_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="cosine")


def cosine(matrix: Vectors, query: Vectors) -> Vectors:
    """Each row's dot product with the (unit) query. Over a big matrix, memory bandwidth is the limit: numpy's einsum
    reads it once at full speed where OpenBLAS's single-thread gemv can take twice as long, and over a very big one
    two threads read it faster than one (numpy releases the GIL); on a small one, BLAS is faster."""
    if len(matrix) < EINSUM_ROWS:
        return matrix @ query
    out = np.empty(len(matrix), dtype=np.float32)
    if len(matrix) < SPLIT_ROWS:
        return np.einsum("ij,j->i", matrix, query, out=out)
    half = len(matrix) // 2
    second = _scan_pool().submit(np.einsum, "ij,j->i", matrix[half:], query, out=out[half:])
    try:
        np.einsum("ij,j->i", matrix[:half], query, out=out[:half])
    finally:
        second.result()
    return out


@dataclass
class _Rows:
    """What this process has read of one session: its vectors and messages, row by row. The vectors live in one
    float32 buffer that grows by doubling (a new row costs its own bytes, amortized), ``matrix`` a view of its rows."""

    dimensions: int
    texts: SessionTexts | None = None  # the same messages' keyword postings, when the index serves the keyword side
    messages: list[StoredMessage] = field(default_factory=list)
    row_of: dict[int, int] = field(default_factory=dict)
    _buffer: Vectors | None = None
    _id_buffer: NDArray[np.int64] | None = None  # the messages' ids, row by row (ties rank the newer first)
    _times: NDArray[np.int64] | None = None  # their created_at, computed when asked

    @property
    def matrix(self) -> Vectors | None:
        return None if self._buffer is None else self._buffer[: len(self.messages)]

    def ids(self) -> NDArray[np.int64]:
        return np.zeros(0, dtype=np.int64) if self._id_buffer is None else self._id_buffer[: len(self.messages)]

    def times(self) -> NDArray[np.int64]:
        """Each row's ``created_at``: across sessions, what orders equal scores (the newer message first)."""
        if self._times is None or len(self._times) != len(self.messages):
            self._times = np.fromiter((m.created_at for m in self.messages), np.int64, len(self.messages))
        return self._times

    def extend(self, messages: list[StoredMessage], raw: bytes) -> None:
        rows = np.frombuffer(raw, dtype=np.float32).reshape(-1, self.dimensions)
        if len(rows) != len(messages):
            raise ValueError(f"{len(messages)} messages but {len(rows)} vectors")
        start, end = len(self.messages), len(self.messages) + len(messages)
        if self._buffer is None or self._id_buffer is None or end > len(self._buffer):
            capacity = max(end, 2 * (0 if self._buffer is None else len(self._buffer)), 64)
            grown, grown_ids = np.empty((capacity, self.dimensions), dtype=np.float32), np.empty(capacity, np.int64)
            if self._buffer is not None and self._id_buffer is not None:
                grown[:start], grown_ids[:start] = self._buffer[:start], self._id_buffer[:start]
            self._buffer, self._id_buffer = grown, grown_ids
        self._buffer[start:end] = rows
        self._id_buffer[start:end] = [message.id for message in messages]
        for message in messages:
            self.row_of[message.id] = len(self.messages)
            self.messages.append(message)
            if self.texts is not None:
                self.texts.add(message)


class ExactVectorIndex:
    """Implements ``motorhead.ltm.ports.VectorIndex``; given ``new_texts`` (what makes a session's empty keyword
    texts), ``KeywordIndex`` too: each session's messages, vectors and postings come from the same read, so a fusion's
    two lookups cost one round trip."""

    name = "exact"

    def __init__(
        self,
        connector: RedisConnector,
        keys: Keys,
        *,
        dimensions: int,
        new_texts: Callable[[], SessionTexts] | None = None,
    ) -> None:
        self._connector = connector
        self._keys = keys
        self._dimensions = dimensions
        self._new_texts = new_texts
        self._rows: SessionRowCache[_Rows] = SessionRowCache(
            connector,
            keys,
            new=self._new_rows,
            extend=_Rows.extend,
            vector_bytes=dimensions * 4,
        )

    def ensure_ready(self, *, embedder: str, dimensions: int) -> DenseText:
        if dimensions != self._dimensions:
            raise ConfigError(f"embedder gives {dimensions} dims, the index was built for {self._dimensions}")
        return record_embedder(self._connector, self._keys, embedder=embedder, dimensions=dimensions)

    def add(self, session: SessionRef, generation: str, messages: Sequence[StoredMessage], vectors: Vectors) -> int:
        keys = self._keys.session(session)
        rows = np.ascontiguousarray(vectors, dtype=np.float32)
        args: list[Any] = [generation]
        for message, row in zip(messages, rows, strict=True):
            args += [message.id, encode(message), row.tobytes()]
        return int(self._connector.run_script(_ADD, (keys.meta, keys.vectors, keys.docs, keys.indexed), args))

    def vector_search(self, session: SessionRef, query: Vectors, k: int) -> list[Scored]:
        return [scored for _, scored in self.vector_search_many([session], query, k)]

    def distances(self, session: SessionRef, ids: Sequence[int], query: Vectors) -> dict[int, float]:
        return self.distances_many([(session, ids)], query)[0]

    def texts(self, session: SessionRef) -> SessionTexts:
        return self.texts_many([session])[0]

    def texts_many(self, sessions: Sequence[SessionRef]) -> list[SessionTexts]:
        return [self._texts_of(rows) for rows in self._rows.get_many(sessions)]

    @property
    def checks_owner(self) -> bool:
        return self._new_texts is not None

    def lookup_many(
        self,
        sessions: Sequence[SessionRef],
        query: Vectors,
        k: int,
        keywords: KeywordIndex,
        *,
        owner: str | None = None,
    ) -> Lookup:
        if keywords is not self:
            return lookup_apart(self, keywords, sessions, query, k)
        if owner is None:
            every = self._rows.get_many(sessions)
            return Lookup(
                texts=[self._texts_of(rows) for rows in every], nearest=lambda: self._nearest(every, query, k)
            )
        # each session's rows and binding in one read: a session not bound to ``owner`` now is read as empty
        owned = self._rows.get_owned(sessions, owner=owner)
        held = [rows if rows is not None else self._new_rows() for rows in owned]
        return Lookup(
            texts=[self._texts_of(rows) for rows in held],
            nearest=lambda: self._nearest(held, query, k),
            owned=[rows is not None for rows in owned],
        )

    def lookup_user(
        self,
        user: UserRef,
        query: Callable[[], Vectors],
        k: int,
        keywords: KeywordIndex,
        *,
        limit: int,
        session_ids: frozenset[str] | None,
    ) -> UserLookup | None:
        if keywords is not self or self._new_texts is None or self._connector.is_cluster():
            return None
        vector = query()
        # the listing, and each listed session's rows with its binding, in one read (session_cache.get_listed)
        listed = self._rows.get_listed(user, limit=limit, session_ids=session_ids)
        held = [rows if rows is not None else self._new_rows() for _, rows, _ in listed]
        lookup = Lookup(
            texts=[self._texts_of(rows) for rows in held],
            nearest=lambda: self._nearest(held, vector, k),
            owned=[rows is not None for _, rows, _ in listed],
        )
        return UserLookup(sessions=[session for session, _, _ in listed], lookup=lookup)

    def _new_rows(self) -> _Rows:
        return _Rows(self._dimensions, texts=None if self._new_texts is None else self._new_texts())

    def vector_search_many(self, sessions: Sequence[SessionRef], query: Vectors, k: int) -> list[tuple[int, Scored]]:
        return self._nearest(self._rows.get_many(sessions), query, k)

    def _texts_of(self, rows: _Rows) -> SessionTexts:
        if rows.texts is None:
            raise ConfigError("this exact index was built without keyword texts (new_texts)")
        return rows.texts

    def _nearest(self, every: Sequence[_Rows], query: Vectors, k: int) -> list[tuple[int, Scored]]:
        vector = np.asarray(query, dtype=np.float32)
        filled = [(position, rows) for position, rows in enumerate(every) if rows.matrix is not None and rows.messages]
        if not filled:
            return []
        if len(filled) == 1:
            position, rows = filled[0]
            assert rows.matrix is not None
            similarity = cosine(rows.matrix, vector)
            return [
                (position, Scored(message=rows.messages[i], distance=float(1.0 - similarity[i])))
                for i in top_k(similarity, rows.ids(), k)
            ]
        # one ranking over all the sessions' rows: one top k over their similarities, the newer message first on ties
        similarities = [cosine(rows.matrix, vector) for _, rows in filled if rows.matrix is not None]
        every_similarity = np.concatenate(similarities)
        starts = np.cumsum([0] + [len(part) for part in similarities])
        order_key = np.concatenate([rows.times() for _, rows in filled])
        found: list[tuple[int, Scored]] = []
        for i in top_k(every_similarity, order_key, k):
            part = int(np.searchsorted(starts, i, side="right")) - 1
            position, rows = filled[part]
            message = rows.messages[int(i - starts[part])]
            found.append((position, Scored(message=message, distance=float(1.0 - every_similarity[i]))))
        return found

    def distances_many(
        self, wanted: Sequence[tuple[SessionRef, Sequence[int]]], query: Vectors
    ) -> list[dict[int, float]]:
        """From the rows this process holds when they have every id asked for (a fusion asks right after its vector
        search read them), else read as a search reads."""
        vector = np.asarray(query, dtype=np.float32)
        held = [self._rows.held(session) for session, _ in wanted]
        if all(
            rows is not None and all(i in rows.row_of for i in ids) for rows, (_, ids) in zip(held, wanted, strict=True)
        ):
            every = [rows for rows in held if rows is not None]
        else:
            every = self._rows.get_many([session for session, _ in wanted])
        answers: list[dict[int, float]] = []
        for rows, (_, ids) in zip(every, wanted, strict=True):
            present = [(i, rows.row_of[i]) for i in ids if i in rows.row_of]
            if rows.matrix is None or not present:
                answers.append({})
                continue
            similarity = rows.matrix[[row for _, row in present]] @ vector
            answers.append({i: float(1.0 - s) for (i, _), s in zip(present, similarity, strict=True)})
        return answers
