"""Retrieval: the session's most relevant indexed messages for a text, by vectors, keywords (BM25) or both."""

from __future__ import annotations

from typing import Literal

from motorhead.core.values import Hit, SessionRef
from motorhead.ltm.fusion import reciprocal_rank_fusion
from motorhead.ltm.ports import Embedder, KeywordIndex, VectorIndex

Mode = Literal["vector", "keyword", "hybrid"]


class RetrievalService:
    def __init__(
        self,
        *,
        embedder: Embedder,
        index: VectorIndex,
        keywords: KeywordIndex,
        hybrid: bool = False,
    ) -> None:
        self._embedder = embedder
        self._index = index
        self._keywords = keywords
        self._hybrid = hybrid
        self._ready = False

    def retrieve(self, session: SessionRef, text: str, k: int) -> list[Hit]:
        """The ``k`` most relevant messages of the session, best first, in the configured mode."""
        return self.search(session, text, k)

    def search(self, session: SessionRef, text: str, k: int, *, mode: Mode | None = None) -> list[Hit]:
        """The ``k`` most relevant messages of the session, best first. ``mode``: hybrid (default when enabled),
        vector or keyword."""
        mode = mode or ("hybrid" if self._hybrid else "vector")
        self._ensure_ready()
        query = self._embedder.embed([text])[0]
        candidates = max(3 * k, 30)
        vector = self._index.vector_search(session, query, k if mode == "vector" else candidates)
        if mode == "vector":
            return [Hit(message=h.message, distance=h.distance, score=1.0 - h.distance) for h in vector]
        keyword = self._keywords.search(session, text, candidates)
        if mode == "keyword":
            vector = []
            keyword = keyword[:k]
        seen = {hit.message.id for hit in vector}
        missing = [message.id for message, _ in keyword if message.id not in seen]
        distances = self._index.distances(session, missing, query) if missing else {}
        return reciprocal_rank_fusion(vector, keyword, distances)[:k]

    def _ensure_ready(self) -> None:
        if not self._ready:
            self._index.ensure_ready(embedder=self._embedder.identity, dimensions=self._embedder.dimensions)
            self._ready = True
