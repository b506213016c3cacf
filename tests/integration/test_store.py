"""The Redis store, run twice: on a standalone Redis and on a 3-node Redis Cluster (all started by fixtures)."""

from __future__ import annotations

import threading

import pytest
from redis.cluster import RedisCluster

from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.keys import Keys
from motorhead.adapters.redis_db.store import RedisMemoryStore
from motorhead.core.values import NO_TENANT, AppendResult, Folded, NewMessage
from tests.support import ref

HOSTILE_IDS = ["user@example.com:{chat} *1 ünï", "{", "}", "a-b", "*", " ", "会话", "x" * 256, "s:1", "s:{1}"]


@pytest.fixture
def store(connector: RedisConnector) -> RedisMemoryStore:
    return RedisMemoryStore(connector, Keys("mh"))


def test_connector_given_auto_mode_picks_the_right_client(
    request: pytest.FixtureRequest, connector: RedisConnector
) -> None:
    is_cluster = "cluster" in request.node.callspec.id
    assert isinstance(connector.client(), RedisCluster) is is_cluster


def test_append_given_messages_assigns_increasing_ids_and_counts(store: RedisMemoryStore) -> None:
    # Given two appends / When the session is read
    assert (
        store.append(
            ref("s"), [NewMessage("Human", "a"), NewMessage("AI", "b")], context=None, namespace="", now_ms=1
        ).count
        == 2
    )
    assert store.append(ref("s"), [NewMessage("Human", "c")], context="sum", namespace="", now_ms=2).last_id == 3
    snapshot = store.read(ref("s"), limit=10)
    # Then ids follow the order of arrival and the newest comes first
    assert [(m.id, m.content) for m in snapshot.messages] == [(3, "c"), (2, "b"), (1, "a")]
    assert (snapshot.context, snapshot.tokens) == ("sum", 0)
    assert [m.created_at for m in snapshot.messages] == [2, 1, 1]


def test_read_given_limit_returns_exactly_that_many_newest(store: RedisMemoryStore) -> None:
    store.append(ref("s"), [NewMessage("Human", str(i)) for i in range(20)], context=None, namespace="", now_ms=1)
    assert [m.content for m in store.read(ref("s"), limit=5).messages] == ["19", "18", "17", "16", "15"]


def test_append_given_concurrent_writers_loses_and_duplicates_nothing(store: RedisMemoryStore) -> None:
    # Given 8 writers posting 40 batches of 3 messages each into one session
    writers, batches = 8, 40

    def write(writer: int) -> None:
        for batch in range(batches):
            store.append(
                ref("busy"),
                [NewMessage("Human", f"{writer}:{batch}:{k}") for k in range(3)],
                context=None,
                namespace="",
                now_ms=1,
            )

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # When everything is read back
    stored = store.read(ref("busy"), limit=10_000).messages
    # Then every message is there once, ids are 1..N, and each batch kept consecutive ids in its own order
    assert sorted(m.id for m in stored) == list(range(1, writers * batches * 3 + 1))
    by_content = {m.content: m.id for m in stored}
    assert len(by_content) == writers * batches * 3
    for writer in range(writers):
        for batch in range(batches):
            ids = [by_content[f"{writer}:{batch}:{k}"] for k in range(3)]
            assert ids == list(range(ids[0], ids[0] + 3))


@pytest.mark.parametrize("session_id", HOSTILE_IDS)
def test_store_given_hostile_id_keeps_sessions_apart(store: RedisMemoryStore, session_id: str) -> None:
    # Given a hostile session and a neighbour
    store.append(ref(session_id), [NewMessage("Human", "mine")], context="ctx", namespace="ns", now_ms=1)
    store.append(ref("neighbour"), [NewMessage("Human", "theirs")], context=None, namespace="ns", now_ms=2)
    # Then each reads only its own, and deleting one leaves the other whole
    assert [m.content for m in store.read(ref(session_id), limit=10).messages] == ["mine"]
    store.delete(ref(session_id), namespace="ns")
    assert store.read(ref(session_id), limit=10).messages == []
    assert [m.content for m in store.read(ref("neighbour"), limit=10).messages] == ["theirs"]
    assert store.list_sessions(NO_TENANT, namespace="ns", offset=0, limit=10) == (["neighbour"], 1)


