"""User-level retrieval on LoCoMo, through the real service path (figures, never pass/fail).

Data: the seven LoCoMo development conversations of ``bench/data/locomo/`` (as ``bench/locomo.py``). Two layouts of
the same turns, each stored with ``RedisMemoryStore.append(..., index=True)`` and indexed by ``IndexerService`` with
the local ONNX model:

- **as users** (what a chat app does): each conversation is one user, each of its LoCoMo sessions one server session
  bound to that user (``user_id``); every question is asked of the user (``RetrievalService.retrieve_user``, k=10);
- **one session** (the per-session figure of ``bench/locomo.py``): each conversation is one server session; every
  question is asked of it (``RetrievalService.search``).

Measures, per question then averaged: turn-level recall@5 and @10 (the share of the evidence turns in the top k: our
measure), session-level recall@10 (the share of the evidence's LoCoMo sessions among the sessions of the top 10: what
retrieval-only systems publish), MRR (1 / rank of the first evidence turn in the top 10), and end-to-end latency
(query embedding included). The difference between the two layouts is the cost of the session boundaries: a turn's
keyword document no longer holds the turns before it when they are in the previous session, and an answer at the
start of a session no longer lifts the question at the end of the previous one; the share of evidence turns among a
session's first two turns says how often that can matter.

Budget, `exact` and `search` backends: one user with 100 sessions of 500 messages (LoCoMo turns cycled, their vectors
the model's), searched end to end with the real query embedding; p50/p95, and the process's memory for that user.

Run: ``make bench-users`` (``ARGS="--quick"`` skips the budget; ``--json PATH`` writes the results).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.harness import percentile
from bench.locomo import Conversation, K, Question, Turn, load, rss_mb
from bench.locomo import scores as turn_scores
from bench.retrieval import MemoEmbedder, TimedEmbedder, Wiring, servers
from motorhead.adapters.redis_db.keys import Keys
from motorhead.adapters.redis_db.keyword_index import RedisKeywordIndex
from motorhead.core.values import NO_TENANT, NewMessage, SessionJob, SessionRef, UserRef
from motorhead.errors import JobIncompleteError
from motorhead.ltm.ports import Embedder
from motorhead.ltm.retrieval import RetrievalService
from motorhead.settings import Settings

POST_CHUNK = 100


def locomo_session(dia_id: str) -> str:
    """``D12:3`` → ``D12``: the LoCoMo session a turn belongs to."""
    return dia_id.split(":")[0]


@dataclass
class Scores:
    questions: int
    recall_at_5: float
    recall_at_10: float
    session_recall_at_10: float
    mrr: float


def scores(found: Sequence[Sequence[str]], questions: Sequence[Question]) -> Scores:
    """``bench/locomo.py``'s turn-level scores, and the share of the evidence's sessions among the top 10's."""

    def session_recall(top: Sequence[str], q: Question) -> float:
        wanted = {locomo_session(dia) for dia in q.evidence}
        return len(wanted & {locomo_session(dia) for dia in top[:K]}) / len(wanted)

    turns = turn_scores(found, questions)
    return Scores(
        questions=turns.questions,
        recall_at_5=turns.recall_at_5,
        recall_at_10=turns.recall_at_10,
        session_recall_at_10=statistics.fmean(session_recall(top, q) for top, q in zip(found, questions, strict=True)),
        mrr=turns.mrr,
    )


@dataclass
class LayoutResult:
    layout: str  # "one session" or "as users"
    backend: str
    scores: Scores
    p50_ms: float
    p95_ms: float


@dataclass
class BudgetRow:
    backend: str
    sessions: int
    messages_per_session: int
    p50_ms: float
    p95_ms: float
    rss_growth_mb: float


@dataclass
class UsersResult:
    conversations: int
    sessions: int
    turns: int
    questions: int
    boundary_evidence_share: float  # evidence turns among the first two turns of their LoCoMo session
    layouts: list[LayoutResult]
    budget: list[BudgetRow]


