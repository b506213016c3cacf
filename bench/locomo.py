"""Retrieval quality on LoCoMo, through the real service path, for every recipe tried (figures, never pass/fail).

Data: the seven LoCoMo development conversations in ``bench/data/locomo/`` (CC BY-NC 4.0, see its README). Each
conversation is one session: its turns are stored as messages (role = the speaker's name, content = the turn's text,
written at its LoCoMo session's date) with ``RedisMemoryStore.append(..., index=True)``, indexed by
``IndexerService`` with the local ONNX model, and every question of categories 1-4 is asked through
``RetrievalService.search(..., k=10)``. A question's evidence is its cleaned ``evidence`` turn ids (``D30:05`` is
D30:5, ``D:11:26`` is D11:26, ids of no turn dropped; questions left without evidence skipped).

Measures, per question then averaged: recall@k = share of the evidence turns in the top k; hit@10 = 1 if any is;
MRR = 1 / rank of the first evidence turn in the top 10 (0 if none).

1. Quality of each recipe (``RECIPES``) on the `exact` backend; the default also on `search` (Redis 8.2 +
   RediSearch) when installed; per category, and per half (conversations 1-3, 4-7) for the default and for BM25.
2. Indexing throughput (messages/s, embedding share) and end-to-end query latency (query embedding included) on the
   LoCoMo sessions (~630 messages each).
3. Budgets at scale, `exact` backend: a session of 10,000 messages (LoCoMo turns cycled; their vectors are the
   model's, reused) searched end to end with the real query embedding; a session of 100,000 messages where the
   vector and keyword lookup alone is timed (cosine over all rows + top 100, BM25 over all rows + top 100), warm,
   with the process's memory for that session; the same on `search`, with the recall of its top 100 by vector
   against the exact top 100 (numpy over the vectors it stores), as its KNN walks the HNSW graph there.
4. The local encoder: its package, model size and licence, and texts/s on one core and on all cores.

Run: ``make bench-locomo`` (``ARGS="--quick"`` skips the 100,000-message session; ``--json PATH`` writes the
results), about 3 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from importlib.metadata import metadata, version
from pathlib import Path
from typing import Any, cast

import numpy as np

from bench.harness import percentile
from bench.retrieval import MemoEmbedder, Servers, TimedEmbedder, Wiring, servers
from motorhead.adapters.redis_db.keys import Keys
from motorhead.composition.long_term import vector_index
from motorhead.core.values import NewMessage, SessionJob
from motorhead.errors import JobIncompleteError
from motorhead.ltm.bm25 import SessionTexts
from motorhead.ltm.ports import Embedder, KeywordIndex, Scored
from motorhead.ltm.recipe import DEFAULT_RECIPE, DenseText, FusionRecipe
from motorhead.ltm.retrieval import Mode, RetrievalService
from motorhead.settings import Settings
from tests.support import ref

DATA = Path(__file__).resolve().parent / "data" / "locomo" / "locomo-dev.json"
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
K = 10
EVIDENCE = re.compile(r"D\s*:?\s*(\d+)\s*:\s*(\d+)")
POST_CHUNK = 100


# -- the data -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    dia_id: str  # "D<session>:<turn>"
    speaker: str
    text: str
    at_ms: int  # the LoCoMo session's date


@dataclass(frozen=True)
class Question:
    text: str
    evidence: frozenset[str]
    category: str  # LoCoMo's category, or the labelled set's kind (keyword / semantic)


@dataclass(frozen=True)
class Conversation:
    id: str
    turns: list[Turn]
    questions: list[Question]


def session_date(text: str) -> int:
    """``"7:31 pm on 21 January, 2022"`` in ms, read as UTC."""
    when = datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def load(path: Path = DATA) -> list[Conversation]:
    conversations = []
    for sample in json.loads(path.read_text(encoding="utf-8")):
        conv = sample["conversation"]
        numbers = sorted(int(m.group(1)) for key in conv if (m := re.fullmatch(r"session_(\d+)", key)))
        turns = [
            Turn(turn["dia_id"], turn["speaker"], turn["text"], session_date(conv[f"session_{n}_date_time"]))
            for n in numbers
            for turn in conv[f"session_{n}"]
        ]
        known = {turn.dia_id for turn in turns}
        questions = []
        for qa in sample["qa"]:
            if qa.get("category") not in CATEGORIES:
                continue
            found = {f"D{s}:{t}" for item in qa.get("evidence", []) for s, t in EVIDENCE.findall(str(item))}
            found = {f"D{int(d[1:].split(':')[0])}:{int(d.split(':')[1])}" for d in found} & known
            if found:
                questions.append(Question(str(qa["question"]), frozenset(found), CATEGORIES[int(qa["category"])]))
        conversations.append(Conversation(str(sample["sample_id"]), turns, questions))
    return conversations


OWN_SET = Path(__file__).resolve().parent / "data" / "retrieval_set.json"
OWN_SET_DATE_MS = int(datetime(2024, 1, 15, 12, tzinfo=UTC).timestamp() * 1000)


def load_own_set(path: Path = OWN_SET) -> list[Conversation]:
    """Our own labelled set (``bench/retrieval.py``) in the same shape: roles Human/AI, one date, no categories but
    the question's kind (``keyword``: shares words with its answer; ``semantic``: shares none)."""
    conversations = []
    for conv in json.loads(path.read_text(encoding="utf-8"))["conversations"]:
        cid = str(conv["id"])
        turns = [
            Turn(f"{cid}:{i + 1}", m["role"], m["content"], OWN_SET_DATE_MS) for i, m in enumerate(conv["messages"])
        ]
        questions = [
            Question(str(q["question"]), frozenset(f"{cid}:{a + 1}" for a in q["answers"]), str(q["kind"]))
            for q in conv["questions"]
        ]
        conversations.append(Conversation(cid, turns, questions))
    return conversations