def test_delete_given_session_in_several_namespaces_unlists_it_everywhere(store: RedisMemoryStore) -> None:
    for ns in ("", "a", "b"):
        store.append(ref("s"), [NewMessage("Human", ns)], context=None, namespace=ns, now_ms=1)
    store.delete(ref("s"), namespace="")
    assert [store.list_sessions(NO_TENANT, namespace=ns, offset=0, limit=10) for ns in ("", "a", "b")] == [([], 0)] * 3
    assert store.read(ref("s"), limit=10).messages == []


def test_list_sessions_given_offset_pages_in_write_order(store: RedisMemoryStore) -> None:
    for i in range(5):
        store.append(ref(f"s{i}"), [NewMessage("Human", "x")], context=None, namespace="", now_ms=100 + i)
    store.append(ref("s0"), [NewMessage("Human", "again")], context=None, namespace="", now_ms=200)
    assert store.list_sessions(NO_TENANT, namespace="", offset=0, limit=2) == (["s1", "s2"], 5)
    assert store.list_sessions(NO_TENANT, namespace="", offset=4, limit=2) == (["s0"], 5)


# --- summarization: the lease, the fold input and the atomic commit -------------------------------------------------


def _fill(store: RedisMemoryStore, session_id: str, n: int, *, above: int | None = None, now: int = 1) -> AppendResult:
    return store.append(
        ref(session_id),
        [NewMessage("Human", f"m{i}") for i in range(n)],
        context=None,
        namespace="",
        now_ms=now,
        summarize_above=above,
    )


def test_append_given_window_overflow_claims_the_job_lease_once(store: RedisMemoryStore) -> None:
    # Given a window of 4 and a lease of 600 s
    results = [_fill(store, "s", 2, above=4, now=1_000 + i) for i in range(5)]
    # Then only the POST that first went over the window is told to send a job
    assert [r.summary_due for r in results] == [False, False, True, False, False]
    assert [r.count for r in results] == [2, 4, 6, 8, 10]
    assert results[2].last_id == 6
    # And once the lease is released (a failed send), the next POST claims it again
    store.release_summary_lease(ref("s"))
    assert _fill(store, "s", 1, above=4, now=2_000).summary_due is True


def test_append_given_an_expired_lease_claims_it_again(store: RedisMemoryStore) -> None:
    assert _fill(store, "s", 5, above=4, now=1_000).summary_due is True
    assert _fill(store, "s", 1, above=4, now=1_000 + 599_999).summary_due is False
    assert _fill(store, "s", 1, above=4, now=1_000 + 600_000).summary_due is True


@pytest.mark.parametrize("taken", [9_400_000, 9_999_999, 99_999_999_999])
def test_append_given_lease_times_across_a_power_of_ten_frees_the_lease_exactly_at_its_end(
    store: RedisMemoryStore, taken: int
) -> None:
    # Given a summary lease taken at a time whose end (600 s later) has more digits than the time itself, or not
    _fill(store, "s", 4, above=4, now=taken - 1)
    assert _fill(store, "s", 1, above=4, now=taken).summary_due is True
    # Then it is held one millisecond before its end, and free at its end (times compared by value, whatever their
    # number of digits)
    assert _fill(store, "s", 1, above=4, now=taken + 599_999).summary_due is False
    assert _fill(store, "s", 1, above=4, now=taken + 600_000).summary_due is True


