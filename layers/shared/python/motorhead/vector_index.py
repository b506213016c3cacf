"""Picks the vector backend: ``search`` where the server has RediSearch (and is not an OSS cluster), else ``exact``.

With ``MOTORHEAD_VECTOR_BACKEND=auto`` the choice needs the server, so it is made on first use (inside the request
or job, where a Redis outage becomes a 503 or a retried job), never at import: a cold start does not touch Redis.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from redis.exceptions import ResponseError

from motorhead.errors import ConfigError
from motorhead.keys import Keys
from motorhead.ltm_ports import Scored, VectorIndex, Vectors
from motorhead.ports import StoredMessage
from motorhead.redis_client import RedisConnector, mapped_errors


def has_search(connector: RedisConnector) -> bool:
    """Whether the server answers FT._LIST (Redis Stack, Redis 8, MemoryDB, valkey-search); never on OSS cluster."""
    with mapped_errors():
        if connector.is_cluster():
            return False
        try:
            connector.client().execute_command("FT._LIST")  # type: ignore[no-untyped-call]
        except ResponseError:
            return False
    return True


def record_embedder(connector: RedisConnector, keys: Keys, *, embedder: str, dimensions: int) -> None:
    """Record which embedder made the index's vectors; refuse another one (vectors of two embedders never mix)."""
    with mapped_errors():
        client = connector.client()
        client.hsetnx(keys.ltm_meta(), "embedder", embedder)
        client.hsetnx(keys.ltm_meta(), "dimensions", dimensions)
        recorded, recorded_dims = (str(value) for value in client.hmget(keys.ltm_meta(), ["embedder", "dimensions"]))
    if recorded != embedder or recorded_dims != str(dimensions):
        raise ConfigError(
            f"the long-term index holds vectors of {recorded} ({recorded_dims} dims) but this deployment embeds with "
            f"{embedder} ({dimensions} dims): keep the embedder, or clear the index (MOTORHEAD_KEY_PREFIX)"
        )


def make_index(backend: str, connector: RedisConnector, keys: Keys, *, dimensions: int) -> VectorIndex:
    if backend == "search":
        from motorhead.search_index import SearchVectorIndex

        return SearchVectorIndex(connector, keys)
    from motorhead.exact_index import ExactVectorIndex

    return ExactVectorIndex(connector, keys, dimensions=dimensions)


class AutoVectorIndex:
    """Implements ``VectorIndex`` by delegating to the backend chosen on first use."""

    def __init__(self, connector: RedisConnector, keys: Keys, *, dimensions: int) -> None:
        self._choose: Callable[[], VectorIndex] = lambda: make_index(
            "search" if has_search(connector) else "exact", connector, keys, dimensions=dimensions
        )
        self._chosen: VectorIndex | None = None
        self._lock = threading.Lock()

    @property
    def backend(self) -> VectorIndex:
        if self._chosen is None:
            with self._lock:
                if self._chosen is None:
                    self._chosen = self._choose()
        return self._chosen

    @property
    def name(self) -> str:
        return self.backend.name

    def ensure_ready(self, *, embedder: str, dimensions: int) -> None:
        self.backend.ensure_ready(embedder=embedder, dimensions=dimensions)

    def add(self, session_id: str, generation: str, messages: Sequence[StoredMessage], vectors: Vectors) -> int:
        return self.backend.add(session_id, generation, messages, vectors)

    def vector_search(self, session_id: str, query: Vectors, k: int) -> list[Scored]:
        return self.backend.vector_search(session_id, query, k)

    def distances(self, session_id: str, ids: Sequence[int], query: Vectors) -> dict[int, float]:
        return self.backend.distances(session_id, ids, query)