# -- recipes --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    name: str
    mode: Mode
    dense: DenseText = DenseText.ROLE_AND_CONTENT
    fusion: FusionRecipe = DEFAULT_RECIPE
    context: int = 2
    dated: bool = True
    stemmed: bool = True

    def texts(self) -> SessionTexts:
        return SessionTexts(context=self.context, dated=self.dated, stemmed=self.stemmed)


PLAIN_BM25 = Recipe("BM25 over `speaker: text` alone", "keyword", context=0, dated=False, stemmed=False)
DEFAULT = Recipe("**default: score fusion (all of the above)**", "fusion")
RECIPES = [
    PLAIN_BM25,
    Recipe("vectors alone, message content (the previous default)", "vector", dense=DenseText.CONTENT),
    Recipe(
        "RRF of those two (the previous `hybrid`)",
        "rrf",
        dense=DenseText.CONTENT,
        context=0,
        dated=False,
        stemmed=False,
    ),  # fmt: skip
    Recipe("vectors alone, `speaker: content`", "vector"),
    Recipe("BM25 with 2 previous turns, the date, stemming", "keyword"),
    Recipe("RRF of those two", "rrf"),
    DEFAULT,
    Recipe("default without the next-turn lift", "fusion", fusion=replace(DEFAULT_RECIPE, next_weight=0.0)),
    Recipe("default without the speaker boost", "fusion", fusion=replace(DEFAULT_RECIPE, speaker_boost=0.0)),
    Recipe("default without the date in BM25", "fusion", dated=False),
    Recipe("default without stemming", "fusion", stemmed=False),
    Recipe("default, BM25 on the message alone", "fusion", context=0),
    Recipe("default, BM25 with 1 previous turn", "fusion", context=1),
    Recipe("default, BM25 with 3 previous turns", "fusion", context=3),
    Recipe(
        "default, vectors of the content alone (an index of the previous version)", "fusion", dense=DenseText.CONTENT
    ),  # fmt: skip
    Recipe("default with alpha 0.5", "fusion", fusion=replace(DEFAULT_RECIPE, alpha=0.5)),
    Recipe("default with alpha 0.7", "fusion", fusion=replace(DEFAULT_RECIPE, alpha=0.7)),
]


