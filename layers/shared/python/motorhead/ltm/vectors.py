"""numpy helpers every embedder shares."""

from __future__ import annotations

import numpy as np

from motorhead.ltm.ports import Vectors


def normalize(rows: Vectors) -> Vectors:
    """Rows scaled to unit length (an all-zero row stays zero)."""
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.asarray(rows / np.maximum(norms, 1e-12), dtype=np.float32)


def empty(dimensions: int) -> Vectors:
    return np.zeros((0, dimensions), dtype=np.float32)
