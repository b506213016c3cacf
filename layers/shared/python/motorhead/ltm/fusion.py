"""Fusing the vector ranking and the keyword ranking into one: by score (the default recipe), or by rank (RRF, the
recipe before it, kept to compare)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from motorhead.core.values import FusionParts, Hit, StoredMessage
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
    terms = _Terms(rows, cosine, keyword, boosted, recipe)
    ends = last_rows if last_rows is not None else frozenset({len(keyword) - 1})
    at = np.array(rows, dtype=np.int64)
    has_next = np.array([row not in ends for row in rows], dtype=bool)
    lift = np.where(has_next, recipe.next_weight * terms.own_many(np.where(has_next, at + 1, at)), 0.0)
    scores: list[float] = (terms.own_many(at) + lift).tolist()  # as ``own`` row by row, the same operations
    return dict(zip(rows, scores, strict=True))


def fusion_parts(
    *,
    candidates: Sequence[int],
    cosine: Mapping[int, float],
    keyword: NDArray[np.float64],
    boosted: set[int],
    recipe: FusionRecipe,
    last_rows: frozenset[int] | None = None,
) -> dict[int, FusionParts]:
    """What ``score_fusion`` (same arguments) added up for each candidate row: its terms sum to the row's score,
    exactly (the same floating-point operations, in the same order)."""
    rows = list(candidates)
    if not rows:
        return {}
    terms = _Terms(rows, cosine, keyword, boosted, recipe)
    ends = last_rows if last_rows is not None else frozenset({len(keyword) - 1})
    return {
        row: FusionParts(
            cosine=terms.cosine(row),
            bm25=float(keyword[row]),
            vector=terms.vector(row),
            keyword=terms.keyword(row),
            speaker=terms.speaker(row),
            next=recipe.next_weight * terms.own(row + 1) if row not in ends else 0.0,
        )
        for row in rows
    }


class _Terms:
    """The terms of one fusion: the z-scores' means and deviations over the candidates, and each row's terms."""

    def __init__(
        self,
        rows: list[int],
        cosine: Mapping[int, float],
        keyword: NDArray[np.float64],
        boosted: set[int],
        recipe: FusionRecipe,
    ) -> None:
        self._cosine = cosine
        self._keyword = keyword
        self._boosted = boosted
        self._recipe = recipe
        self._floor = min((cosine[row] for row in rows if row in cosine), default=0.0)
        cos = np.array([cosine.get(row, self._floor) for row in rows])
        bm = keyword[rows]
        self._cos_mean, self._cos_std = float(cos.mean()), float(cos.std()) or 1.0
        self._bm_mean, self._bm_std = float(bm.mean()), float(bm.std()) or 1.0

    def cosine(self, row: int) -> float:
        return self._cosine.get(row, self._floor)

    def vector(self, row: int) -> float:
        return self._recipe.alpha * ((self.cosine(row) - self._cos_mean) / self._cos_std)

    def keyword(self, row: int) -> float:
        return (1 - self._recipe.alpha) * ((float(self._keyword[row]) - self._bm_mean) / self._bm_std)

    def speaker(self, row: int) -> float:
        return self._recipe.speaker_boost if row in self._boosted else 0.0

    def own(self, row: int) -> float:
        """The row's own fused score, without the next row's lift."""
        return self.vector(row) + self.keyword(row) + self.speaker(row)

    def own_many(self, rows: NDArray[np.int64]) -> NDArray[np.float64]:
        """``own`` of each row, in numpy: the same floating-point operations in the same order, so the same values."""
        listed = rows.tolist()
        cos = np.array([self._cosine.get(row, self._floor) for row in listed], dtype=np.float64)
        vector = self._recipe.alpha * ((cos - self._cos_mean) / self._cos_std)
        keyword = (1 - self._recipe.alpha) * ((self._keyword[rows] - self._bm_mean) / self._bm_std)
        boost = self._recipe.speaker_boost
        speaker = np.array([boost if row in self._boosted else 0.0 for row in listed], dtype=np.float64)
        out: NDArray[np.float64] = vector + keyword + speaker
        return out