# -- measures -------------------------------------------------------------------------------------------------------


@dataclass
class Scores:
    questions: int
    recall_at_5: float
    recall_at_10: float
    hit_at_10: float
    mrr: float


def scores(found: Sequence[Sequence[str]], questions: Sequence[Question]) -> Scores:
    def recall(top: Sequence[str], q: Question, k: int) -> float:
        return len(q.evidence & set(top[:k])) / len(q.evidence)

    def reciprocal(top: Sequence[str], q: Question) -> float:
        return next((1.0 / rank for rank, dia in enumerate(top[:K], 1) if dia in q.evidence), 0.0)

    pairs = list(zip(found, questions, strict=True))
    return Scores(
        questions=len(pairs),
        recall_at_5=statistics.fmean(recall(top, q, 5) for top, q in pairs),
        recall_at_10=statistics.fmean(recall(top, q, K) for top, q in pairs),
        hit_at_10=statistics.fmean(float(bool(q.evidence & set(top[:K]))) for top, q in pairs),
        mrr=statistics.fmean(reciprocal(top, q) for top, q in pairs),
    )


@dataclass
class RecipeResult:
    name: str
    backend: str
    overall: Scores
    by_category: dict[str, Scores]
    by_half: dict[str, Scores]  # "1-3", "4-7" (LoCoMo only)


def breakdown(
    name: str, backend: str, found: list[list[str]], asked: list[tuple[int, Question]], *, halves: bool = True
) -> RecipeResult:
    questions = [q for _, q in asked]
    labels = list(dict.fromkeys(q.category for q in questions))

    def subset(keep: Callable[[int, Question], bool]) -> Scores:
        chosen = [i for i, (conv, q) in enumerate(asked) if keep(conv, q)]
        return scores([found[i] for i in chosen], [questions[i] for i in chosen])

    return RecipeResult(
        name=name,
        backend=backend,
        overall=scores(found, questions),
        by_category={label: subset(_in_category(label)) for label in sorted(labels)},
        by_half={"1-3": subset(lambda c, _q: c < 3), "4-7": subset(lambda c, _q: c >= 3)} if halves else {},
    )


def _in_category(category: str) -> Callable[[int, Question], bool]:
    return lambda _conv, q: q.category == category


# -- the service path -----------------------------------------------------------------------------------------------


class Deployment:
    """A key prefix on one server where the conversations are stored and indexed as one dense text."""

    def __init__(self, url: str, backend: str, prefix: str, embedder: Embedder, dense: DenseText) -> None:
        if dense is DenseText.CONTENT:  # what an index of the version before the recipe records
            wiring = Wiring(url, backend, prefix, embedder)
            wiring.connector.client().hset(
                Keys(prefix).ltm_meta(), mapping={"embedder": embedder.identity, "dimensions": embedder.dimensions}
            )
            wiring.close()
        self.wiring = Wiring(url, backend, prefix, embedder)
        self.prefix = prefix
        self.embedder = embedder

    def store(self, session_id: str, turns: Sequence[Turn]) -> dict[int, str]:
        """Store the turns (each chunk written at its date) and index them; the message id → dia id map."""
        by_id: dict[int, str] = {}
        at = 0
        while at < len(turns):
            chunk = [t for t in turns[at : at + POST_CHUNK] if t.at_ms == turns[at].at_ms]
            result = self.wiring.store.append(
                ref(session_id),
                [NewMessage(t.speaker, t.text) for t in chunk],
                context=None,
                namespace="locomo",
                now_ms=chunk[0].at_ms,
                index=True,
            )
            for offset, turn in enumerate(chunk):
                by_id[result.last_id - len(chunk) + 1 + offset] = turn.dia_id
            at += len(chunk)
        job = SessionJob(session=ref(session_id), last_id=len(turns))
        while True:  # a backlog bigger than one job's rounds ends the job early on purpose, as SQS would redeliver it
            try:
                self.wiring.indexer.run(job)
                return by_id
            except JobIncompleteError:
                continue

    def service(self, recipe: Recipe, embedder: Embedder | None = None) -> RetrievalService:
        """Wired as ``composition.long_term.retrieval_indexes`` wires it: the vector index serves the keyword side
        too (the recipe's texts), so a session's texts and nearest vectors are one read, as deployed."""
        index = vector_index(
            self.wiring.settings, self.wiring.connector, dimensions=self.embedder.dimensions, new_texts=recipe.texts
        )
        return RetrievalService(
            embedder=embedder or self.embedder,
            index=index,
            keywords=cast("KeywordIndex", index),
            recipe=recipe.fusion,
        )


