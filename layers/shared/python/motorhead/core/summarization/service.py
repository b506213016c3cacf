"""Incremental summarization jobs: fold what overflows the window into ``context``, losing and repeating nothing.

A job reads, in one atomic step, the summary with its version token and every message older than the newest half of
the window; folds them with a ``SummaryWriter``; then commits in one atomic step that removes exactly those messages
(by their ids, never by index), replaces the summary and adds the tokens used, but only if the summary is still the
one it read. Messages posted meanwhile are newer than anything read, so they are never touched; a redelivered or
concurrent job either finds nothing to do or loses the compare-and-set and starts over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from motorhead.core.job_loop import StepBudget, Stop
from motorhead.core.ports import MemoryStore, SummaryWriter
from motorhead.core.values import SessionJob
from motorhead.errors import JobIncompleteError, SummaryConflictError

logger = logging.getLogger(__name__)

MAX_CONFLICTS_IN_A_ROW = 4  # then let SQS deliver the job again later
DEFAULT_BUDGET = StepBudget(max_rounds=100)


@dataclass(frozen=True, slots=True)
class JobOutcome:
    folded: int
    commits: int
    conflicts: int
    calls: int
    tokens: int


@dataclass(slots=True)
class _Tally:
    folded: int = 0
    commits: int = 0
    conflicts: int = 0
    calls: int = 0
    tokens: int = 0
    in_a_row: int = 0

    def outcome(self) -> JobOutcome:
        return JobOutcome(self.folded, self.commits, self.conflicts, self.calls, self.tokens)


class SummarizerService:
    def __init__(
        self,
        *,
        store: MemoryStore,
        writer: SummaryWriter,
        window: int,
        budget: StepBudget = DEFAULT_BUDGET,
    ) -> None:
        self._store = store
        self._writer = writer
        self._window = window
        self._keep = window // 2
        self._budget = budget

    def run(self, job: SessionJob, *, time_left: Callable[[], float] | None = None) -> JobOutcome:
        """Fold until the session fits the window, one writer step (one LLM call) per commit, so a long backlog
        makes progress even if a later call fails. No step starts without the budget's reserve of time left
        (``time_left``: the Lambda invocation's remaining time): after a commit the rest is the next job's; with
        nothing committed the job is unfinished (``JobIncompleteError``, carrying the outcome so far), so SQS delivers
        it again. An unknown or already summarized session is a no-op."""
        tally = _Tally()
        loop = self._budget.run(lambda: self._step(job, tally), time_left)
        outcome = tally.outcome()
        logger.info("summary job done", extra={"last_id": job.last_id, "stop": loop.stop.value, **asdict(outcome)})
        if loop.stop is Stop.TIME and not outcome.commits:
            raise JobIncompleteError(
                "no time left for one summary step; the job will be delivered again", outcome=outcome
            )
        return outcome

    def _step(self, job: SessionJob, tally: _Tally) -> bool:
        """One fold and its commit; True when there is nothing (more) to fold."""
        start = self._store.fold_input(job.session, window=self._window, keep=self._keep)
        if start is None:
            return True
        step = replace(start, messages=start.messages[: self._writer.take(start.context, start.messages)])
        result = self._writer.fold(step.context, step.messages)
        tally.calls += result.calls
        tally.tokens += result.tokens
        if self._store.commit_fold(job.session, start=step, folded=result):
            tally.folded += len(step.messages)
            tally.commits += 1
            tally.in_a_row = 0
            return False
        tally.conflicts += 1
        tally.in_a_row += 1
        if tally.in_a_row >= MAX_CONFLICTS_IN_A_ROW:
            raise SummaryConflictError(f"the summary changed under {tally.in_a_row} attempts in a row")
        return False
