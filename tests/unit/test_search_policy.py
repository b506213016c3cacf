"""How the `search` backend's KNN query walks the index (``_QueryPolicy``), from the sizes it knows."""

from __future__ import annotations

import pytest

from motorhead.adapters.redis_db.search_index import BATCHES_FROM_ROWS, INDEX_SIZE_SECONDS, _QueryPolicy


def policy_of(index_docs: object, clock: list[float] | None = None) -> _QueryPolicy:
    times = clock if clock is not None else [0.0]
    policy = _QueryPolicy(lambda: times[0])
    policy.read({"num_docs": index_docs})
    return policy


@pytest.mark.parametrize(
    ("rows", "index_docs", "batches"),
    [
        (BATCHES_FROM_ROWS, BATCHES_FROM_ROWS, True),  # the session is the index
        (100_000, 200_000, True),  # half of it
        (100_000, 200_001, False),  # less than half: the filter is selective, the server's exact scan is quicker
        (BATCHES_FROM_ROWS - 1, BATCHES_FROM_ROWS - 1, False),  # a small session (LoCoMo's ~633): left to the server
        (633, 633, False),
        (40_000, "40000", True),  # RESP2 / valkey-search answer text
        (40_000, None, False),  # a server that does not report its size
        (40_000, "n/a", False),
    ],
)
def test_batches_given_the_sizes_walks_the_graph_only_for_a_large_unselective_session(
    rows: int, index_docs: object, batches: bool
) -> None:
    # Given the index's size read from FT.INFO / When a query over `rows` documents is built / Then its policy
    assert policy_of(index_docs).batches(rows) is batches


def test_batches_given_a_server_that_refused_the_attributes_never_asks_for_them_nor_the_size() -> None:
    # Given a policy that learnt the server refuses the attributes
    policy = policy_of(100_000)
    policy.rejected = True
    # When a large session is searched / Then no attribute is sent, and the size is not read again
    assert not policy.batches(100_000)
    assert not policy.stale()


def test_stale_given_the_size_read_a_minute_ago_asks_for_it_again() -> None:
    # Given a size read at t = 0
    clock = [0.0]
    policy = policy_of(10, clock)
    # When less than a minute has passed, then it is used; from a minute on, it is due again
    clock[0] = INDEX_SIZE_SECONDS - 0.001
    assert not policy.stale()
    clock[0] = INDEX_SIZE_SECONDS
    assert policy.stale()
    # And a policy that never read it is due at once, and walks nothing in batches meanwhile
    fresh = _QueryPolicy(lambda: 0.0)
    assert fresh.stale() and not fresh.batches(100_000)
