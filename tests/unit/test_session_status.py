"""A session's stats (``GET /sessions/{id}``) on the in-memory store: counts, times, user, namespaces, and whether a
summary or an index job still has work on it."""

from __future__ import annotations

from motorhead.core.memory import MemoryService
from motorhead.core.values import MemoryLimits, NewMessage
from tests.fakes import FakeJobQueue, FakeMemoryStore
from tests.support import ref

WINDOW = 4


def service(*, summaries: bool = True, index: bool = False) -> tuple[MemoryService, FakeMemoryStore]:
    store = FakeMemoryStore()
    memory = MemoryService(
        store=store,
        limits=MemoryLimits(window=WINDOW),
        summary_jobs=FakeJobQueue() if summaries else None,
        index_jobs=FakeJobQueue() if index else None,
        clock=iter(range(1_000, 100_000, 1_000)).__next__,
    )
    return memory, store


def messages(n: int) -> list[NewMessage]:
    return [NewMessage("human", f"message {i}") for i in range(n)]


def test_session_status_given_an_unknown_session_is_empty_and_does_not_exist() -> None:
    memory, _ = service()
    status = memory.session_status(ref("never"))
    assert not status.exists
    assert (status.stats.messages, status.stats.updated_at, status.summary_pending, status.index_pending) == (
        0,
        0,
        False,
        False,
    )


def test_session_status_given_posts_counts_them_and_times_the_first_and_last_write() -> None:
    memory, _ = service()
    memory.add_memory(ref("s"), messages(2), namespace="support", user_id="ana")
    memory.add_memory(ref("s"), messages(1), context="a summary", namespace="support")
    status = memory.session_status(ref("s"))
    assert status.exists
    stats = status.stats
    assert (stats.messages, stats.total_messages, stats.has_summary) == (3, 3, True)
    assert (stats.created_at, stats.updated_at) == (1_000, 2_000)
    assert (stats.user_id, stats.namespaces) == ("ana", frozenset({"support"}))


def test_session_status_given_more_messages_than_the_window_says_a_summary_is_pending() -> None:
    memory, store = service()
    memory.add_memory(ref("s"), messages(WINDOW + 1))
    assert memory.session_status(ref("s")).summary_pending
    # When the summarizer folds the overflow (here: the oldest messages go) / Then nothing is pending any more
    for message_id in (1, 2, 3):
        del store.sessions[ref("s")].messages[message_id]
    status = memory.session_status(ref("s"))
    assert not status.summary_pending and (status.stats.messages, status.stats.total_messages) == (2, WINDOW + 1)


def test_session_status_given_no_summarizer_never_says_a_summary_is_pending() -> None:
    memory, _ = service(summaries=False)
    memory.add_memory(ref("s"), messages(WINDOW + 3))
    assert not memory.session_status(ref("s")).summary_pending


def test_session_status_given_unindexed_messages_says_an_index_job_is_pending_until_acked() -> None:
    memory, store = service(index=True)
    memory.add_memory(ref("s"), messages(3))
    status = memory.session_status(ref("s"))
    assert status.index_pending and status.stats.unindexed == 3
    generation, pending = store.pending(ref("s"), limit=10)
    store.ack_indexed(ref("s"), generation, [m.id for m in pending])
    assert not memory.session_status(ref("s")).index_pending


def test_session_status_given_another_tenants_session_of_that_id_does_not_see_it() -> None:
    memory, _ = service()
    memory.add_memory(ref("shared", tenant="acme"), messages(2))
    assert memory.session_status(ref("shared", tenant="acme")).exists
    assert not memory.session_status(ref("shared", tenant="globex")).exists
    assert not memory.session_status(ref("shared")).exists


def test_session_status_given_long_term_memory_off_says_so_and_never_pending() -> None:
    # Given a deployment without long-term memory, and one with it whose function sends no index job (GET's)
    off, _ = service(index=False)
    off.add_memory(ref("s"), messages(3))
    store = FakeMemoryStore()
    reader = MemoryService(store=store, limits=MemoryLimits(window=WINDOW), long_term_memory=True)
    # Then the first says long-term memory is off (nothing pending), the second that it is on
    status = off.session_status(ref("s"))
    assert (status.long_term_memory, status.index_pending) == (False, False)
    assert reader.session_status(ref("s")).long_term_memory is True
    assert service(index=True)[0].session_status(ref("s")).long_term_memory is True
