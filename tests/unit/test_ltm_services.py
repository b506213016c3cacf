"""Retrieval and indexing on in-memory fakes: modes, readiness, batches, leases and failures."""

from __future__ import annotations

import numpy as np
import pytest

from motorhead.core.job_loop import StepBudget
from motorhead.core.values import NewMessage, SessionJob
from motorhead.errors import EmbeddingError, JobIncompleteError
from motorhead.ltm import retrieval
from motorhead.ltm.indexing import EMBED_BATCH, IndexerService
from motorhead.ltm.recipe import DEFAULT_RECIPE, DenseText, FusionRecipe
from motorhead.ltm.retrieval import RetrievalService
from tests.fakes import FakeEmbedder, FakeMemoryStore, FakeVectorIndex
from tests.support import ref

TEXTS = [
    "We adopted a cat called Miso last spring",
    "The train to Porto leaves at nine",
    "Miso sleeps on the keyboard all day",
    "Dinner is at the Thai place on Friday",
]


def indexed(texts: list[str] = TEXTS) -> tuple[FakeMemoryStore, FakeVectorIndex, FakeEmbedder]:
    store, embedder = FakeMemoryStore(), FakeEmbedder()
    index = FakeVectorIndex(store)
    store.append(ref("s"), [NewMessage("Human", t) for t in texts], context=None, namespace="", now_ms=1, index=True)
    IndexerService(store=store, embedder=embedder, index=index).run(SessionJob(session=ref("s"), last_id=len(texts)))
    return store, index, embedder


def test_indexer_given_pending_messages_indexes_them_all_and_releases_the_lease() -> None:
    store, index, embedder = indexed()
    assert [m.content for m, _ in index.rows[ref("s")]] == TEXTS
    assert store.pending(ref("s"), limit=10)[1] == []
    assert store.sessions[ref("s")].index_lease_at is None
    assert index.ready == (embedder.identity, embedder.dimensions)


def test_indexer_given_a_backlog_embeds_in_batches() -> None:
    texts = [f"message number {i}" for i in range(EMBED_BATCH + 5)]
    _, _, embedder = indexed(texts)
    assert [len(call) for call in embedder.calls] == [EMBED_BATCH, 5]


def test_indexer_given_an_embedding_failure_keeps_the_messages_pending() -> None:
    store, embedder = FakeMemoryStore(), FakeEmbedder(fail=EmbeddingError("provider down"))
    store.append(ref("s"), [NewMessage("Human", "x")], context=None, namespace="", now_ms=1, index=True)
    with pytest.raises(EmbeddingError):
        IndexerService(store=store, embedder=embedder, index=FakeVectorIndex(store)).run(
            SessionJob(session=ref("s"), last_id=1)
        )
    assert len(store.pending(ref("s"), limit=10)[1]) == 1


def test_indexer_given_no_time_for_a_batch_embeds_nothing_and_asks_for_redelivery() -> None:
    store, embedder = FakeMemoryStore(), FakeEmbedder()
    store.append(ref("s"), [NewMessage("Human", "x")], context=None, namespace="", now_ms=1, index=True)
    indexer = IndexerService(
        store=store, embedder=embedder, index=FakeVectorIndex(store), budget=StepBudget(reserve=10.0)
    )
    with pytest.raises(JobIncompleteError):
        indexer.run(SessionJob(session=ref("s"), last_id=1), time_left=lambda: 3.0)
    assert embedder.calls == [] and len(store.pending(ref("s"), limit=10)[1]) == 1


def test_indexer_given_the_session_deleted_meanwhile_adds_nothing() -> None:
    # Given pending messages, then the session deleted and re-created (a new generation) before the job runs
    store, index = FakeMemoryStore(), None
    store.append(ref("s"), [NewMessage("Human", "old secret")], context=None, namespace="", now_ms=1, index=True)
    generation, batch = store.pending(ref("s"), limit=10)
    store.delete(ref("s"), namespace="")
    index = FakeVectorIndex(store)
    # When a stale batch is added / Then nothing of the old session is indexed
    assert index.add(ref("s"), generation, batch, FakeEmbedder().embed(["old secret"])) == 0


@pytest.mark.parametrize("mode", ["fusion", "vector", "keyword", "rrf"])
def test_retrieval_given_each_mode_finds_the_messages_about_the_query_first(mode: str) -> None:
    _, index, embedder = indexed()
    service = RetrievalService(embedder=embedder, index=index, keywords=index)
    hits = service.search(ref("s"), "Miso the cat", 2, mode=mode)  # type: ignore[arg-type]
    assert hits and hits[0].message.content in {TEXTS[0], TEXTS[2]}


def test_retrieval_given_another_session_returns_nothing_of_this_one() -> None:
    _, index, embedder = indexed()
    service = RetrievalService(embedder=embedder, index=index, keywords=index, hybrid=True)
    assert service.retrieve(ref("other"), "Miso the cat", 10) == []
    assert service.retrieve(ref("s", tenant="acme"), "Miso the cat", 10) == []


