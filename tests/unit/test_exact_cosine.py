"""The `exact` backend's scoring: BLAS on small matrices, einsum on big ones, the same numbers either way."""

from __future__ import annotations

import numpy as np
import pytest

from motorhead.adapters.redis_db.exact_index import EINSUM_ROWS, cosine


@pytest.mark.parametrize("rows", [1, 100, EINSUM_ROWS - 1, EINSUM_ROWS, EINSUM_ROWS + 1000])
def test_cosine_given_any_size_equals_the_matrix_product_in_float32(rows: int) -> None:
    rng = np.random.default_rng(rows)
    matrix = rng.standard_normal((rows, 32)).astype(np.float32)
    query = rng.standard_normal(32).astype(np.float32)
    scored = cosine(matrix, query)
    assert scored.dtype == np.float32 and scored.shape == (rows,)
    np.testing.assert_allclose(scored, matrix.astype(np.float64) @ query.astype(np.float64), rtol=1e-4, atol=1e-4)
