"""Long-term memory: durable indexing of every stored message, and hybrid retrieval (vectors + BM25, fused by rank).

Indexing: a POST records its messages as ``pending`` in the same Lua call that stores them, and sends one index job
per lease period; the indexer embeds pending messages in batches, adds them to the vector index (idempotent, and only
if the session was not deleted meanwhile), then forgets them from ``pending``. A failed batch stays pending: the job
fails, SQS retries it and, in the end, moves it to the dead-letter queue; the next job of the session picks the
messages up again. The indexer lets go of the lease only when nothing is pending, atomically, so no message is left
without a job.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from motorhead.errors import IndexingIncompleteError, LongTermMemoryDisabledError
from motorhead.jobs import decode_job
from motorhead.models import RetrievalHitOut
from motorhead.ports import MemoryStore, SessionJob, StoredMessage

if TYPE_CHECKING:  # numpy (through ltm_ports) is not needed to say that long-term memory is off
    from motorhead.keyword import KeywordIndex
    from motorhead.ltm_ports import Embedder, Scored, VectorIndex

RRF_K = 60  # reciprocal rank fusion constant (Cormack et al.): robust without tuning
EMBED_BATCH = 128


@dataclass(frozen=True, slots=True)
class Hit:
    message: StoredMessage
    distance: float
    score: float


def fuse(vector: list[Scored], keyword: list[tuple[StoredMessage, float]], distances: dict[int, float]) -> list[Hit]:
    """Reciprocal rank fusion of the two rankings; ``distances`` gives the cosine distance of keyword-only hits."""
    fused: dict[int, float] = {}
    by_id: dict[int, StoredMessage] = {}
    distance: dict[int, float] = dict(distances)
    for rank, hit in enumerate(vector):
        fused[hit.message.id] = fused.get(hit.message.id, 0.0) + 1.0 / (RRF_K + rank + 1)
        by_id[hit.message.id] = hit.message
        distance[hit.message.id] = hit.distance
    for rank, (message, _) in enumerate(keyword):
        fused[message.id] = fused.get(message.id, 0.0) + 1.0 / (RRF_K + rank + 1)
        by_id[message.id] = message
    ordered = sorted(fused, key=lambda i: (-fused[i], distance.get(i, 2.0), -i))
    return [Hit(message=by_id[i], distance=distance.get(i, 2.0), score=fused[i]) for i in ordered]


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

    def retrieve(self, session_id: str, text: str, k: int) -> list[RetrievalHitOut]:
        return hits_out(self.search(session_id, text, k))

    def search(self, session_id: str, text: str, k: int, *, mode: str | None = None) -> list[Hit]:
        """The ``k`` most relevant messages of the session, best first. ``mode``: hybrid (default when enabled),
        vector or keyword."""
        mode = mode or ("hybrid" if self._hybrid else "vector")
        self._ensure_ready()
        query = self._embedder.embed([text])[0]
        candidates = max(3 * k, 30)
        vector = self._index.vector_search(session_id, query, k if mode == "vector" else candidates)
        if mode == "vector":
            return [Hit(message=h.message, distance=h.distance, score=1.0 - h.distance) for h in vector]
        keyword = self._keywords.search(session_id, text, candidates)
        if mode == "keyword":
            vector = []
            keyword = keyword[:k]
        seen = {hit.message.id for hit in vector}
        missing = [message.id for message, _ in keyword if message.id not in seen]
        distances = self._index.distances(session_id, missing, query) if missing else {}
        return fuse(vector, keyword, distances)[:k]

    def _ensure_ready(self) -> None:
        if not self._ready:
            self._index.ensure_ready(embedder=self._embedder.identity, dimensions=self._embedder.dimensions)
            self._ready = True


def hits_out(hits: list[Hit]) -> list[RetrievalHitOut]:
    return [
        RetrievalHitOut(
            role=h.message.role,
            content=h.message.content,
            dist=round(h.distance, 6),
            id=h.message.id,
            created_at=h.message.created_at,
            score=round(h.score, 6),
        )
        for h in hits
    ]


class DisabledRetrieval:
    """What the retrieval function serves when MOTORHEAD_LONG_TERM_MEMORY is off."""

    def retrieve(self, session_id: str, text: str, k: int) -> list[RetrievalHitOut]:
        raise LongTermMemoryDisabledError("long-term memory is disabled (set MOTORHEAD_LONG_TERM_MEMORY=true)")


@dataclass(frozen=True, slots=True)
class IndexOutcome:
    indexed: int
    batches: int


class IndexerService:
    def __init__(
        self,
        *,
        store: MemoryStore,
        embedder: Embedder,
        index: VectorIndex,
        max_rounds: int = 50,
        time_budget: float = 40.0,
        reserve: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._embedder = embedder
        self._index = index
        self._max_rounds = max_rounds
        self._time_budget = time_budget
        self._reserve = reserve
        self._clock = clock
        self._ready = False

    def handle_body(self, body: str, *, time_left: Callable[[], float] | None = None) -> IndexOutcome | None:
        """Run the job in an SQS body; a malformed body is dropped (None)."""
        job = decode_job(body)
        return None if job is None else self.run(job, time_left=time_left)

    def run(self, job: SessionJob, *, time_left: Callable[[], float] | None = None) -> IndexOutcome:
        """Index everything pending for the session, then let go of its lease. An embedding failure raises (the
        messages stay pending); so does a backlog bigger than one job's rounds or time, so that SQS delivers the job
        again and it goes on where it stopped."""
        if not self._ready:
            self._index.ensure_ready(embedder=self._embedder.identity, dimensions=self._embedder.dimensions)
            self._ready = True
        started = self._clock()
        if time_left is None:
            time_left = lambda: self._time_budget - (self._clock() - started)  # noqa: E731
        indexed = batches = 0
        for _ in range(self._max_rounds):
            if batches and time_left() < self._reserve:
                break
            generation, batch = self._store.pending(job.session_id, limit=EMBED_BATCH)
            if not batch:
                if self._store.release_index_lease(job.session_id, only_if_idle=True):
                    return IndexOutcome(indexed=indexed, batches=batches)
                continue
            vectors = self._embedder.embed([m.content for m in batch])
            indexed += self._index.add(job.session_id, generation, batch, vectors)
            self._store.ack_indexed(job.session_id, generation, [m.id for m in batch])
            batches += 1
        raise IndexingIncompleteError(f"indexed {indexed} messages in {batches} batches; more are pending")
