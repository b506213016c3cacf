"""Reciprocal rank fusion of the vector ranking and the keyword ranking."""

from __future__ import annotations

import pytest

from motorhead.core.values import StoredMessage
from motorhead.ltm.fusion import NOT_SCORED, RRF_K, reciprocal_rank_fusion
from motorhead.ltm.ports import Scored


def message(i: int) -> StoredMessage:
    return StoredMessage(id=i, role="Human", content=f"m{i}", created_at=0)


def test_fusion_given_a_message_in_both_rankings_puts_it_first() -> None:
    # Given message 2 second by vectors and first by keywords, 1 first by vectors only, 3 second by keywords only
    vector = [Scored(message(1), 0.1), Scored(message(2), 0.2)]
    keyword = [(message(2), 5.0), (message(3), 4.0)]
    # When fused
    hits = reciprocal_rank_fusion(vector, keyword, {3: 0.7})
    # Then 2 wins with the sum of both reciprocal ranks, then each single first place, then the single second place
    assert [h.message.id for h in hits] == [2, 1, 3]
    assert [h.score for h in hits] == pytest.approx(
        [1 / (RRF_K + 2) + 1 / (RRF_K + 1), 1 / (RRF_K + 1), 1 / (RRF_K + 2)]
    )
    # And each hit keeps its cosine distance, the keyword-only one from ``distances``
    assert [h.distance for h in hits] == [0.2, 0.1, 0.7]


def test_fusion_given_a_keyword_hit_without_a_vector_reports_the_farthest_distance() -> None:
    hits = reciprocal_rank_fusion([], [(message(9), 1.0)], {})
    assert [(h.message.id, h.distance) for h in hits] == [(9, NOT_SCORED)]


def test_fusion_given_equal_scores_prefers_the_nearer_then_the_newer_message() -> None:
    # Given first places in each list (equal scores): the nearer wins; with equal distances, the newer
    assert [h.message.id for h in reciprocal_rank_fusion([Scored(message(4), 0.3)], [(message(7), 1.0)], {7: 0.5})] == [
        4,
        7,
    ]
    fused = reciprocal_rank_fusion([Scored(message(4), 0.5)], [(message(7), 1.0)], {7: 0.5})
    assert [h.message.id for h in fused] == [7, 4]