# -- 1 and 2: quality, indexing, latency ----------------------------------------------------------------------------


@dataclass
class LatencyResult:
    queries: int
    p50_ms: float
    p95_ms: float
    embed_p50_ms: float


@dataclass
class IndexingResult:
    messages: int
    seconds: float
    messages_per_second: float
    embed_share: float


@dataclass
class ScaleRow:
    messages: int
    what: str
    p50_ms: float
    p95_ms: float
    session_mb: float | None = None


@dataclass
class RecallRow:
    """How close a backend's top ``k`` by vector (the fusion's vector candidates) is to the exact top ``k``."""

    messages: int
    backend: str
    questions: int
    k: int
    recall: float  # share of its top k whose cosine reaches the exact k-th best (a tie counts as found)
    id_overlap: float  # share of the exact top k's ids it returned (ties broken differently count as missed)


@dataclass
class EncoderRow:
    """The local encoder as the issue asks it reported: what it is, its package, size and licence, and its speed."""

    identity: str
    package: str
    model_mb: float
    licence: str
    texts: int
    per_second_one_core: float
    per_second_all_cores: float


@dataclass
class LocomoResult:
    conversations: int
    turns: int
    questions: int
    by_category: dict[str, int]
    recipes: list[RecipeResult]
    own_set: list[RecipeResult]  # our own labelled set, the same recipes
    own_set_size: dict[str, int]  # conversations, messages, questions
    indexing: IndexingResult
    latency: LatencyResult | None
    scale: list[ScaleRow] = field(default_factory=list)
    recall: list[RecallRow] = field(default_factory=list)
    search_module: str | None = None
    encoder: EncoderRow | None = None


def ask(
    deployment: Deployment,
    recipe: Recipe,
    conversations: Sequence[Conversation],
    ids: Sequence[dict[int, str]],
    embedder: Embedder | None = None,
) -> list[list[str]]:
    service = deployment.service(recipe, embedder)
    return [
        [ids[c][hit.message.id] for hit in service.search(ref(f"locomo-{conv.id}"), q.text, K, mode=recipe.mode)]
        for c, conv in enumerate(conversations)
        for q in conv.questions
    ]


