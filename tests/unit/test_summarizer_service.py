"""SummarizerService on in-memory fakes: what a job folds, how each compare-and-set outcome is handled, and the time
check before every step."""

from __future__ import annotations

import pytest

from motorhead.core.job_loop import StepBudget
from motorhead.core.summarization.llm_writer import LlmSummaryWriter
from motorhead.core.summarization.service import MAX_CONFLICTS_IN_A_ROW, SummarizerService
from motorhead.core.values import Folded, NewMessage, SessionJob, StoredMessage
from motorhead.errors import JobIncompleteError, SummarizerError, SummaryConflictError
from tests.fakes import FakeChatModel, FakeMemoryStore, FakeTokenCounter
from tests.support import ref

JOB = SessionJob(session=ref("s"), last_id=0)


def fill(store: FakeMemoryStore, n: int) -> None:
    store.append(ref("s"), [NewMessage("Human", f"fact {i}") for i in range(n)], context=None, namespace="", now_ms=1)


class RecordingWriter:
    """Folds ``per_step`` messages per step into a summary listing what it folded."""

    def __init__(self, per_step: int = 1_000) -> None:
        self.per_step = per_step
        self.folded: list[list[int]] = []

    def take(self, context: str | None, messages: list[StoredMessage]) -> int:
        return min(self.per_step, len(messages))

    def fold(self, context: str | None, messages: list[StoredMessage]) -> Folded:
        self.folded.append([m.id for m in messages])
        ids = ",".join(str(m.id) for m in messages)
        return Folded(context=f"{context or ''}[{ids}]", tokens=len(messages), calls=1)


def test_job_given_a_session_over_the_window_folds_all_but_the_newest_half() -> None:
    # Given 10 messages and a window of 4 (the newest 2 stay)
    store, writer = FakeMemoryStore(), RecordingWriter()
    fill(store, 10)
    # When the job runs
    outcome = SummarizerService(store=store, writer=writer, window=4).run(JOB)
    # Then messages 1..8 were folded in one step, committed, and 9, 10 are left
    assert writer.folded == [list(range(1, 9))]
    assert (outcome.folded, outcome.commits, outcome.conflicts, outcome.tokens) == (8, 1, 0, 8)
    snapshot = store.read(ref("s"), limit=100)
    assert [m.id for m in snapshot.messages] == [10, 9]
    assert snapshot.context == "[1,2,3,4,5,6,7,8]" and snapshot.tokens == 8


def test_job_given_a_session_within_the_window_or_unknown_does_nothing() -> None:
    store, writer = FakeMemoryStore(), RecordingWriter()
    fill(store, 4)
    service = SummarizerService(store=store, writer=writer, window=4)
    assert service.run(JOB).commits == 0
    assert service.run(SessionJob(session=ref("unknown"), last_id=1)).commits == 0
    assert writer.folded == []


def test_job_given_a_writer_taking_a_few_at_a_time_commits_each_step() -> None:
    # Given 10 messages, window 4, and a writer that folds 3 per step (one LLM call each)
    store, writer = FakeMemoryStore(), RecordingWriter(per_step=3)
    fill(store, 10)
    # When the job runs / Then it commits step by step, oldest first, repeats nothing, and stops once the session
    # fits the window
    outcome = SummarizerService(store=store, writer=writer, window=4).run(JOB)
    assert writer.folded == [[1, 2, 3], [4, 5, 6]]
    assert (outcome.commits, outcome.folded) == (2, 6)
    assert store.read(ref("s"), limit=100).context == "[1,2,3][4,5,6]"
    assert [m.id for m in store.read(ref("s"), limit=100).messages] == [10, 9, 8, 7]


class ContextChangedDuringFold(RecordingWriter):
    """While folding, a client posts a new context ``times`` times: the commit's compare-and-set loses."""

    def __init__(self, store: FakeMemoryStore, times: int) -> None:
        super().__init__()
        self.store, self.times = store, times

    def fold(self, context: str | None, messages: list[StoredMessage]) -> Folded:
        if self.times:
            self.times -= 1
            self.store.append(ref("s"), [], context=f"client {self.times}", namespace="", now_ms=2)
        return super().fold(context, messages)


