"""Retrieval: the most relevant indexed messages for a text, of one session or of a user's whole history.

The default (``fusion``) ranks by the recipe of ``ltm/recipe.py``: vectors and BM25 fused by their scores, the one
speaker a question names boosted, each message lifted by the message after it. ``vector`` (cosine alone),
``keyword`` (BM25 alone) and ``rrf`` (reciprocal rank fusion, the recipe before) are kept to compare
(``bench/retrieval.py``).

A user's history is searched with the same recipe, over all of the user's sessions taken as one corpus: one vector
search across them, BM25 with the corpus's statistics (a message's context never reaches into another session), the
fusion's z-scores over the candidates of all sessions, and the next-turn lift within each session.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from motorhead.core.ports import UserDirectory
from motorhead.core.values import FusionParts, Hit, SearchFilters, SessionRef, StoredMessage, UserHit, UserRef
from motorhead.errors import ConfigError
from motorhead.ltm.bm25 import SessionTexts, corpus_scores
from motorhead.ltm.fusion import NOT_SCORED, fusion_parts, named_speaker, reciprocal_rank_fusion, score_fusion
from motorhead.ltm.ports import Embedder, KeywordIndex, Lookup, Scored, VectorIndex, Vectors
from motorhead.ltm.recipe import DEFAULT_RECIPE, FusionRecipe
from motorhead.ltm.vectors import top_k

Mode = Literal["fusion", "vector", "keyword", "rrf"]
PARALLEL_ROWS = 20_000  # from this many messages, the keyword and vector lookups run side by side


@lru_cache(maxsize=1)
def _keyword_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="bm25")


MAX_USER_SESSIONS = 1_000  # sessions of one user a user-level search reads at most: the most recently written


@dataclass(frozen=True, slots=True)
class _Corpus:
    """Several sessions' indexed messages as one list of rows: session ``p`` holds rows ``starts[p]`` up to
    ``starts[p + 1]``."""

    sessions: Sequence[SessionRef]
    texts: Sequence[SessionTexts]
    starts: tuple[int, ...]

    @classmethod
    def of(cls, sessions: Sequence[SessionRef], texts: Sequence[SessionTexts]) -> _Corpus:
        starts = [0]
        for part in texts:
            starts.append(starts[-1] + len(part))
        return cls(sessions=sessions, texts=texts, starts=tuple(starts))

    def __len__(self) -> int:
        return self.starts[-1]

    def locate(self, row: int) -> tuple[int, int]:
        """The session position and the row within it."""
        part = bisect_right(self.starts, row) - 1
        return part, row - self.starts[part]

    def message(self, row: int) -> StoredMessage:
        part, local = self.locate(row)
        return self.texts[part].messages[local]

    def row(self, part: int, message_id: int) -> int | None:
        local = self.texts[part].row_of.get(message_id)
        return None if local is None else self.starts[part] + local

    def newer_first(self, row: int) -> tuple[int, int]:
        """The order of equal scores: the newer message first (within a session its id says it; across sessions
        its time, then its id)."""
        message = self.message(row)
        return (0 if len(self.texts) == 1 else -message.created_at), -message.id

    def last_rows(self) -> frozenset[int]:
        return frozenset(end - 1 for end in self.starts[1:] if end > 0)

    def roles(self) -> set[str]:
        return set().union(*(part.roles() for part in self.texts)) if self.texts else set()


class RetrievalService:
    def __init__(
        self,
        *,
        embedder: Embedder,
        index: VectorIndex,
        keywords: KeywordIndex,
        hybrid: bool = True,
        recipe: FusionRecipe = DEFAULT_RECIPE,
        users: UserDirectory | None = None,
    ) -> None:
        self._embedder = embedder
        self._index = index
        self._keywords = keywords
        self._mode: Mode = "fusion" if hybrid else "vector"
        self._recipe = recipe
        self._users = users
        self._ready = False

    def retrieve(self, session: SessionRef, text: str, k: int, *, explain: bool = False) -> list[Hit]:
        """The ``k`` most relevant messages of the session, best first, in the configured mode; with ``explain``,
        each hit carries the parts of its score (the order and the scores are the same either way)."""
        return self.search(session, text, k, explain=explain)

    def retrieve_user(
        self, user: UserRef, text: str, k: int, filters: SearchFilters | None = None, *, explain: bool = False
    ) -> list[UserHit]:
        """The ``k`` most relevant messages of every session bound to the user (its ``MAX_USER_SESSIONS`` most
        recently written), best first, each with its session id; an unknown user has none. ``explain``: as
        ``retrieve``."""
        if self._users is None:
            raise ConfigError("user-level retrieval needs the user directory")
        filters = filters or SearchFilters()
        self._ensure_ready()
        if self._mode == "fusion" and filters.namespace is None:
            in_one = self._retrieve_listed(user, text, k, filters, explain=explain)
            if in_one is not None:
                return in_one
        if self._mode == "fusion" and filters.namespace is None and self._index.checks_owner:
            return self._retrieve_owned(user, text, k, filters, explain=explain)
        listed = self._users.user_sessions(
            user, namespace=filters.namespace, session_ids=filters.session_ids, limit=MAX_USER_SESSIONS
        )
        if not listed:
            return []
        ids = [session_id for session_id, _ in listed]
        sessions = [SessionRef(tenant=user.tenant, id=session_id) for session_id in ids]
        query = self._embedder.embed([text])[0]
        if self._mode == "vector":
            wanted = k if not filters.on_messages else max(k, self._recipe.candidates)
            nearest = self._index.vector_search_many(sessions, query, wanted)
            found = [
                UserHit(session_id=ids[p], hit=_by_vector(h, explain)) for p, h in nearest if filters.admits(h.message)
            ][:k]
        else:
            fused = self._fused(sessions, text, query, k, filters, explain=explain)
            found = [UserHit(session_id=ids[p], hit=hit) for p, hit in fused]
        # After every read: the sessions of the hits are still the user's, as they were when listed (a session
        # deleted and re-created meanwhile, bound to anyone, has a new generation and is left out).
        generation = dict(listed)
        kept = self._users.still_bound(
            user, [(sid, generation[sid]) for sid in dict.fromkeys(h.session_id for h in found)]
        )
        return [hit for hit in found if hit.session_id in kept]

    def _retrieve_listed(
        self, user: UserRef, text: str, k: int, filters: SearchFilters, *, explain: bool
    ) -> list[UserHit] | None:
        """``retrieve_user`` where the index reads the user's listing with the listed sessions, each session's binding
        in the same step as its rows (``VectorIndex.lookup_user``: one round trip on a single Redis), the query
        embedded first; None where the index cannot."""
        embedded: list[Vectors] = []

        def query() -> Vectors:
            if not embedded:
                embedded.append(self._embedder.embed([text])[0])
            return embedded[0]

        listed = self._index.lookup_user(
            user, query, self._looked_for(filters), self._keywords, limit=MAX_USER_SESSIONS,
            session_ids=filters.session_ids,
        )  # fmt: skip
        if listed is None:
            return None
        if not listed.sessions:
            return []
        fused = self._fused(
            listed.sessions, text, query(), k, filters, explain=explain, owner=user.id, read=listed.lookup,
            recheck=listed.recheck,
        )  # fmt: skip
        return [UserHit(session_id=listed.sessions[p].id, hit=hit) for p, hit in fused]

    def _retrieve_owned(
        self, user: UserRef, text: str, k: int, filters: SearchFilters, *, explain: bool
    ) -> list[UserHit]:
        """``retrieve_user`` where the index reads each session's binding with its rows, in one step: the listing (a
        hint), then one read of every listed session that returns only those bound to the user at that instant, so
        no binding is read before or after (two round trips on a single Redis)."""
        assert self._users is not None
        ids = self._users.listed_sessions(user, limit=MAX_USER_SESSIONS)
        if filters.session_ids is not None:
            ids = [session_id for session_id in ids if session_id in filters.session_ids]
        if not ids:
            return []
        sessions = [SessionRef(tenant=user.tenant, id=session_id) for session_id in ids]
        query = self._embedder.embed([text])[0]
        fused = self._fused(sessions, text, query, k, filters, explain=explain, owner=user.id)
        return [UserHit(session_id=ids[p], hit=hit) for p, hit in fused]

    def search(
        self, session: SessionRef, text: str, k: int, *, mode: Mode | None = None, explain: bool = False
    ) -> list[Hit]:
        """The ``k`` most relevant messages of the session, best first (``explain``: with the parts of each score,
        in the ``fusion`` and ``vector`` modes)."""
        mode = mode or self._mode
        self._ensure_ready()
        query = self._embedder.embed([text])[0]
        if mode == "vector":
            return [_by_vector(h, explain) for h in self._nearest(session, query, k)]
        if mode == "fusion":
            return [hit for _, hit in self._fused([session], text, query, k, explain=explain)]
        return self._by_rank(session, text, query, k, keyword_only=mode == "keyword")

    def _nearest(self, session: SessionRef, query: Vectors, k: int) -> list[Scored]:
        return self._index.vector_search(session, query, k)

    def lookup(
        self, session: SessionRef, text: str, query: Vectors
    ) -> tuple[SessionTexts, NDArray[np.float64], list[Scored]]:
        """The two lookups the fusion starts from, for one session (what ``bench/locomo.py`` times)."""
        corpus, keyword, nearest = self._lookup([session], text, query, self._recipe.candidates)
        return corpus.texts[0], keyword, [scored for _, scored in nearest]

    def _lookup(
        self,
        sessions: Sequence[SessionRef],
        text: str,
        query: Vectors,
        candidates: int,
        owner: str | None = None,
        found: Lookup | None = None,
    ) -> tuple[_Corpus, NDArray[np.float64], list[tuple[int, Scored]]]:
        """The sessions' texts as one corpus, every row's BM25 score, and the nearest ``candidates`` by vector (read
        together: one round trip when the index serves the keyword side). Over many rows the scoring runs side by
        side (numpy releases the GIL): the vector side reads the whole matrix and is bound by memory bandwidth, the
        keyword side by its postings."""
        if found is None:  # else read already (``lookup_user``)
            found = self._index.lookup_many(sessions, query, candidates, self._keywords, owner=owner)
        if owner is not None and found.owned is None:
            raise ConfigError("this vector index cannot check the sessions' owner as it reads them")
        corpus = _Corpus.of(sessions, found.texts)  # a session not the owner's was read as empty

        def keyword() -> NDArray[np.float64]:
            return np.concatenate(corpus_scores(corpus.texts, text)) if len(corpus) else np.zeros(0)

        if len(corpus) < PARALLEL_ROWS:
            return corpus, keyword(), found.nearest()
        scores = _keyword_pool().submit(keyword)
        try:
            nearest = found.nearest()
        finally:
            keyword_scores = scores.result()  # never leave the thread reading texts that the next call may extend
        return corpus, keyword_scores, nearest

    def _fused(
        self,
        sessions: Sequence[SessionRef],
        text: str,
        query: Vectors,
        k: int,
        filters: SearchFilters | None = None,
        *,
        explain: bool = False,
        owner: str | None = None,
        read: Lookup | None = None,
        recheck: Callable[[set[int]], set[int]] | None = None,
    ) -> list[tuple[int, Hit]]:
        recipe = self._recipe
        filtering = filters is not None and filters.on_messages
        corpus, keyword, nearest = self._lookup(sessions, text, query, self._looked_for(filters), owner, read)
        if not len(corpus):
            return []
        admitted: NDArray[np.bool_] | None = None
        if filters is not None and filtering:
            admitted = np.fromiter((filters.admits(corpus.message(r)) for r in range(len(corpus))), bool, len(corpus))
        cosine: dict[int, float] = {}
        for part, near in nearest:
            row = corpus.row(part, near.message.id)
            if row is not None:
                cosine[row] = 1.0 - near.distance
        vector_side = [row for row in cosine if admitted is None or admitted[row]]
        vector_side = sorted(vector_side, key=lambda row: -cosine[row])[: recipe.candidates]
        keyword_side = _best(corpus, keyword if admitted is None else np.where(admitted, keyword, 0.0), recipe)
        candidates = sorted(set(vector_side) | set(keyword_side))
        if not candidates:
            return []
        ends = corpus.last_rows()
        wanted = {row for row in candidates if row not in cosine} | {
            row + 1 for row in candidates if row not in ends and row + 1 not in cosine
        }
        if wanted:
            by_part: dict[int, list[int]] = {}
            for row in sorted(wanted):
                part, local = corpus.locate(row)
                by_part.setdefault(part, []).append(corpus.texts[part].messages[local].id)
            asked = sorted(by_part)
            found = self._index.distances_many([(corpus.sessions[p], by_part[p]) for p in asked], query)
            for part, distances in zip(asked, found, strict=True):
                for message_id, distance in distances.items():
                    row = corpus.row(part, message_id)
                    if row is not None:
                        cosine[row] = 1.0 - distance
        speaker = named_speaker(text, corpus.roles())
        scored = set(candidates) | {row + 1 for row in candidates if row not in ends}  # each next row is read too
        boosted = {row for row in scored if corpus.message(row).role == speaker} if speaker else set()
        fused = score_fusion(
            candidates=candidates, cosine=cosine, keyword=keyword, boosted=boosted, recipe=recipe, last_rows=ends
        )
        ranked = sorted(fused, key=lambda row: (-fused[row], *corpus.newer_first(row)))
        parts = (
            fusion_parts(
                candidates=candidates, cosine=cosine, keyword=keyword, boosted=boosted, recipe=recipe, last_rows=ends
            )
            if explain
            else {}
        )
        hits: list[tuple[int, Hit]] = []
        for row in ranked[:k]:
            part, _ = corpus.locate(row)
            distance = 1.0 - cosine[row] if row in cosine else NOT_SCORED
            hit = Hit(message=corpus.message(row), distance=distance, score=fused[row], parts=parts.get(row))
            hits.append((part, hit))
        if wanted and recheck is not None:  # read more after the lookup: the hits' sessions checked again
            kept = recheck({part for part, _ in hits})
            hits = [(part, hit) for part, hit in hits if part in kept]
        return hits

    def _looked_for(self, filters: SearchFilters | None) -> int:
        """How many candidates the vector side looks for: with filters on messages, further, so that enough admitted
        candidates remain."""
        return self._recipe.candidates * (4 if filters is not None and filters.on_messages else 1)

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


def _by_vector(scored: Scored, explain: bool) -> Hit:
    """A hit ranked by its vector alone: its score is its cosine (``explain``: the whole score is the vector's)."""
    cosine = 1.0 - scored.distance
    parts = FusionParts(cosine=cosine, bm25=0.0, vector=cosine, keyword=0.0) if explain else None
    return Hit(message=scored.message, distance=scored.distance, score=cosine, parts=parts)


def _best(corpus: _Corpus, scores: NDArray[np.float64], recipe: FusionRecipe) -> list[int]:
    """The rows of the ``recipe.candidates`` highest positive scores of the corpus, best first, the newer first on ties
    (within one session its ids say it; across sessions its time)."""
    found = np.flatnonzero(scores > 0)
    if not len(found):
        return []
    if len(corpus.texts) == 1:
        newer = corpus.texts[0].ids()[found]
    else:
        newer = np.concatenate([part.times() for part in corpus.texts])[found]
    ranked: list[int] = found[top_k(scores[found], newer, recipe.candidates)].tolist()
    return ranked