def test_retrieval_given_hybrid_off_ranks_by_vectors_and_scores_one_minus_distance() -> None:
    _, index, embedder = indexed()
    service = RetrievalService(embedder=embedder, index=index, keywords=index, hybrid=False)
    hits = service.retrieve(ref("s"), "Miso sleeps", 4)
    assert [h.distance for h in hits] == sorted(h.distance for h in hits)
    assert all(h.score == pytest.approx(1 - h.distance) for h in hits)
    assert hits[0].message.content == TEXTS[2]


def test_retrieval_given_the_named_speaker_answers_right_after_a_candidate_lifts_the_candidate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a turn about the cat, then Caroline's short answer to it (the next row), then an unrelated turn
    store, embedder = FakeMemoryStore(), FakeEmbedder()
    index = FakeVectorIndex(store)
    turns = [("Melanie", "did you adopt the cat Miso"), ("Caroline", "yes, last Tuesday"), ("Melanie", "the train")]
    store.append(ref("s"), [NewMessage(r, t) for r, t in turns], context=None, namespace="", now_ms=1, index=True)
    IndexerService(store=store, embedder=embedder, index=index).run(SessionJob(session=ref("s"), last_id=3))
    question = "when did Caroline adopt the cat Miso"
    # And one candidate a side, the first turn on both (BM25 pinned to it), so that Caroline's answer is fused only
    # as the candidate's next row
    monkeypatch.setattr(retrieval, "corpus_scores", lambda parts, text: [np.array([2.0, 0.0, 0.0])])
    (nearest,) = index.vector_search(ref("s"), embedder.embed([question])[0], 1)
    assert nearest.message.content == turns[0][1]

    def first(boost: float) -> tuple[str, float]:
        recipe = FusionRecipe(candidates=1, speaker_boost=boost)
        service = RetrievalService(embedder=embedder, index=index, keywords=index, recipe=recipe)
        hit = service.search(ref("s"), question, 1)[0]
        return hit.message.content, hit.score

    # When the question names Caroline / Then the turn before her answer gains the next-turn share of her boost
    (plain_turn, plain), (boosted_turn, boosted) = first(0.0), first(0.5)
    assert plain_turn == boosted_turn == turns[0][1]
    assert boosted - plain == pytest.approx(DEFAULT_RECIPE.next_weight * 0.5)


def test_indexer_given_the_current_recipe_embeds_each_message_with_its_speaker() -> None:
    store, embedder = FakeMemoryStore(), FakeEmbedder()
    store.append(
        ref("s"), [NewMessage("Caroline", "Yes, last Tuesday")], context=None, namespace="", now_ms=1, index=True
    )
    IndexerService(store=store, embedder=embedder, index=FakeVectorIndex(store)).run(SessionJob(ref("s"), last_id=1))
    assert embedder.calls == [["Caroline: Yes, last Tuesday"]]


def test_indexer_given_an_index_recorded_with_content_alone_embeds_the_content_alone() -> None:
    store, embedder = FakeMemoryStore(), FakeEmbedder()
    index = FakeVectorIndex(store)
    index.dense_text = DenseText.CONTENT
    store.append(
        ref("s"), [NewMessage("Caroline", "Yes, last Tuesday")], context=None, namespace="", now_ms=1, index=True
    )
    IndexerService(store=store, embedder=embedder, index=index).run(SessionJob(ref("s"), last_id=1))
    assert embedder.calls == [["Yes, last Tuesday"]]


def test_retrieval_given_a_big_session_looks_up_both_sides_at_once_with_the_same_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an indexed session, searched once as a small session is (one side after the other)
    _, index, embedder = indexed([f"{t} number {i}" for i in range(30) for t in TEXTS])
    service = RetrievalService(embedder=embedder, index=index, keywords=index)
    alone = [(h.message.id, h.score) for h in service.search(ref("s"), "Miso the cat", 10)]
    # When the session counts as big (the keyword side runs in a thread beside the vector side)
    monkeypatch.setattr(retrieval, "PARALLEL_ROWS", 1)
    side_by_side = [(h.message.id, h.score) for h in service.search(ref("s"), "Miso the cat", 10)]
    # Then the ranking is the same
    assert side_by_side == alone and len(alone) == 10


def test_indexer_given_the_index_recorded_anew_between_jobs_follows_the_new_record() -> None:
    # Given an indexer that indexed a job into an index of the previous version (content alone)
    store, embedder = FakeMemoryStore(), FakeEmbedder()
    index = FakeVectorIndex(store)
    index.dense_text = DenseText.CONTENT
    indexer = IndexerService(store=store, embedder=embedder, index=index)
    store.append(ref("s"), [NewMessage("Ana", "first")], context=None, namespace="", now_ms=1, index=True)
    indexer.run(SessionJob(ref("s"), last_id=1))
    # When the index is emptied and recorded anew by another process (the current recipe), then a job comes
    index.dense_text = DenseText.ROLE_AND_CONTENT
    store.append(ref("s"), [NewMessage("Ana", "second")], context=None, namespace="", now_ms=1, index=True)
    indexer.run(SessionJob(ref("s"), last_id=2))
    # Then the same indexer embeds as the new record says
    assert embedder.calls == [["first"], ["Ana: second"]]