def test_append_given_a_session_from_before_meta_shape_keeps_what_it_has_and_fills_what_it_lacks(
    store: RedisMemoryStore, connector: RedisConnector
) -> None:
    # Given a session of a user, written before meta.shape, whose meta lacks its user listing's name and its version
    store.append(ref("old"), [NewMessage("Human", "a")], context="sum", namespace="", now_ms=5, user_id="u1")
    meta = Keys("mh").session(ref("old")).meta
    client = connector.client()
    before = client.hmget(meta, ["id", "created_at", "gen"])
    client.hdel(meta, "shape", "ulist", "version")
    # When it is written to again, later
    result = store.append(ref("old"), [NewMessage("AI", "b")], context=None, namespace="", now_ms=9, user_id="u1")
    # Then it keeps its id, creation time and generation, and gets back the fields it lacked, once
    assert result.count == 2 and result.user == "u1"
    assert client.hmget(meta, ["id", "created_at", "gen"]) == before
    assert client.hget(meta, "ulist") is not None and client.hget(meta, "version") is not None
    assert client.hget(meta, "shape") == "1"
    version = client.hget(meta, "version")
    store.append(ref("old"), [NewMessage("AI", "c")], context=None, namespace="", now_ms=10, user_id="u1")
    assert client.hget(meta, "version") == version  # a summary's version token changes with the summary only


def test_fold_input_given_at_most_the_window_is_none(store: RedisMemoryStore) -> None:
    _fill(store, "s", 4)
    assert store.fold_input(ref("s"), window=4, keep=2) is None
    assert store.fold_input(ref("unknown"), window=4, keep=2) is None


def test_commit_fold_given_current_summary_removes_exactly_the_folded(store: RedisMemoryStore) -> None:
    # Given 10 messages, a window of 4 (keep 2)
    _fill(store, "s", 10)
    start = store.fold_input(ref("s"), window=4, keep=2)
    assert start is not None and [m.content for m in start.messages] == [f"m{i}" for i in range(8)]
    # And two messages posted while the job works
    store.append(
        ref("s"), [NewMessage("Human", "late1"), NewMessage("AI", "late2")], context=None, namespace="", now_ms=5
    )
    # When the job commits
    assert store.commit_fold(ref("s"), start=start, folded=Folded(context="sum", tokens=7, calls=1)) is True
    # Then exactly the 8 folded are gone, the late ones and the kept ones stay, the summary and tokens are stored
    snapshot = store.read(ref("s"), limit=100)
    assert [m.content for m in snapshot.messages] == ["late2", "late1", "m9", "m8"]
    assert (snapshot.context, snapshot.tokens) == ("sum", 7)
    # And the same start cannot commit twice (a redelivered job)
    assert store.commit_fold(ref("s"), start=start, folded=Folded(context="again", tokens=5, calls=1)) is False
    assert store.read(ref("s"), limit=100).context == "sum"


def test_commit_fold_given_context_posted_meanwhile_changes_nothing(store: RedisMemoryStore) -> None:
    _fill(store, "s", 10)
    start = store.fold_input(ref("s"), window=4, keep=2)
    assert start is not None
    store.append(ref("s"), [], context="from the client", namespace="", now_ms=5)
    assert store.commit_fold(ref("s"), start=start, folded=Folded(context="stale", tokens=3, calls=1)) is False
    snapshot = store.read(ref("s"), limit=100)
    assert (len(snapshot.messages), snapshot.context, snapshot.tokens) == (10, "from the client", 0)


def test_commit_fold_given_session_deleted_meanwhile_resurrects_nothing(store: RedisMemoryStore) -> None:
    # Given a job that read a session which is then deleted and re-created
    _fill(store, "s", 10)
    start = store.fold_input(ref("s"), window=4, keep=2)
    assert start is not None
    store.delete(ref("s"), namespace="")
    _fill(store, "s", 10)
    # When the stale job commits / Then nothing changes: the deleted session's summary never comes back
    assert store.commit_fold(ref("s"), start=start, folded=Folded(context="old secrets", tokens=3, calls=1)) is False
    snapshot = store.read(ref("s"), limit=100)
    assert (len(snapshot.messages), snapshot.context) == (10, None)