def test_job_given_the_summary_changed_during_a_fold_starts_over_from_the_new_one() -> None:
    # Given a fold during which the client replaces the summary once
    store = FakeMemoryStore()
    fill(store, 10)
    writer = ContextChangedDuringFold(store, times=1)
    # When the job runs / Then the first commit is refused, nothing is lost, and the retry folds onto the client's
    outcome = SummarizerService(store=store, writer=writer, window=4).run(JOB)
    assert (outcome.conflicts, outcome.commits) == (1, 1)
    assert store.read(ref("s"), limit=100).context == "client 0[1,2,3,4,5,6,7,8]"


def test_job_given_the_summary_keeps_changing_gives_up_for_a_redelivery() -> None:
    # Given a summary that changes under every attempt
    store = FakeMemoryStore()
    fill(store, 10)
    writer = ContextChangedDuringFold(store, times=100)
    # When the job runs / Then after MAX_CONFLICTS_IN_A_ROW lost commits it fails (SQS delivers it again later)
    with pytest.raises(SummaryConflictError):
        SummarizerService(store=store, writer=writer, window=4).run(JOB)
    assert len(writer.folded) == MAX_CONFLICTS_IN_A_ROW
    assert len(store.read(ref("s"), limit=100).messages) == 10  # nothing folded, nothing lost


def test_commit_given_a_folded_message_deleted_meanwhile_is_refused() -> None:
    # Given a fold input, then the session deleted and re-created with new messages
    store = FakeMemoryStore()
    fill(store, 10)
    start = store.fold_input(ref("s"), window=4, keep=2)
    assert start is not None
    store.delete(ref("s"), namespace="")
    fill(store, 3)
    # When the stale job commits / Then nothing changes: the deleted conversation does not come back
    assert not store.commit_fold(ref("s"), start=start, folded=Folded(context="old", tokens=1, calls=1))
    assert store.read(ref("s"), limit=10).context is None


def test_job_given_less_time_than_one_step_starts_none_and_asks_for_redelivery() -> None:
    # Given an invocation with 5 s left, where one step may take 30 s
    store, writer = FakeMemoryStore(), RecordingWriter(per_step=2)
    fill(store, 10)
    service = SummarizerService(store=store, writer=writer, window=4, budget=StepBudget(reserve=30.0))
    # When the job runs / Then no step starts (the time is checked before the first one too)
    with pytest.raises(JobIncompleteError):
        service.run(JOB, time_left=lambda: 5.0)
    assert writer.folded == []


def test_job_given_time_for_two_steps_commits_two_and_leaves_the_rest() -> None:
    store, writer = FakeMemoryStore(), RecordingWriter(per_step=2)
    fill(store, 10)
    left = iter([100.0, 60.0, 20.0])
    outcome = SummarizerService(store=store, writer=writer, window=4, budget=StepBudget(reserve=30.0)).run(
        JOB, time_left=lambda: next(left)
    )
    assert outcome.commits == 2 and writer.folded == [[1, 2], [3, 4]]
    assert len(store.read(ref("s"), limit=100).messages) == 6


def test_job_given_an_llm_failure_keeps_what_earlier_steps_committed() -> None:
    # Given 10 messages of 100 words, and an LLM writer whose batches hold two of them, whose model answers once, then
    # fails
    store = FakeMemoryStore()
    words = " ".join(["word"] * 99)
    store.append(
        ref("s"), [NewMessage("Human", f"{i} {words}") for i in range(10)], context=None, namespace="", now_ms=1
    )
    model = FakeChatModel("summary one", SummarizerError("LLM down"))
    writer = LlmSummaryWriter(
        model=model, counter=FakeTokenCounter(), summary_max_tokens=32, context_tokens=4_000, max_batch_tokens=256
    )
    writer_steps = writer.take(None, store.fold_input(ref("s"), window=4, keep=2).messages)  # type: ignore[union-attr]
    # When the job runs / Then it fails on the second call...
    with pytest.raises(SummarizerError):
        SummarizerService(store=store, writer=writer, window=4).run(JOB)
    # ...and the first step's fold is committed
    snapshot = store.read(ref("s"), limit=100)
    assert snapshot.context == "summary one" and len(snapshot.messages) == 10 - writer_steps
