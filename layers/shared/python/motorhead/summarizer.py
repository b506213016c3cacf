"""Incremental summarization jobs: fold what overflows the window into ``context``, losing and repeating nothing.

A job reads, in one Lua call, the summary with its version token and every message older than the newest half of the
window; folds them with a ``SummaryWriter``; then commits in one Lua call that removes exactly those messages (by
their ids, never by index), replaces the summary and adds the tokens used, but only if the summary is still the one
it read. Messages posted meanwhile are newer than anything read, so they are never touched; a
redelivered or concurrent job either finds nothing to do or loses the compare-and-set and starts over.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from aws_lambda_powertools.logging import Logger

from motorhead.errors import SummaryConflictError
from motorhead.jobs import decode_job
from motorhead.ports import MemoryStore, SessionJob, SummaryWriter

logger = Logger(service="motorhead")


@dataclass(frozen=True, slots=True)
class JobOutcome:
    folded: int
    commits: int
    conflicts: int
    calls: int
    tokens: int


MAX_CONFLICTS_IN_A_ROW = 4  # then let SQS deliver the job again later


class SummarizerService:
    def __init__(
        self,
        *,
        store: MemoryStore,
        writer: SummaryWriter,
        window: int,
        max_rounds: int = 100,
        time_budget: float = 40.0,
        reserve: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._writer = writer
        self._window = window
        self._keep = window // 2
        self._max_rounds = max_rounds
        self._time_budget = time_budget
        self._reserve = reserve
        self._clock = clock

    def handle_body(self, body: str, *, time_left: Callable[[], float] | None = None) -> JobOutcome | None:
        """Run the job in an SQS body; a malformed body is dropped (None)."""
        job = decode_job(body)
        return None if job is None else self.run(job, time_left=time_left)

    def run(self, job: SessionJob, *, time_left: Callable[[], float] | None = None) -> JobOutcome:
        """Fold until the session fits the window, one writer step (one LLM call) per commit, so a long backlog
        makes progress even if a later call fails. No new step starts when less than ``reserve`` seconds are left
        (``time_left``: the Lambda invocation's remaining time) or the time budget is spent: the rest is the next
        job's. An unknown or already summarized session is a no-op."""
        started = self._clock()
        if time_left is None:
            time_left = lambda: self._time_budget - (self._clock() - started)  # noqa: E731
        folded = commits = conflicts = calls = tokens = 0
        in_a_row = 0
        for _ in range(self._max_rounds):
            if commits and time_left() < self._reserve:
                break
            start = self._store.fold_input(job.session_id, window=self._window, keep=self._keep)
            if start is None:
                break
            step = replace(start, messages=start.messages[: self._writer.take(start.context, start.messages)])
            result = self._writer.fold(step.context, step.messages)
            calls += result.calls
            tokens += result.tokens
            if self._store.commit_fold(job.session_id, start=step, folded=result):
                folded += len(step.messages)
                commits += 1
                in_a_row = 0
                continue
            conflicts += 1
            in_a_row += 1
            if in_a_row >= MAX_CONFLICTS_IN_A_ROW:
                raise SummaryConflictError(f"the summary changed under {in_a_row} attempts in a row")
        outcome = JobOutcome(folded=folded, commits=commits, conflicts=conflicts, calls=calls, tokens=tokens)
        logger.info("summary job done", extra={"last_id": job.last_id, **asdict(outcome)})
        return outcome
