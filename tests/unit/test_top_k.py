"""One ranking rule for every top k: best score first, the newer message first on equal scores, at the cut too."""

from __future__ import annotations

import numpy as np

from motorhead.ltm.vectors import top_k


def test_top_k_given_distinct_scores_returns_the_best_first() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.7])
    assert top_k(scores, np.arange(1, 5), 3).tolist() == [1, 3, 2]


def test_top_k_given_ties_at_the_cut_keeps_the_newer_messages() -> None:
    # Given five equal scores (the same text repeated) of ids 10..14, and one better
    scores = np.array([0.5, 0.5, 0.9, 0.5, 0.5, 0.5], dtype=np.float32)
    ids = np.array([10, 11, 99, 12, 13, 14])
    # When asking for 3 / Then the best, then the two newest of the tie, newest first
    assert top_k(scores, ids, 3).tolist() == [2, 5, 4]


def test_top_k_given_k_over_the_size_or_nothing_returns_what_there_is() -> None:
    assert top_k(np.array([0.2, 0.3]), np.array([1, 2]), 10).tolist() == [1, 0]
    assert top_k(np.zeros(0), np.zeros(0, dtype=np.int64), 3).tolist() == []


def test_top_k_given_many_ties_at_the_cut_keeps_the_matches_then_the_newest_of_the_rest() -> None:
    # Given 10,000 BM25 scores where only two messages match (the rest score 0), ids in no particular order
    rng = np.random.default_rng(7)
    ids = rng.permutation(10_000).astype(np.int64)
    scores = np.zeros(10_000)
    scores[[17, 4_000]] = [1.5, 2.5]
    # When asking for 5 / Then the two matches, best first, then the three newest of the zeros, newest first
    newest = np.argsort(-ids)
    expected = [4_000, 17] + [int(p) for p in newest if p not in (17, 4_000)][:3]
    assert top_k(scores, ids, 5).tolist() == expected


def test_top_k_given_random_scores_with_ties_matches_a_full_sort() -> None:
    # Given scores drawn from few values (many ties), ids shuffled
    rng = np.random.default_rng(11)
    for _ in range(200):
        size = int(rng.integers(1, 60))
        scores = rng.integers(0, 4, size).astype(np.float64)
        ids = rng.permutation(size * 3)[:size].astype(np.int64)
        k = int(rng.integers(1, size + 3))
        # Then the top k is the head of the full sort by (score desc, id desc)
        full = sorted(range(size), key=lambda p: (-scores[p], -ids[p]))
        assert top_k(scores, ids, k).tolist() == full[:k]


def test_top_k_given_nan_scores_ranks_them_last_and_still_returns_k() -> None:
    # Given a score that is NaN (a damaged stored vector)
    scores = np.array([0.1, np.nan, 0.5, 0.3])
    # Then the others come first, and k positions come back whatever k is
    assert top_k(scores, np.arange(4), 1).tolist() == [2]
    assert top_k(scores, np.arange(4), 4).tolist() == [2, 3, 0, 1]
