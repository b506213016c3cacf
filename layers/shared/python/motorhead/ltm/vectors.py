"""numpy helpers the embedders and the rankings share."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Vectors = NDArray[np.float32]  # rows of float32 vectors (``ltm/ports.py`` re-exports it for the ports)


def normalize(rows: Vectors) -> Vectors:
    """Rows scaled to unit length (an all-zero row stays zero)."""
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.asarray(rows / np.maximum(norms, 1e-12), dtype=np.float32)


def empty(dimensions: int) -> Vectors:
    return np.zeros((0, dimensions), dtype=np.float32)


def top_k(scores: NDArray[np.floating], ids: NDArray[np.int64], k: int) -> NDArray[np.intp]:
    """The positions of the ``k`` highest ``scores``, best first; on equal scores the higher id (the newer message)
    first, at the cut too, so that the same data always ranks the same. One partition over all scores; only the
    ``k`` kept are sorted, even when many scores tie at the cut (BM25's zeros when few messages match)."""
    count = min(k, len(scores))
    if count <= 0:
        return np.zeros(0, dtype=np.intp)
    if np.isnan(scores).any():  # a damaged vector: ranked last, never dropped (NaN compares false with everything)
        scores = np.where(np.isnan(scores), -np.inf, scores)
    kth = np.partition(scores, len(scores) - count)[len(scores) - count]
    above = np.flatnonzero(scores > kth)
    tied = np.flatnonzero(scores == kth)
    need = count - len(above)
    if len(tied) > need:  # keep the newest of those tied at the cut
        tied = tied[np.argpartition(-ids[tied], need - 1)[:need]]
    pool = np.concatenate((above, tied))
    return pool[np.lexsort((-ids[pool], -scores[pool]))]
