"""Picks the vector backend: ``search`` where the server has RediSearch (and is not an OSS cluster), else ``exact``.

With ``MOTORHEAD_VECTOR_BACKEND=auto`` the choice needs the server, so it is made on first use (inside the request
or job, where a Redis outage becomes a 503 or a retried job), never at import: a cold start does not touch Redis.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, cast

from redis.exceptions import ResponseError

from motorhead.adapters.redis_db.connector import RedisConnector, mapped_errors
from motorhead.adapters.redis_db.keys import Keys
from motorhead.core.values import SessionRef, StoredMessage, UserRef
from motorhead.ltm.ports import KeywordIndex, Lookup, Scored, UserLookup, VectorIndex, Vectors
from motorhead.ltm.recipe import DenseText

if TYPE_CHECKING:
    from motorhead.ltm.bm25 import SessionTexts


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


def make_index(
    backend: str,
    connector: RedisConnector,
    keys: Keys,
    *,
    dimensions: int,
    new_texts: Callable[[], SessionTexts] | None = None,
) -> VectorIndex:
    """``new_texts``: the index serves the keyword side too (``KeywordIndex``; the `exact` backend from the same
    reads as its vectors)."""
    if backend == "search":
        from motorhead.adapters.redis_db.search_index import SearchVectorIndex

        return SearchVectorIndex(connector, keys, new_texts=new_texts)
    from motorhead.adapters.redis_db.exact_index import ExactVectorIndex

    return ExactVectorIndex(connector, keys, dimensions=dimensions, new_texts=new_texts)


class AutoVectorIndex:
    """Implements ``VectorIndex`` by delegating to the backend chosen on first use."""

    def __init__(
        self,
        connector: RedisConnector,
        keys: Keys,
        *,
        dimensions: int,
        new_texts: Callable[[], SessionTexts] | None = None,
    ) -> None:
        self._choose: Callable[[], VectorIndex] = lambda: make_index(
            "search" if has_search(connector) else "exact", connector, keys, dimensions=dimensions, new_texts=new_texts
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

    def ensure_ready(self, *, embedder: str, dimensions: int) -> DenseText:
        return self.backend.ensure_ready(embedder=embedder, dimensions=dimensions)

    def add(self, session: SessionRef, generation: str, messages: Sequence[StoredMessage], vectors: Vectors) -> int:
        return self.backend.add(session, generation, messages, vectors)

    def vector_search(self, session: SessionRef, query: Vectors, k: int) -> list[Scored]:
        return self.backend.vector_search(session, query, k)

    def distances(self, session: SessionRef, ids: Sequence[int], query: Vectors) -> dict[int, float]:
        return self.backend.distances(session, ids, query)

    def vector_search_many(self, sessions: Sequence[SessionRef], query: Vectors, k: int) -> list[tuple[int, Scored]]:
        return self.backend.vector_search_many(sessions, query, k)

    def distances_many(
        self, wanted: Sequence[tuple[SessionRef, Sequence[int]]], query: Vectors
    ) -> list[dict[int, float]]:
        return self.backend.distances_many(wanted, query)

    def texts(self, session: SessionRef) -> SessionTexts:
        return self._keywords().texts(session)

    def texts_many(self, sessions: Sequence[SessionRef]) -> list[SessionTexts]:
        return self._keywords().texts_many(sessions)

    @property
    def checks_owner(self) -> bool:
        return self.backend.checks_owner

    def lookup_many(
        self,
        sessions: Sequence[SessionRef],
        query: Vectors,
        k: int,
        keywords: KeywordIndex,
        *,
        owner: str | None = None,
    ) -> Lookup:
        own = self._keywords() if keywords is self else keywords
        return self.backend.lookup_many(sessions, query, k, own, owner=owner)

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
        own = self._keywords() if keywords is self else keywords
        return self.backend.lookup_user(user, query, k, own, limit=limit, session_ids=session_ids)

    def _keywords(self) -> KeywordIndex:
        """The chosen backend as the keyword side (both backends are one; made without ``new_texts``, a ConfigError)."""
        return cast("KeywordIndex", self.backend)