def store(wiring: Wiring, session: SessionRef, turns: Sequence[Turn], user_id: str | None) -> dict[int, str]:
    """Store the turns (each chunk written at its date), index them; the message id → dia id map."""
    by_id: dict[int, str] = {}
    at = 0
    while at < len(turns):
        chunk = [t for t in turns[at : at + POST_CHUNK] if t.at_ms == turns[at].at_ms]
        result = wiring.store.append(
            session,
            [NewMessage(t.speaker, t.text) for t in chunk],
            context=None,
            namespace="locomo",
            now_ms=chunk[0].at_ms,
            index=True,
            user_id=user_id,
        )
        for offset, turn in enumerate(chunk):
            by_id[result.last_id - len(chunk) + 1 + offset] = turn.dia_id
        at += len(chunk)
    job = SessionJob(session=session, last_id=len(turns))
    while True:  # a backlog bigger than one job's rounds ends the job early on purpose, as SQS would redeliver it
        try:
            wiring.indexer.run(job)
            return by_id
        except JobIncompleteError:
            continue


def service(wiring: Wiring, prefix: str, embedder: Embedder) -> RetrievalService:
    return RetrievalService(
        embedder=embedder,
        index=wiring.index,
        keywords=RedisKeywordIndex(wiring.connector, Keys(prefix)),
        users=wiring.store,
    )


def by_session(conv: Conversation) -> dict[str, list[Turn]]:
    parts: dict[str, list[Turn]] = {}
    for turn in conv.turns:
        parts.setdefault(locomo_session(turn.dia_id), []).append(turn)
    return parts


def layouts(url: str, backend: str, memo: MemoEmbedder, model: Embedder, conversations: Sequence[Conversation],
            progress: Callable[[str], None]) -> list[LayoutResult]:  # fmt: skip
    questions = [q for conv in conversations for q in conv.questions]
    results: list[LayoutResult] = []
    # one session per conversation
    prefix = f"users-one-{backend}"
    wiring = Wiring(url, backend, prefix, memo)
    try:
        ids = [store(wiring, SessionRef(NO_TENANT, f"c-{conv.id}"), conv.turns, None) for conv in conversations]
        retrieval = service(wiring, prefix, TimedEmbedder(model))
        found: list[list[str]] = []
        took: list[float] = []
        for c, conv in enumerate(conversations):
            for q in conv.questions:
                start = time.perf_counter()
                hits = retrieval.search(SessionRef(NO_TENANT, f"c-{conv.id}"), q.text, K)
                took.append((time.perf_counter() - start) * 1000)
                found.append([ids[c][hit.message.id] for hit in hits])
        results.append(LayoutResult("one session", backend, scores(found, questions), percentile(took, 50),
                                    percentile(took, 95)))  # fmt: skip
        progress(f"{backend}, one session: R@10 {results[-1].scores.recall_at_10:.3f}")
    finally:
        wiring.connector.client().flushdb()
        wiring.close()
    # as users: each LoCoMo session a server session bound to the conversation's user
    prefix = f"users-split-{backend}"
    wiring = Wiring(url, backend, prefix, memo)
    try:
        maps: dict[str, dict[int, str]] = {}  # server session id -> message id -> dia id
        for conv in conversations:
            for name, turns in by_session(conv).items():
                maps[f"{conv.id}/{name}"] = store(wiring, SessionRef(NO_TENANT, f"{conv.id}/{name}"), turns, conv.id)
        retrieval = service(wiring, prefix, TimedEmbedder(model))
        found, took = [], []
        for conv in conversations:
            for q in conv.questions:
                start = time.perf_counter()
                user_hits = retrieval.retrieve_user(UserRef(NO_TENANT, conv.id), q.text, K)
                took.append((time.perf_counter() - start) * 1000)
                found.append([maps[h.session_id][h.hit.message.id] for h in user_hits])
        results.append(LayoutResult("as users", backend, scores(found, questions), percentile(took, 50),
                                    percentile(took, 95)))  # fmt: skip
        progress(f"{backend}, as users: R@10 {results[-1].scores.recall_at_10:.3f}")
    finally:
        wiring.connector.client().flushdb()
        wiring.close()
    return results


