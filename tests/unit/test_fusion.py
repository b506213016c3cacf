"""Fusing the vector ranking and the keyword ranking: by rank (RRF) and by score (the default recipe)."""

from __future__ import annotations

import numpy as np
import pytest

from motorhead.core.values import StoredMessage
from motorhead.ltm.fusion import NOT_SCORED, RRF_K, named_speaker, reciprocal_rank_fusion, score_fusion
from motorhead.ltm.ports import Scored
from motorhead.ltm.recipe import FusionRecipe


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


def test_named_speaker_given_one_name_as_a_whole_word_returns_it_and_none_for_zero_or_two() -> None:
    roles = {"Caroline", "Melanie"}
    assert named_speaker("When did caroline go to the group?", roles) == "Caroline"
    assert named_speaker("Did Caroline and Melanie meet?", roles) is None
    assert named_speaker("Did Carolines meet?", roles) is None
    assert named_speaker("Who went?", roles) is None


def test_score_fusion_given_z_scores_weighs_them_and_adds_the_boost_and_the_next_row() -> None:
    # Given three candidates: row 0 best by cosine, row 1 best by BM25, row 2 boosted
    recipe = FusionRecipe(alpha=0.6, speaker_boost=0.5, next_weight=0.2)
    cosine = {0: 0.9, 1: 0.5, 2: 0.1}
    keyword = np.array([0.0, 3.0, 0.0])
    fused = score_fusion(candidates=[0, 1, 2], cosine=cosine, keyword=keyword, boosted={2}, recipe=recipe)
    # Then each is 0.6·z(cos) + 0.4·z(bm25) (+0.5 when boosted) + 0.2 × the next row's
    z_cos = (np.array([0.9, 0.5, 0.1]) - 0.5) / np.std([0.9, 0.5, 0.1])
    z_bm = (keyword - 1.0) / np.std(keyword)
    own = 0.6 * z_cos + 0.4 * z_bm + np.array([0.0, 0.0, 0.5])
    assert [fused[0], fused[1], fused[2]] == pytest.approx([own[0] + 0.2 * own[1], own[1] + 0.2 * own[2], own[2]])


def test_score_fusion_given_equal_scores_everywhere_gives_no_nan() -> None:
    fused = score_fusion(
        candidates=[0, 1], cosine={0: 0.3, 1: 0.3}, keyword=np.zeros(2), boosted=set(), recipe=FusionRecipe()
    )
    assert fused == {0: 0.0, 1: 0.0}


def test_score_fusion_given_a_next_row_of_the_named_speaker_lifts_its_candidate_with_the_boost() -> None:
    # Given candidates 0 and 1 whose next rows are 1 and 2; row 2 (not a candidate) is the named speaker's
    recipe = FusionRecipe(alpha=1.0, speaker_boost=0.5, next_weight=0.2)
    cosine = {0: 0.2, 1: 0.4, 2: 0.3}
    plain = score_fusion(candidates=[0, 1], cosine=cosine, keyword=np.zeros(3), boosted=set(), recipe=recipe)
    lifted = score_fusion(candidates=[0, 1], cosine=cosine, keyword=np.zeros(3), boosted={2}, recipe=recipe)
    # Then row 1 gets 0.2 × row 2's boost too, row 0 nothing more
    assert lifted[1] - plain[1] == pytest.approx(0.2 * 0.5) and lifted[0] == pytest.approx(plain[0])


def test_score_fusion_given_a_row_without_cosine_counts_it_as_the_lowest_known() -> None:
    recipe = FusionRecipe(alpha=1.0, speaker_boost=0.0, next_weight=0.0)
    known = score_fusion(candidates=[0, 1, 2], cosine={0: 0.9, 1: 0.5, 2: 0.5}, keyword=np.zeros(3), boosted=set(),
                         recipe=recipe)  # fmt: skip
    missing = score_fusion(candidates=[0, 1, 2], cosine={0: 0.9, 1: 0.5}, keyword=np.zeros(3), boosted=set(),
                           recipe=recipe)  # fmt: skip
    assert missing == pytest.approx(known)