def benchmark(quick: bool, parts: set[str], progress: Callable[[str], None]) -> LocomoResult:
    """``parts``: ``quality`` (every recipe, both sets) and/or ``speed`` (indexing, latency, budgets at scale, the
    encoder's speed)."""
    from motorhead.composition.long_term import embedder as configured_embedder

    conversations = load()
    asked = [(c, q) for c, conv in enumerate(conversations) for q in conv.questions]
    model = configured_embedder(Settings(MOTORHEAD_EMBEDDER="local"))
    timed = TimedEmbedder(model)
    memo = MemoEmbedder(timed)
    turns = sum(len(conv.turns) for conv in conversations)
    results: list[RecipeResult] = []
    own_results: list[RecipeResult] = []
    own = load_own_set()
    own_asked = [(c, q) for c, conv in enumerate(own) for q in conv.questions]
    latency, encoder = None, None
    scale: list[ScaleRow] = []
    recall: list[RecallRow] = []
    with servers() as where:
        forms = list(DenseText) if "quality" in parts else [DenseText.ROLE_AND_CONTENT]
        # the default first: its indexing is timed
        forms.sort(key=lambda dense: dense is not DenseText.ROLE_AND_CONTENT)
        deployments = {
            dense: Deployment(where.exact_url, "exact", f"locomo-{dense.value}", memo, dense) for dense in forms
        }
        ids: dict[DenseText, list[dict[int, str]]] = {}
        indexing: IndexingResult | None = None
        for dense, deployment in deployments.items():
            start, embed_before = time.perf_counter(), timed.seconds
            ids[dense] = [deployment.store(f"locomo-{conv.id}", conv.turns) for conv in conversations]
            seconds = time.perf_counter() - start
            progress(f"stored and indexed {turns} turns as {dense.value}")
            if dense is DenseText.ROLE_AND_CONTENT:
                indexing = IndexingResult(turns, seconds, turns / seconds, (timed.seconds - embed_before) / seconds)
        assert indexing is not None
        if "quality" in parts:
            for recipe in RECIPES:
                found = ask(deployments[recipe.dense], recipe, conversations, ids[recipe.dense])
                results.append(breakdown(recipe.name, "exact", found, asked))
                progress(f"{recipe.name}: R@10 {results[-1].overall.recall_at_10:.3f}")
            if where.search_url is not None:
                searching = Deployment(where.search_url, "search", "locomo-search", memo, DenseText.ROLE_AND_CONTENT)
                search_ids = [searching.store(f"locomo-{conv.id}", conv.turns) for conv in conversations]
                found = ask(searching, DEFAULT, conversations, search_ids)
                results.append(breakdown(DEFAULT.name, "search", found, asked))
                progress(f"{DEFAULT.name} on search: R@10 {results[-1].overall.recall_at_10:.3f}")
                searching.wiring.close()
            own_results = own_set_results(where, memo, own, own_asked)
            progress(f"own labelled set: default R@10 {own_results[RECIPES.index(DEFAULT)].overall.recall_at_10:.3f}")
        if "speed" in parts:
            latency = query_latency(deployments[DenseText.ROLE_AND_CONTENT], conversations, model)
            progress(f"query latency p50 {latency.p50_ms:.1f} ms")
            scale, recall = scale_rows(where, memo, model, conversations, quick, progress)
            encoder = encoder_row(conversations)
            progress(f"encoder: {encoder.per_second_one_core:.0f} texts/s on one core")
        for deployment in deployments.values():
            deployment.wiring.close()
    return LocomoResult(
        conversations=len(conversations),
        turns=turns,
        questions=len(asked),
        by_category={label: sum(q.category == label for _, q in asked) for label in CATEGORIES.values()},
        recipes=results,
        own_set=own_results,
        own_set_size={
            "conversations": len(own),
            "messages": sum(len(conv.turns) for conv in own),
            "questions": len(own_asked),
        },
        indexing=indexing,
        latency=latency,
        scale=scale,
        recall=recall,
        search_module=where.search_version,
        encoder=encoder,
    )


def own_set_results(
    where: Servers, memo: MemoEmbedder, own: Sequence[Conversation], asked: list[tuple[int, Question]]
) -> list[RecipeResult]:
    deployments = {
        dense: Deployment(where.exact_url, "exact", f"own-{dense.value}", memo, dense) for dense in DenseText
    }
    ids = {
        dense: [deployment.store(f"own-{conv.id}", conv.turns) for conv in own]
        for dense, deployment in deployments.items()
    }
    results = []
    for recipe in RECIPES:
        service = deployments[recipe.dense].service(recipe)
        found = [
            [
                ids[recipe.dense][c][h.message.id]
                for h in service.search(ref(f"own-{conv.id}"), q.text, K, mode=recipe.mode)
            ]
            for c, conv in enumerate(own)
            for q in conv.questions
        ]
        results.append(breakdown(recipe.name, "exact", found, asked, halves=False))
    for deployment in deployments.values():
        deployment.wiring.close()
    return results


