"""MemoryService on in-memory fakes: what a POST may carry, all or nothing, and the jobs (and leases) it asks for."""

from __future__ import annotations

import re

import pytest

from motorhead.core.memory import MemoryService
from motorhead.core.values import MemoryLimits, NewMessage
from motorhead.errors import InvalidInputError, PayloadTooLargeError, StoreUnavailableError
from tests.fakes import FakeJobQueue, FakeMemoryStore
from tests.support import ref

LIMITS = MemoryLimits(
    window=4, max_messages_per_request=3, max_message_bytes=10, max_context_bytes=12, max_session_id_bytes=8
)


def say(*contents: str) -> list[NewMessage]:
    return [NewMessage(role="Human", content=content) for content in contents]


def service(
    store: FakeMemoryStore, *, summary: FakeJobQueue | None = None, index: FakeJobQueue | None = None
) -> MemoryService:
    return MemoryService(store=store, limits=LIMITS, summary_jobs=summary, index_jobs=index, clock=lambda: 1_000)


@pytest.mark.parametrize(
    ("messages", "context", "error"),
    [
        (say("a", "b", "c", "d"), None, "4 messages in one request; the limit is 3"),
        (say("ok", "x" * 11), None, "messages[1].content is 11 bytes; the limit is 10"),
        (say("é" * 6), None, "messages[0].content is 12 bytes"),  # bytes, not characters
        (say("ok"), "c" * 13, "context is over the limit of 12 bytes"),
    ],
)
def test_post_given_a_limit_exceeded_refuses_and_stores_nothing(
    messages: list[NewMessage], context: str | None, error: str
) -> None:
    # Given a session that already holds one message
    store = FakeMemoryStore()
    memory = service(store)
    memory.add_memory(ref("s"), say("first"))
    # When a POST goes over one limit / Then it is refused with a message naming the limit
    with pytest.raises(PayloadTooLargeError, match=re.escape(error)):
        memory.add_memory(ref("s"), messages, context=context)
    # And nothing of it was stored: not one message, not the context
    snapshot = store.read(ref("s"), limit=100)
    assert [m.content for m in snapshot.messages] == ["first"] and snapshot.context is None
    assert store.appends == 1


def test_post_given_messages_at_every_limit_stores_them_all() -> None:
    # Given a POST exactly at each limit
    store = FakeMemoryStore()
    # When it is stored / Then every message is there, in order, and the context too
    service(store).add_memory(ref("s"), say("x" * 10, "é" * 5, "z"), context="c" * 12)
    snapshot = store.read(ref("s"), limit=10)
    assert [m.content for m in reversed(snapshot.messages)] == ["x" * 10, "é" * 5, "z"]
    assert snapshot.context == "c" * 12


@pytest.mark.parametrize(("session_id", "error"), [("", "must not be empty"), ("123456789", "9 bytes; the limit is 8")])
def test_every_route_given_a_bad_session_id_refuses_it(session_id: str, error: str) -> None:
    memory = service(FakeMemoryStore())
    for call in (
        lambda: memory.get_memory(ref(session_id)),
        lambda: memory.add_memory(ref(session_id), say("a")),
        lambda: memory.delete_memory(ref(session_id)),
    ):
        with pytest.raises(InvalidInputError, match=error):
            call()


def test_post_given_a_store_failure_sends_no_job() -> None:
    # Given a store that fails the write (Redis down)
    store, jobs = FakeMemoryStore(), FakeJobQueue()
    store.fail_next_append = StoreUnavailableError("redis unavailable")
    # When a POST over the window arrives / Then it fails as a whole, and no job is sent for messages never stored
    with pytest.raises(StoreUnavailableError):
        service(store, summary=jobs).add_memory(ref("s"), say("a", "b", "c"))
    assert jobs.sent == [] and store.read(ref("s"), limit=10).messages == []


