"""Incremental summarization jobs: fold what overflows the window into ``context``, losing and repeating nothing.

A job reads, in one Lua call, the summary with its version token and every message older than the newest half of the
window; folds them with a ``SummaryWriter``; then commits in one Lua call that removes exactly those messages (by
their ids, never by index), replaces the summary and adds the tokens used, but only if the summary is still the one
it read. Messages posted meanwhile are newer than anything read, so they are never touched; a
redelivered or concurrent job either finds nothing to do or loses the compare-and-set and starts over.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

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


class SummarizerService:
    def __init__(self, *, store: MemoryStore, writer: SummaryWriter, window: int, max_rounds: int = 4) -> None:
        self._store = store
        self._writer = writer
        self._window = window
        self._keep = window // 2
        self._max_rounds = max_rounds

    def handle_body(self, body: str) -> JobOutcome | None:
        """Run the job in an SQS body; a malformed body is dropped (None)."""
        job = decode_job(body)
        return None if job is None else self.run(job)

    def run(self, job: SessionJob) -> JobOutcome:
        """Fold until the session fits the window; an unknown or already summarized session is a no-op."""
        folded = commits = conflicts = calls = tokens = 0
        last_round_conflicted = False
        for _ in range(self._max_rounds):
            start = self._store.fold_input(job.session_id, window=self._window, keep=self._keep)
            if start is None:
                last_round_conflicted = False
                break
            result = self._writer.fold(start.context, start.messages)
            calls += result.calls
            tokens += result.tokens
            last_round_conflicted = not self._store.commit_fold(job.session_id, start=start, folded=result)
            if last_round_conflicted:
                conflicts += 1
            else:
                folded += len(start.messages)
                commits += 1
        if last_round_conflicted:
            raise SummaryConflictError(f"the summary kept changing during {self._max_rounds} attempts")
        outcome = JobOutcome(folded=folded, commits=commits, conflicts=conflicts, calls=calls, tokens=tokens)
        logger.info("summary job done", extra={"last_id": job.last_id, **asdict(outcome)})
        return outcome
