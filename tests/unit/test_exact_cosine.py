"""The `exact` backend's scoring: BLAS on small matrices, einsum on big ones (two threads on the biggest), the same
numbers either way."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from motorhead.adapters.redis_db import exact_index
from motorhead.adapters.redis_db.exact_index import EINSUM_ROWS, SPLIT_ROWS, cosine


@pytest.mark.parametrize(
    "rows", [1, 100, EINSUM_ROWS - 1, EINSUM_ROWS, EINSUM_ROWS + 1000, SPLIT_ROWS - 1, SPLIT_ROWS, SPLIT_ROWS + 1]
)
def test_cosine_given_any_size_equals_the_matrix_product_in_float32(rows: int) -> None:
    rng = np.random.default_rng(rows)
    matrix = rng.standard_normal((rows, 32)).astype(np.float32)
    query = rng.standard_normal(32).astype(np.float32)
    scored = cosine(matrix, query)
    assert scored.dtype == np.float32 and scored.shape == (rows,)
    np.testing.assert_allclose(scored, matrix.astype(np.float64) @ query.astype(np.float64), rtol=1e-4, atol=1e-4)


def test_cosine_given_a_matrix_scanned_by_two_threads_scores_every_row_exactly_as_one_thread_does() -> None:
    # Given a matrix big enough to be split, with distinct rows at both ends and across the middle
    rng = np.random.default_rng(3)
    matrix = rng.standard_normal((SPLIT_ROWS + 7, 16)).astype(np.float32)
    query = rng.standard_normal(16).astype(np.float32)
    # When it is scored / Then every row has the score one einsum gives it, bit for bit (the same sum per row)
    expected = np.einsum("ij,j->i", matrix, query)
    for _ in range(3):  # the helper thread is reused
        assert np.array_equal(cosine(matrix, query), expected)


def test_cosine_given_a_very_big_matrix_hands_half_of_it_to_the_helper_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a pool that records what it is given
    handed: list[int] = []
    pool = ThreadPoolExecutor(max_workers=1)

    class Spy:
        def submit(self, fn: Callable[..., object], *args: Any, **kwargs: Any) -> Future[object]:
            handed.append(len(args[1]))  # the rows of the matrix handed over
            return pool.submit(fn, *args, **kwargs)

    monkeypatch.setattr(exact_index, "_scan_pool", Spy)
    rng = np.random.default_rng(5)
    small = rng.standard_normal((EINSUM_ROWS, 8)).astype(np.float32)
    big = rng.standard_normal((SPLIT_ROWS + 1, 8)).astype(np.float32)
    query = rng.standard_normal(8).astype(np.float32)
    # When each is scored / Then only the big one is split, its second half to the helper
    cosine(small, query)
    cosine(big, query)
    pool.shutdown()
    assert handed == [SPLIT_ROWS + 1 - (SPLIT_ROWS + 1) // 2]
