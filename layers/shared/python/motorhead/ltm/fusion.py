"""Fusing the vector ranking and the keyword ranking into one."""

from __future__ import annotations

from motorhead.core.values import Hit, StoredMessage
from motorhead.ltm.ports import Scored

RRF_K = 60  # reciprocal rank fusion constant (Cormack et al.): robust without tuning
NOT_SCORED = 2.0  # the distance reported for a message whose vector distance is unknown (the farthest possible)


def reciprocal_rank_fusion(
    vector: list[Scored], keyword: list[tuple[StoredMessage, float]], distances: dict[int, float]
) -> list[Hit]:
    """Sum of 1 / (RRF_K + rank) over both rankings, best first (nearer first, then newer, on ties); ``distances``
    gives the cosine distance of the keyword-only hits."""
    fused: dict[int, float] = {}
    by_id: dict[int, StoredMessage] = {}
    distance: dict[int, float] = dict(distances)
    for rank, hit in enumerate(vector):
        fused[hit.message.id] = fused.get(hit.message.id, 0.0) + 1.0 / (RRF_K + rank + 1)
        by_id[hit.message.id] = hit.message
        distance[hit.message.id] = hit.distance
    for rank, (message, _) in enumerate(keyword):
        fused[message.id] = fused.get(message.id, 0.0) + 1.0 / (RRF_K + rank + 1)
        by_id[message.id] = message
    ordered = sorted(fused, key=lambda i: (-fused[i], distance.get(i, NOT_SCORED), -i))
    return [Hit(message=by_id[i], distance=distance.get(i, NOT_SCORED), score=fused[i]) for i in ordered]
