"""``explain``: the parts of each hit's score add up to it exactly, and asking for them changes no answer."""

from __future__ import annotations

import numpy as np

from motorhead.core.values import NewMessage, SearchFilters, SessionJob, UserRef
from motorhead.ltm.fusion import fusion_parts, score_fusion
from motorhead.ltm.indexing import IndexerService
from motorhead.ltm.recipe import DEFAULT_RECIPE
from motorhead.ltm.retrieval import RetrievalService
from tests.fakes import FakeEmbedder, FakeMemoryStore, FakeVectorIndex
from tests.support import ref

CONVERSATION = [
    ("Ana", "We adopted a cat called Miso last spring"),
    ("Bo", "The train to Porto leaves at nine"),
    ("Ana", "Miso sleeps on the keyboard all day"),
    ("Bo", "Dinner is at the Thai place on Friday"),
    ("Ana", "Is the cat allowed on the train to Porto?"),
    ("Bo", "Only in a carrier, and Miso hates the carrier"),
]


def test_fusion_parts_given_candidates_sum_to_the_fused_score_exactly() -> None:
    # Given candidates with cosines, BM25 scores, a boosted speaker and next rows
    rng = np.random.default_rng(7)
    keyword = rng.random(12) * 4
    cosine = {row: float(rng.random()) for row in range(12) if row != 5}  # row 5 has no cosine: the floor
    candidates, boosted = [0, 2, 3, 5, 8, 11], {2, 3, 9}
    scores = score_fusion(candidates=candidates, cosine=cosine, keyword=keyword, boosted=boosted, recipe=DEFAULT_RECIPE)
    parts = fusion_parts(candidates=candidates, cosine=cosine, keyword=keyword, boosted=boosted, recipe=DEFAULT_RECIPE)
    # Then each row's terms add up to its score, to the last bit, and name what they read
    assert set(parts) == set(scores)
    for row, part in parts.items():
        assert part.vector + part.keyword + part.speaker + part.next == scores[row]
        assert part.bm25 == keyword[row]
    assert parts[2].speaker == DEFAULT_RECIPE.speaker_boost and parts[0].speaker == 0.0
    assert parts[11].next == 0.0  # the last row has no next row
    assert parts[5].cosine == min(cosine[row] for row in (0, 2, 3, 8, 11))


def indexed(*, user: str | None = None) -> tuple[FakeMemoryStore, RetrievalService]:
    store, embedder = FakeMemoryStore(), FakeEmbedder()
    index = FakeVectorIndex(store)
    for session_id in ("s", "t"):
        store.append(
            ref(session_id),
            [NewMessage(role, content) for role, content in CONVERSATION],
            context=None,
            namespace="",
            now_ms=1,
            index=True,
            user_id=user,
        )
        IndexerService(store=store, embedder=embedder, index=index).run(
            SessionJob(session=ref(session_id), last_id=len(CONVERSATION))
        )
    return store, RetrievalService(embedder=embedder, index=index, keywords=index, users=store)


def test_retrieve_given_explain_returns_the_same_hits_with_their_parts() -> None:
    _, retrieval = indexed()
    plain = retrieval.retrieve(ref("s"), "what does Ana say about Miso the cat?", 4)
    explained = retrieval.retrieve(ref("s"), "what does Ana say about Miso the cat?", 4, explain=True)
    assert all(hit.parts is None for hit in plain)
    assert [(h.message, h.distance, h.score) for h in explained] == [(h.message, h.distance, h.score) for h in plain]
    for hit in explained:
        assert hit.parts is not None
        assert hit.parts.vector + hit.parts.keyword + hit.parts.speaker + hit.parts.next == hit.score
        assert abs(hit.parts.cosine - (1.0 - hit.distance)) < 1e-9
    assert any(hit.parts.speaker > 0 for hit in explained if hit.parts)  # the question names Ana


def test_retrieve_user_given_explain_returns_the_same_hits_with_their_parts() -> None:
    _, retrieval = indexed(user="u")
    user = UserRef("", "u")
    plain = retrieval.retrieve_user(user, "train to Porto", 5, SearchFilters())
    explained = retrieval.retrieve_user(user, "train to Porto", 5, SearchFilters(), explain=True)
    assert [(h.session_id, h.hit.score) for h in explained] == [(h.session_id, h.hit.score) for h in plain]
    assert all(h.hit.parts is not None for h in explained) and all(h.hit.parts is None for h in plain)


def test_retrieve_given_vectors_only_the_whole_score_is_the_vectors() -> None:
    store, embedder = FakeMemoryStore(), FakeEmbedder()
    index = FakeVectorIndex(store)
    turns = [NewMessage(role, content) for role, content in CONVERSATION]
    store.append(ref("s"), turns, context=None, namespace="", now_ms=1, index=True)
    IndexerService(store=store, embedder=embedder, index=index).run(SessionJob(session=ref("s"), last_id=6))
    retrieval = RetrievalService(embedder=embedder, index=index, keywords=index, hybrid=False)
    for hit in retrieval.retrieve(ref("s"), "cat", 3, explain=True):
        assert hit.parts is not None
        assert (hit.parts.vector, hit.parts.keyword, hit.parts.bm25) == (hit.score, 0.0, 0.0)