def budget(url: str, backend: str, memo: MemoEmbedder, model: Embedder, conversations: Sequence[Conversation],
           sessions: int = 100, per_session: int = 500) -> BudgetRow:  # fmt: skip
    """One user with ``sessions`` sessions of ``per_session`` messages, searched end to end (real query embedding)."""
    turns = [turn for conv in conversations for turn in conv.turns]
    questions = [q.text for conv in conversations for q in conv.questions][:200]
    prefix = f"users-budget-{backend}"
    wiring = Wiring(url, backend, prefix, memo)
    user = UserRef(NO_TENANT, "heavy")
    try:
        for s in range(sessions):
            chosen = [turns[(s * per_session + i) % len(turns)] for i in range(per_session)]
            store(wiring, SessionRef(NO_TENANT, f"heavy-{s}"), chosen, user.id)
        retrieval = service(wiring, prefix, TimedEmbedder(model))
        before = rss_mb()
        retrieval.retrieve_user(user, questions[0], K)  # reads the user's sessions into this process's caches
        grown = rss_mb() - before
        took = []
        for text in questions:
            start = time.perf_counter()
            retrieval.retrieve_user(user, text, K)
            took.append((time.perf_counter() - start) * 1000)
    finally:
        wiring.connector.client().flushdb()
        wiring.close()
    return BudgetRow(backend, sessions, per_session, percentile(took, 50), percentile(took, 95), grown)


def benchmark(quick: bool, progress: Callable[[str], None]) -> UsersResult:
    from motorhead.composition.long_term import embedder as configured_embedder

    conversations = load()
    model = configured_embedder(Settings(MOTORHEAD_EMBEDDER="local"))
    memo = MemoEmbedder(model)
    evidence = [dia for conv in conversations for q in conv.questions for dia in q.evidence]
    firsts = {turn.dia_id for conv in conversations for turns in by_session(conv).values() for turn in turns[:2]}
    results: list[LayoutResult] = []
    rows: list[BudgetRow] = []
    with servers() as where:
        urls = {"exact": where.exact_url} | ({"search": where.search_url} if where.search_url else {})
        for backend, url in urls.items():
            results += layouts(url, backend, memo, model, conversations, progress)
        if not quick:
            for backend, url in urls.items():
                rows.append(budget(url, backend, memo, model, conversations))
                progress(f"{backend}, 100 x 500 messages: p50 {rows[-1].p50_ms:.1f} ms")
    return UsersResult(
        conversations=len(conversations),
        sessions=sum(len(by_session(conv)) for conv in conversations),
        turns=sum(len(conv.turns) for conv in conversations),
        questions=sum(len(conv.questions) for conv in conversations),
        boundary_evidence_share=sum(dia in firsts for dia in evidence) / len(evidence),
        layouts=results,
        budget=rows,
    )


def summary_lines(result: UsersResult) -> list[str]:
    lines = [
        f"LoCoMo development set: {result.conversations} conversations (users), {result.sessions} sessions, "
        f"{result.turns} turns, {result.questions} questions (categories 1-4); "
        f"{result.boundary_evidence_share:.1%} of the evidence turns are among the first two turns of their session.",
        "",
        "| layout | backend | turn R@5 | turn R@10 | session R@10 | MRR | p50 ms | p95 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in result.layouts:
        s = row.scores
        lines.append(
            f"| {row.layout} | `{row.backend}` | {s.recall_at_5:.3f} | {s.recall_at_10:.3f} | "
            f"{s.session_recall_at_10:.3f} | {s.mrr:.3f} | {row.p50_ms:.1f} | {row.p95_ms:.1f} |"
        )
    if result.budget:
        lines += ["", "| budget: one user | backend | p50 ms | p95 ms | memory for the user |", "|---|---|---|---|---|"]
        for b in result.budget:
            lines.append(
                f"| {b.sessions} sessions x {b.messages_per_session} messages | `{b.backend}` | {b.p50_ms:.1f} | "
                f"{b.p95_ms:.1f} | {b.rss_growth_mb:.0f} MB |"
            )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="skip the 100 x 500 budget")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    logging.getLogger("motorhead").setLevel(logging.WARNING)

    def progress(message: str) -> None:
        print(f"   .. {message} ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)

    result = benchmark(args.quick, progress)
    lines = summary_lines(result)
    print("\n".join(lines))
    print(f"\n(done in {time.perf_counter() - started:.0f} s)")
    if args.json is not None:
        payload: dict[str, Any] = {"users": asdict(result), "summary": lines}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
