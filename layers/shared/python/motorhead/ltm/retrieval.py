"""Retrieval: the session's most relevant indexed messages for a text.

The default (``fusion``) ranks by the recipe of ``ltm/recipe.py``: vectors and BM25 fused by their scores, the one
speaker a question names boosted, each message lifted by the message after it. ``vector`` (cosine alone),
``keyword`` (BM25 alone) and ``rrf`` (reciprocal rank fusion, the recipe before) are kept to compare
(``bench/retrieval.py``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from motorhead.core.values import Hit, SessionRef
from motorhead.ltm.bm25 import SessionTexts
from motorhead.ltm.fusion import NOT_SCORED, named_speaker, reciprocal_rank_fusion, score_fusion
from motorhead.ltm.ports import Embedder, KeywordIndex, Scored, VectorIndex, Vectors
from motorhead.ltm.recipe import DEFAULT_RECIPE, FusionRecipe

Mode = Literal["fusion", "vector", "keyword", "rrf"]
PARALLEL_ROWS = 20_000  # from this many messages, the keyword and vector lookups run side by side


@lru_cache(maxsize=1)
def _keyword_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="bm25")


class RetrievalService:
    def __init__(
        self,
        *,
        embedder: Embedder,
        index: VectorIndex,
        keywords: KeywordIndex,
        hybrid: bool = True,
        recipe: FusionRecipe = DEFAULT_RECIPE,
    ) -> None:
        self._embedder = embedder
        self._index = index
        self._keywords = keywords
        self._mode: Mode = "fusion" if hybrid else "vector"
        self._recipe = recipe
        self._ready = False

    def retrieve(self, session: SessionRef, text: str, k: int) -> list[Hit]:
        """The ``k`` most relevant messages of the session, best first, in the configured mode."""
        return self.search(session, text, k)

    def search(self, session: SessionRef, text: str, k: int, *, mode: Mode | None = None) -> list[Hit]:
        """The ``k`` most relevant messages of the session, best first."""
        mode = mode or self._mode
        self._ensure_ready()
        query = self._embedder.embed([text])[0]
        if mode == "vector":
            return [
                Hit(message=h.message, distance=h.distance, score=1.0 - h.distance)
                for h in self._nearest(session, query, k)
            ]
        if mode == "fusion":
            return self._fused(session, text, query, k)
        return self._by_rank(session, text, query, k, keyword_only=mode == "keyword")

    def _nearest(self, session: SessionRef, query: Vectors, k: int) -> list[Scored]:
        return self._index.vector_search(session, query, k)

    def lookup(
        self, session: SessionRef, text: str, query: Vectors
    ) -> tuple[SessionTexts, NDArray[np.float64], list[Scored]]:
        """The two lookups the fusion starts from: every message's BM25 score, and the nearest ``candidates`` by
        vector. On a big session they run side by side (numpy releases the GIL): the vector side reads the whole
        matrix and is bound by memory bandwidth, the keyword side by its postings."""
        texts = self._keywords.texts(session)
        if len(texts) < PARALLEL_ROWS:
            return texts, texts.scores(text), self._nearest(session, query, self._recipe.candidates)
        keyword = _keyword_pool().submit(texts.scores, text)
        try:
            nearest = self._nearest(session, query, self._recipe.candidates)
        finally:
            scores = keyword.result()  # never leave the thread reading texts that the next call may extend
        return texts, scores, nearest

    def _fused(self, session: SessionRef, text: str, query: Vectors, k: int) -> list[Hit]:
        texts, keyword, nearest = self.lookup(session, text, query)
        if not len(texts):
            return []
        recipe = self._recipe
        cosine = {texts.row_of[h.message.id]: 1.0 - h.distance for h in nearest if h.message.id in texts.row_of}
        candidates = sorted(set(cosine) | set(texts.best(keyword, recipe.candidates)))
        last = len(texts) - 1
        wanted = {row for row in candidates if row not in cosine} | {
            row + 1 for row in candidates if row < last and row + 1 not in cosine
        }
        if wanted:
            ids = [texts.messages[row].id for row in sorted(wanted)]
            for message_id, distance in self._index.distances(session, ids, query).items():
                cosine[texts.row_of[message_id]] = 1.0 - distance
        speaker = named_speaker(text, texts.roles())
        scored = set(candidates) | {row + 1 for row in candidates if row < last}  # the fusion reads each next row too
        boosted = {row for row in scored if texts.messages[row].role == speaker} if speaker else set()
        fused = score_fusion(candidates=candidates, cosine=cosine, keyword=keyword, boosted=boosted, recipe=recipe)
        ranked = sorted(fused, key=lambda row: (-fused[row], -texts.messages[row].id))[:k]
        return [
            Hit(message=texts.messages[row], distance=1.0 - cosine[row] if row in cosine else NOT_SCORED,
                score=fused[row])
            for row in ranked
        ]  # fmt: skip

    def _by_rank(self, session: SessionRef, text: str, query: Vectors, k: int, *, keyword_only: bool) -> list[Hit]:
        candidates = max(3 * k, 30)
        keyword = self._keywords.texts(session).search(text, candidates if not keyword_only else k)
        vector = [] if keyword_only else self._nearest(session, query, candidates)
        seen = {hit.message.id for hit in vector}
        missing = [message.id for message, _ in keyword if message.id not in seen]
        distances = self._index.distances(session, missing, query) if missing else {}
        return reciprocal_rank_fusion(vector, keyword, distances)[:k]

    def _ensure_ready(self) -> None:
        if not self._ready:
            self._index.ensure_ready(embedder=self._embedder.identity, dimensions=self._embedder.dimensions)
            self._ready = True