def test_post_given_the_window_overflows_sends_one_summary_job_per_lease() -> None:
    # Given a summary queue
    store, jobs = FakeMemoryStore(), FakeJobQueue()
    memory = service(store, summary=jobs)
    # When POSTs go past the window of 4, three times
    for _ in range(5):
        memory.add_memory(ref("s"), say("a", "b"))
    # Then the first POST over the window claimed the lease and sent one job, as of its newest message; no other did
    assert [(job.session, job.last_id) for job in jobs.sent] == [(ref("s"), 6)]


def test_post_given_the_job_cannot_be_sent_keeps_the_messages_and_releases_the_lease() -> None:
    # Given a queue that refuses every send
    store, jobs = FakeMemoryStore(), FakeJobQueue(fail=RuntimeError("SQS down"))
    memory = service(store, summary=jobs)
    # When a POST overflows the window / Then it succeeds (the messages are stored)...
    memory.add_memory(ref("s"), say("a", "b", "c"))
    memory.add_memory(ref("s"), say("d", "e"))
    assert len(store.read(ref("s"), limit=10).messages) == 5
    # ...and the lease is free again, so the next POST asks again once the queue is back
    jobs.fail = None
    memory.add_memory(ref("s"), say("f"))
    assert [job.last_id for job in jobs.sent] == [6]


def test_post_given_long_term_memory_records_pending_and_sends_one_index_job_per_lease() -> None:
    # Given an index queue
    store, index = FakeMemoryStore(), FakeJobQueue()
    memory = service(store, index=index)
    # When three POSTs arrive within the lease
    for word in ("a", "b", "c"):
        memory.add_memory(ref("s"), say(word))
    # Then every message is pending for the indexer, and one index job was sent
    assert [m.content for m in store.pending(ref("s"), limit=10)[1]] == ["a", "b", "c"]
    assert [job.last_id for job in index.sent] == [1]


def test_post_given_the_index_job_cannot_be_sent_releases_the_index_lease() -> None:
    # Given an index queue that is down
    store, index = FakeMemoryStore(), FakeJobQueue(fail=RuntimeError("SQS down"))
    memory = service(store, index=index)
    memory.add_memory(ref("s"), say("a"))
    # When it is back / Then the next POST sends a job (the messages were pending all along)
    index.fail = None
    memory.add_memory(ref("s"), say("b"))
    assert [job.last_id for job in index.sent] == [2]
    assert len(store.pending(ref("s"), limit=10)[1]) == 2


def test_post_given_a_context_only_replaces_the_summary() -> None:
    store = FakeMemoryStore()
    memory = service(store)
    memory.add_memory(ref("s"), say("a"), context="first")
    memory.add_memory(ref("s"), [], context="second")
    snapshot = memory.get_memory(ref("s"))
    assert snapshot.context == "second" and [m.content for m in snapshot.messages] == ["a"]


def test_get_given_more_than_the_window_returns_the_newest_window_newest_first() -> None:
    store = FakeMemoryStore()
    memory = service(store)
    memory.add_memory(ref("s"), say("1", "2", "3"))
    memory.add_memory(ref("s"), say("4", "5", "6"))
    assert [m.content for m in memory.get_memory(ref("s")).messages] == ["6", "5", "4", "3"]


def test_list_sessions_given_pages_counts_and_points_to_the_next() -> None:
    store = FakeMemoryStore()
    memory = service(store)
    for name in ("a", "b", "c"):
        memory.add_memory(ref(name), say("x"))
    first = memory.list_sessions("", page=1, size=2)
    last = memory.list_sessions("", page=2, size=2)
    assert (first.session_ids, first.total, first.next_page) == (["a", "b"], 3, 2)
    assert (last.session_ids, last.next_page) == (["c"], None)


def test_list_sessions_given_a_namespace_over_256_bytes_refuses_it() -> None:
    with pytest.raises(InvalidInputError, match="namespace"):
        service(FakeMemoryStore()).list_sessions("", page=1, size=10, namespace="n" * 257)