def test_commit_fold_given_a_large_backlog_removes_it_in_one_commit(store: RedisMemoryStore) -> None:
    for _ in range(30):
        _fill(store, "big", 100)
    start = store.fold_input(ref("big"), window=12, keep=6)
    assert start is not None and len(start.messages) == 2994
    assert store.commit_fold(ref("big"), start=start, folded=Folded(context="c", tokens=1, calls=1)) is True
    assert len(store.read(ref("big"), limit=100).messages) == 6


def test_append_given_the_same_call_delivered_twice_stores_the_messages_once(
    store: RedisMemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a call whose reply was lost: redis-py resends the very same script call (same arguments, same token)
    monkeypatch.setattr("motorhead.adapters.redis_db.store.new_version", lambda: "token-of-this-call")
    first = store.append(ref("s"), [NewMessage("Human", "hello once")], context=None, namespace="", now_ms=1)
    # When it arrives a second time
    again = store.append(ref("s"), [NewMessage("Human", "hello once")], context=None, namespace="", now_ms=1)
    # Then nothing more is stored, and the retry reports the same state
    assert [m.content for m in store.read(ref("s"), limit=10).messages] == ["hello once"]
    assert (again.count, again.last_id) == (first.count, first.last_id) == (1, 1)
    # And the next, different call is stored as usual
    monkeypatch.setattr("motorhead.adapters.redis_db.store.new_version", lambda: "token-of-the-next-call")
    assert store.append(ref("s"), [NewMessage("Human", "next")], context=None, namespace="", now_ms=2).last_id == 2


def test_append_given_folds_in_between_counts_exactly_what_the_session_holds(
    store: RedisMemoryStore, connector: RedisConnector
) -> None:
    # Given a session whose count is kept in its meta, folded by a summary while writes go on
    _fill(store, "s", 10)
    start = store.fold_input(ref("s"), window=4, keep=2)
    assert start is not None
    store.append(ref("s"), [NewMessage("Human", "late")], context=None, namespace="", now_ms=5)
    assert store.commit_fold(ref("s"), start=start, folded=Folded(context="sum", tokens=7, calls=1)) is True
    # When more is written
    result = store.append(ref("s"), [NewMessage("AI", "after")], context=None, namespace="", now_ms=6)
    # Then the count it answers is what the session holds: the 2 kept, the late one and this one
    assert result.count == connector.client().zcard(Keys().session(ref("s")).messages) == 4


def test_append_given_a_session_from_before_meta_count_counts_its_messages(
    store: RedisMemoryStore, connector: RedisConnector
) -> None:
    # Given a session written before meta.count existed
    _fill(store, "old", 5)
    connector.client().hdel(Keys().session(ref("old")).meta, "count")
    # When it is written to, then it counts what it holds, and keeps counting
    assert store.append(ref("old"), [NewMessage("AI", "x")], context=None, namespace="", now_ms=9).count == 6
    assert store.append(ref("old"), [NewMessage("AI", "y")], context=None, namespace="", now_ms=9).count == 7


def test_append_given_many_calls_keeps_at_least_the_last_64_tokens_and_at_most_79(
    store: RedisMemoryStore, connector: RedisConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 200 calls, each with its own token (the tokens are trimmed once in 16 calls, not at every call)
    tokens = iter(f"token-{n}" for n in range(10_000))
    monkeypatch.setattr("motorhead.adapters.redis_db.store.new_version", lambda: next(tokens))
    calls = []
    for n in range(200):
        calls.append(store.append(ref("s"), [NewMessage("Human", f"m{n}")], context=None, namespace="", now_ms=n))
    # Then between 64 and 79 tokens are kept, and every one of the last 64 calls is recognised when resent
    held = connector.client().zcard(Keys().session(ref("s")).requests)
    assert 64 <= held <= 79, held
    assert connector.client().zscore(Keys().session(ref("s")).requests, "token-399") is not None  # 2 tokens per call
    first_kept = 2 * (200 - 64) + 1
    assert connector.client().zscore(Keys().session(ref("s")).requests, f"token-{first_kept}") is not None
