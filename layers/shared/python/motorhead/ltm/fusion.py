"""Fusing the vector ranking and the keyword ranking into one: by score (the default recipe), or by rank (RRF, the
recipe before it, kept to compare)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from motorhead.core.values import Hit, StoredMessage
from motorhead.ltm.ports import Scored
from motorhead.ltm.recipe import FusionRecipe

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


def named_speaker(text: str, roles: set[str]) -> str | None:
    """The one role (speaker) the question names, as a whole word, ignoring case; None if it names none or several."""
    lowered = text.lower()
    named = [role for role in roles if role and re.search(rf"\b{re.escape(role.lower())}\b", lowered)]
    return named[0] if len(named) == 1 else None


def score_fusion(
    *,
    candidates: Sequence[int],
    cosine: Mapping[int, float],
    keyword: NDArray[np.float64],
    boosted: set[int],
    recipe: FusionRecipe,
    last_rows: frozenset[int] | None = None,
) -> dict[int, float]:
    """The fused score of each candidate row: ``alpha·z(cos) + (1−alpha)·z(bm25)`` with the z-scores taken over the
    candidates, ``+ speaker_boost`` for the ``boosted`` rows, ``+ next_weight ×`` the next row's own fused score.
    ``cosine`` holds every candidate's and every candidate's next row's cosine (a row without one counts as the
    candidates' lowest). ``boosted`` holds the rows of the named speaker among the candidates and their next rows.
    ``last_rows``: the rows that have no next row (the last of each session when the rows are several sessions';
    default: the last row)."""
    rows = list(candidates)
    if not rows:
        return {}
    floor = min((cosine[row] for row in rows if row in cosine), default=0.0)
    cos = np.array([cosine.get(row, floor) for row in rows])
    bm = keyword[rows]
    cos_mean, cos_std = float(cos.mean()), float(cos.std()) or 1.0
    bm_mean, bm_std = float(bm.mean()), float(bm.std()) or 1.0

    def fused(row: int) -> float:
        z_cos = (cosine.get(row, floor) - cos_mean) / cos_std
        z_bm = (float(keyword[row]) - bm_mean) / bm_std
        boost = recipe.speaker_boost if row in boosted else 0.0
        return recipe.alpha * z_cos + (1 - recipe.alpha) * z_bm + boost

    ends = last_rows if last_rows is not None else frozenset({len(keyword) - 1})
    return {row: fused(row) + (recipe.next_weight * fused(row + 1) if row not in ends else 0.0) for row in rows}