def query_latency(deployment: Deployment, conversations: Sequence[Conversation], model: Embedder) -> LatencyResult:
    """The default recipe end to end, the query embedded by the model each time (no memo), warm."""
    timed = TimedEmbedder(model)
    service = deployment.service(DEFAULT, timed)
    for conv in conversations:  # warm: caches of the session read
        service.search(ref(f"locomo-{conv.id}"), conv.questions[0].text, K)
    took, embeds = [], []
    for conv in conversations:
        for q in conv.questions:
            before = timed.seconds
            start = time.perf_counter()
            service.search(ref(f"locomo-{conv.id}"), q.text, K)
            took.append((time.perf_counter() - start) * 1000)
            embeds.append((timed.seconds - before) * 1000)
    return LatencyResult(len(took), percentile(took, 50), percentile(took, 95), percentile(embeds, 50))


def encoder_row(conversations: Sequence[Conversation], texts: int = 1_000) -> EncoderRow:
    """The local encoder's speed on LoCoMo turns as the indexer embeds them (``speaker: content``), cold cache: one
    onnxruntime thread (one core, as a Lambda of 1,769 MB or less gets), then all the machine's cores."""
    from motorhead.adapters.onnx_local.embedder import MODEL_FILES, LocalOnnxEmbedder, package_file

    sample = [f"{turn.speaker}: {turn.text}" for conv in conversations for turn in conv.turns][:texts]
    speeds = []
    for threads in (1, None):
        embedder = LocalOnnxEmbedder(threads=threads)
        embedder.embed(sample[:8])  # the session is created on first use: not timed
        start = time.perf_counter()
        embedder.embed(sample)
        speeds.append(len(sample) / (time.perf_counter() - start))
    package = MODEL_FILES[0][2]
    return EncoderRow(
        identity=LocalOnnxEmbedder().identity,
        package=f"{package} {version(package)}",
        model_mb=package_file(MODEL_FILES, "model").stat().st_size / 1e6,
        licence=(metadata(package).get_all("License-Expression") or metadata(package).get_all("License") or ["?"])[0],
        texts=len(sample),
        per_second_one_core=speeds[0],
        per_second_all_cores=speeds[1],
    )


# -- 3: budgets at scale --------------------------------------------------------------------------------------------


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def scale_rows(
    where: Servers,
    memo: MemoEmbedder,
    model: Embedder,
    conversations: Sequence[Conversation],
    quick: bool,
    progress: Callable[[str], None],
) -> tuple[list[ScaleRow], list[RecallRow]]:
    turns = [turn for conv in conversations for turn in conv.turns]
    questions = [q.text for conv in conversations for q in conv.questions][:200]
    urls = {"exact": where.exact_url} | ({"search": where.search_url} if where.search_url else {})
    rows: list[ScaleRow] = []
    recalls: list[RecallRow] = []
    for size in (10_000,) if quick else (10_000, 100_000):
        for backend, url in urls.items():
            timed, recall = scale_cell(backend, url, size, memo, model, turns, questions)
            rows += timed
            recalls += [recall] if recall is not None else []
            measured = f", top-100 recall {recall.recall:.4f}" if recall is not None else ""
            progress(f"{backend}, {size:,} messages: end to end p50 {rows[-2].p50_ms:.1f} ms, lookup p50 "
                     f"{rows[-1].p50_ms:.1f} ms{measured}")  # fmt: skip
    return rows, recalls


