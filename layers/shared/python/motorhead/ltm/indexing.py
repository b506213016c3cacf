"""Durable indexing of every stored message into long-term memory.

A POST records its messages as ``pending`` in the same atomic step that stores them, and sends one index job per
lease period; the indexer embeds pending messages in batches, adds them to the vector index (idempotent, and only if
the session was not deleted meanwhile), then forgets them from ``pending``. A failed batch stays pending: the job
fails, SQS retries it and, in the end, moves it to the dead-letter queue; the next job of the session picks the
messages up again. The indexer lets go of the lease only when nothing is pending, atomically, so no message is left
without a job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from motorhead.core.job_loop import StepBudget
from motorhead.core.ports import MemoryStore
from motorhead.core.values import SessionJob
from motorhead.errors import JobIncompleteError
from motorhead.ltm.ports import Embedder, VectorIndex
from motorhead.ltm.recipe import CURRENT_DENSE_TEXT, DenseText, dense_text

logger = logging.getLogger(__name__)

EMBED_BATCH = 128
DEFAULT_BUDGET = StepBudget(max_rounds=50)


@dataclass(frozen=True, slots=True)
class IndexOutcome:
    indexed: int
    batches: int


@dataclass(slots=True)
class _Tally:
    indexed: int = 0
    batches: int = 0


class IndexerService:
    def __init__(
        self,
        *,
        store: MemoryStore,
        embedder: Embedder,
        index: VectorIndex,
        budget: StepBudget = DEFAULT_BUDGET,
    ) -> None:
        self._store = store
        self._embedder = embedder
        self._index = index
        self._budget = budget
        self._dense_text: DenseText | None = None

    def run(self, job: SessionJob, *, time_left: Callable[[], float] | None = None) -> IndexOutcome:
        """Index everything pending for the session, then let go of its lease. An embedding failure raises (the
        messages stay pending); so does a backlog bigger than one job's rounds or time (``JobIncompleteError``, with
        the outcome of the batches done), so that SQS delivers the job again and it goes on where it stopped. No batch
        starts without the budget's reserve of time left."""
        # Every job reads the index's record again (one round trip): an index emptied and recorded anew by another
        # process meanwhile is then embedded as its record says, never as this process last saw it.
        self._dense_text = self._index.ensure_ready(
            embedder=self._embedder.identity, dimensions=self._embedder.dimensions
        )
        tally = _Tally()
        loop = self._budget.run(lambda: self._step(job, tally), time_left)
        logger.info(
            "index job done",
            extra={"last_id": job.last_id, "stop": loop.stop.value, "indexed": tally.indexed, "batches": tally.batches},
        )
        outcome = IndexOutcome(indexed=tally.indexed, batches=tally.batches)
        if not loop.finished:
            raise JobIncompleteError(
                f"indexed {tally.indexed} messages in {tally.batches} batches; more are pending", outcome=outcome
            )
        return outcome

    def _step(self, job: SessionJob, tally: _Tally) -> bool:
        """One batch: embed, add, acknowledge; True once nothing is pending and the lease is released."""
        generation, batch = self._store.pending(job.session, limit=EMBED_BATCH)
        if not batch:
            return self._store.release_index_lease(job.session, only_if_idle=True)
        vectors = self._embedder.embed([dense_text(m, self._dense_text or CURRENT_DENSE_TEXT) for m in batch])
        tally.indexed += self._index.add(job.session, generation, batch, vectors)
        self._store.ack_indexed(job.session, generation, [m.id for m in batch])
        tally.batches += 1
        return False