def scale_cell(
    backend: str,
    url: str,
    size: int,
    memo: MemoEmbedder,
    model: Embedder,
    turns: Sequence[Turn],
    questions: Sequence[str],
) -> tuple[list[ScaleRow], RecallRow | None]:
    """The cell's timings; on `search`, the recall of its vector candidates against the exact ones."""
    deployment = Deployment(url, backend, f"scale-{size}", memo, DenseText.ROLE_AND_CONTENT)
    session = ref(f"scale-{size}")
    found: list[list[Scored]] = []
    recall = None
    try:
        deployment.store(f"scale-{size}", [turns[i % len(turns)] for i in range(size)])
        service = deployment.service(DEFAULT, TimedEmbedder(model))
        before = rss_mb()
        service.search(session, questions[0], K)  # reads the session into this process's caches
        grown = rss_mb() - before
        took = []
        for text in questions:
            start = time.perf_counter()
            service.search(session, text, K)
            took.append((time.perf_counter() - start) * 1000)
        vectors = model.embed(list(questions))
        lookup = []
        for text, vector in zip(questions, vectors, strict=True):
            start = time.perf_counter()
            texts, keyword, nearest = service.lookup(session, text, vector)  # as the fusion starts: both sides
            texts.best(keyword, DEFAULT_RECIPE.candidates)
            lookup.append((time.perf_counter() - start) * 1000)
            found.append(nearest)
        if backend == "search":
            recall = vector_recall(deployment, size, vectors, found, DEFAULT_RECIPE.candidates)
    finally:
        deployment.wiring.connector.client().flushdb()
        deployment.wiring.close()
    return [
        ScaleRow(size, f"`{backend}`, retrieval end to end, query embedding included", percentile(took, 50),
                 percentile(took, 95), grown),
        ScaleRow(size, f"`{backend}`, vector + keyword lookup alone (top 100 of each)", percentile(lookup, 50),
                 percentile(lookup, 95)),
    ], recall  # fmt: skip


def vector_recall(
    deployment: Deployment, size: int, queries: Any, found: Sequence[Sequence[Scored]], k: int
) -> RecallRow:
    """The recall of each question's top ``k`` by vector against the exact top ``k`` by cosine over the vectors the
    `search` backend stores (its documents' ``vector`` fields), averaged. The cycled turns repeat vectors, so many
    messages tie: a returned message counts as found when its cosine reaches the exact k-th best."""
    prefix = Keys(deployment.prefix).session(ref(f"scale-{size}")).doc_prefix
    client = deployment.wiring.connector.client(binary=True)
    blobs: list[bytes] = []
    for start in range(1, size + 1, 10_000):
        pipe = client.pipeline(transaction=False)
        for message_id in range(start, min(start + 10_000, size + 1)):
            pipe.hget(f"{prefix}{message_id}", "vector")
        blobs += pipe.execute()
    matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(size, -1)  # row i: message id i + 1
    recalls, overlaps = [], []
    for query, nearest in zip(np.asarray(queries, dtype=np.float32), found, strict=True):
        cosine = matrix @ query
        best = np.argpartition(-cosine, k - 1)[:k]
        kth = float(cosine[best].min())
        returned = np.array([scored.message.id - 1 for scored in nearest[:k]], dtype=np.int64)
        recalls.append(float(np.count_nonzero(cosine[returned] >= kth - 1e-6)) / k)
        overlaps.append(len(set(best.tolist()) & set(returned.tolist())) / k)
    return RecallRow(size, "search", len(found), k, statistics.fmean(recalls), statistics.fmean(overlaps))


# -- output ---------------------------------------------------------------------------------------------------------


def _row(s: Scores) -> str:
    return f"{s.recall_at_5:.3f} | {s.recall_at_10:.3f} | {s.hit_at_10:.3f} | {s.mrr:.3f}"


def summary_lines(result: LocomoResult) -> list[str]:
    return (quality_lines(result) if result.recipes else []) + speed_lines(result)


def quality_lines(result: LocomoResult) -> list[str]:
    counts = ", ".join(f"{n} {label}" for label, n in result.by_category.items())
    lines = [
        f"LoCoMo development set: {result.conversations} conversations, {result.turns} turns, {result.questions} "
        f"questions ({counts}); top {K}, local model, `exact` backend unless marked",
        "",
        "| Recipe | R@5 | R@10 | hit@10 | MRR |",
        "|---|---|---|---|---|",
    ]
    for r in result.recipes:
        marked = r.name if r.backend == "exact" else f"{r.name} on `search` (RediSearch {result.search_module})"
        lines.append(f"| {marked} | {_row(r.overall)} |")
    default = next(r for r in result.recipes if r.name == DEFAULT.name and r.backend == "exact")
    bm25 = next(r for r in result.recipes if r.name == PLAIN_BM25.name)
    lines += [
        "",
        "| Category (questions) | default R@5 | R@10 | hit@10 | MRR | BM25 R@10 |",
        "|---|---|---|---|---|---|",
    ]
    for label, s in default.by_category.items():
        lines.append(f"| {label} ({s.questions}) | {_row(s)} | {bm25.by_category[label].recall_at_10:.3f} |")
    lines.append(f"| all ({default.overall.questions}) | {_row(default.overall)} | {bm25.overall.recall_at_10:.3f} |")
    halves = ", ".join(
        f"conversations {half}: default {s.recall_at_10:.3f}, BM25 {bm25.by_half[half].recall_at_10:.3f}"
        for half, s in default.by_half.items()
    )
    lines.append(f"R@10 by half: {halves}")
    size = result.own_set_size
    lines += [
        "",
        f"Our own labelled set: {size['conversations']} conversations, {size['messages']} messages, "
        f"{size['questions']} questions (R@10 keyword / semantic: questions sharing words with their answer / none)",
        "",
        "| Recipe | R@5 | R@10 | hit@10 | MRR | R@10 keyword / semantic |",
        "|---|---|---|---|---|---|",
    ]
    for r in result.own_set:
        kinds = " / ".join(f"{r.by_category[kind].recall_at_10:.3f}" for kind in ("keyword", "semantic"))
        lines.append(f"| {r.name} | {_row(r.overall)} | {kinds} |")
    return lines


def speed_lines(result: LocomoResult) -> list[str]:
    i, lat = result.indexing, result.latency
    lines = [
        "",
        f"Indexing: {i.messages} turns in {i.seconds:.1f} s = {i.messages_per_second:.0f} messages/s "
        f"({i.embed_share:.0%} embedding).",
    ]
    if lat is not None:
        lines.append(
            f"Query, end to end with the query's embedding, on sessions of ~{result.turns // result.conversations} "
            f"messages: p50 {lat.p50_ms:.1f} ms, p95 {lat.p95_ms:.1f} ms (embedding p50 {lat.embed_p50_ms:.1f} ms), "
            f"{lat.queries} queries."
        )
    for row in result.scale:
        memory = f", the session's caches +{row.session_mb:.0f} MB RSS" if row.session_mb is not None else ""
        lines.append(f"{row.messages:,} messages, {row.what}: p50 {row.p50_ms:.1f} ms, p95 {row.p95_ms:.1f} ms{memory}")
    for r in result.recall:
        lines.append(
            f"{r.messages:,} messages, `{r.backend}`, its top {r.k} by vector against the exact top {r.k}, "
            f"{r.questions} questions: recall {r.recall:.4f} (a tie counted as found; by id {r.id_overlap:.4f})"
        )
    if (e := result.encoder) is not None:
        lines.append(
            f"Encoder {e.identity} ({e.package}, model {e.model_mb:.1f} MB, licence {e.licence}): "
            f"{e.per_second_one_core:.0f} texts/s on one core, {e.per_second_all_cores:.0f} on all cores "
            f"({e.texts} LoCoMo turns as `speaker: content`)."
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="skip the 100,000-message session")
    parser.add_argument("--part", choices=("all", "quality", "speed"), default="all", help="what to measure")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    logging.getLogger("motorhead").setLevel(logging.WARNING)  # the indexer logs each job

    def progress(message: str) -> None:
        print(f"   .. {message} ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)

    result = benchmark(args.quick, {"quality", "speed"} if args.part == "all" else {args.part}, progress)
    lines = summary_lines(result)
    print("\n".join(lines))
    print(f"\n(done in {time.perf_counter() - started:.0f} s)")
    if args.json is not None:
        payload: dict[str, Any] = {"locomo": asdict(result), "summary": lines}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
