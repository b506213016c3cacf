"""Summarization benchmark: what one summarizer job costs as the backlog grows (printed figures, never pass/fail).

1. Jobs with the offline summarizer: ``SummarizerService.run`` wired as ``service.summarizer_service`` wires it
   (``ExtractiveSummaryWriter``, a real ``RedisMemoryStore``) on freshly seeded sessions of window + backlog chat
   messages, against an ``EmbeddedRedis`` started here. Per job: latency, the share spent in the writer's fold and in
   the store's calls, Redis commands from the server's ``INFO commandstats`` delta (commands run inside Lua scripts
   included), round trips counted on the client (a script is one), and bytes on the wire from ``CLIENT LIST``.
2. LLM calls per summarization: ``LlmSummaryWriter`` with a fake chat model that answers at once, folding backlogs of
   short and long messages for gpt-4o-mini's default batch limit and for a 4k-context model; calls should follow
   ceil(line tokens / line budget), not the number of messages.

Run alone with ``PYTHONPATH=layers/shared/python:. .venv/bin/python bench/summarizer.py [--quick]``, or as part of
``bench/run.py``.
"""

from __future__ import annotations

import math
import os
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import redis

from bench.harness import percentile, standalone_main
from devserver.embedded_redis import EmbeddedRedis
from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.keys import Keys
from motorhead.adapters.redis_db.store import RedisMemoryStore
from motorhead.adapters.tiktoken_local.counter import TiktokenCounter
from motorhead.composition.summarization import summary_writer
from motorhead.core.ports import SummaryWriter, TokenCounter
from motorhead.core.summarization.llm_writer import LlmSummaryWriter
from motorhead.core.summarization.service import SummarizerService
from motorhead.core.values import (
    NO_TENANT,
    ChatResult,
    Folded,
    FoldInput,
    NewMessage,
    SessionJob,
    SessionRef,
    StoredMessage,
)
from motorhead.observability import logger
from motorhead.settings import PACKAGED_TIKTOKEN_CACHE, Settings

WINDOW = 12
MODEL = "gpt-4o-mini"
SMALL_CONTEXT_TOKENS = 4096
SEED_CHUNK = 100  # messages per seeding POST (the API's default MOTORHEAD_MAX_MESSAGES_PER_REQUEST)
OBSERVER = "bench-observer"


@dataclass(frozen=True)
class SummarizerSettings:
    """How much to measure: jobs per backlog (messages beyond the window) and the LLM backlogs to fold."""

    jobs: tuple[tuple[int, int], ...]
    llm_backlogs: tuple[int, ...]


DEFAULT = SummarizerSettings(
    jobs=((1, 100), (50, 100), (500, 40), (5_000, 12), (20_000, 4)), llm_backlogs=(10, 100, 1_000, 10_000)
)
QUICK = SummarizerSettings(jobs=((1, 20), (50, 20), (500, 6), (5_000, 2)), llm_backlogs=(10, 100, 1_000))


# -- deterministic chat messages -------------------------------------------------------------------------------------

_NAMES = ("Ana", "Bruno", "Chiara", "Dmitri", "Esther", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Keiko", "Luis")
_PLACES = ("Lisbon", "Medellín", "Osaka", "Nairobi", "Tallinn", "Porto", "Montréal", "Kraków", "Valparaíso", "Oslo")
_THINGS = (
    "the quarterly budget",
    "the onboarding checklist",
    "the vegetarian menu",
    "the flight to the conference",
    "the database migration",
    "the grant application",
    "the apartment lease",
    "the marathon training plan",
    "the customer survey",
    "the piano lessons",
)
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_HUMAN = (
    "Can you remind me what {name} said about {thing} last week?",
    "I am flying to {place} on {day} and I need to land before {hour} in the evening.",
    "My budget for {thing} is about {number} euros, and I would rather not go above that.",
    "{name} prefers to meet in {place}, but I think a video call on {day} would be easier for everyone.",
    "Honestly I am a bit worried about {thing}, because the deadline moved to the {nth} of the month.",
    "Could you draft a short message to {name} asking whether {thing} can wait until {day}?",
    "I forgot to mention that I am allergic to peanuts and that {name} does not eat fish.",
    "Please keep in mind that my daughter starts school in {place} in September.",
    "What would you do first, {thing} or the call with {name}?",
    "Thanks, that helps a lot.",
    "Last time we tried that it took {number} minutes and nobody was happy with the result.",
    "Let us also add a reminder for {day} at {hour} so I do not forget {thing}.",
)
_AI = (
    "Sure: {name} suggested postponing {thing} until the numbers for {place} are final.",
    "Based on what you told me, a flight that leaves {place} before noon on {day} would fit your schedule.",
    "I would start with {thing}, since it blocks the work {name} is doing, and keep the call for {day}.",
    "Here is a draft: Hi {name}, could we move {thing} to {day}? The new deadline makes the current plan tight.",
    "With a budget of {number} euros there are still two good options, both within walking distance of the venue.",
    "Noted: no peanuts for you and no fish for {name}; I will keep that in mind for every restaurant suggestion.",
    "That makes sense, and it also leaves room for the review {name} asked for on the {nth}.",
    "I have added a reminder for {day} at {hour} about {thing}.",
    "If it took {number} minutes last time, splitting it into two shorter sessions might work better.",
    "Good question: the main risk with {thing} is the dependency on the team in {place}.",
    "You are welcome, happy to help.",
    "One more thing to consider is the time difference between {place} and your home office.",
)


def _sentence(rng: random.Random, templates: Sequence[str]) -> str:
    return rng.choice(templates).format(
        name=rng.choice(_NAMES),
        place=rng.choice(_PLACES),
        thing=rng.choice(_THINGS),
        day=rng.choice(_DAYS),
        hour=rng.randint(5, 11),
        number=rng.randint(2, 900),
        nth=f"{rng.randint(4, 28)}th",
    )


def chat_messages(count: int, *, words: tuple[int, int], seed: int) -> list[tuple[str, str]]:
    """``count`` alternating Human/AI messages of about ``words`` words, the same for the same arguments."""
    rng = random.Random(seed)
    messages: list[tuple[str, str]] = []
    for i in range(count):
        role, templates = ("Human", _HUMAN) if i % 2 == 0 else ("AI", _AI)
        target = rng.randint(*words)
        sentences: list[str] = []
        length = 0
        while length < target:
            sentence = _sentence(rng, templates)
            sentences.append(sentence)
            length += len(sentence.split())
        text = " ".join(sentences)
        if length > words[1]:  # trim to the upper bound, ending the message on a full stop
            text = " ".join(text.split()[: words[1]]).rstrip(",.?:;") + "."
        messages.append((role, text))
    return messages


def stored(messages: Sequence[tuple[str, str]]) -> list[StoredMessage]:
    return [StoredMessage(id=i, role=role, content=text, created_at=0) for i, (role, text) in enumerate(messages, 1)]


# -- statistics -----------------------------------------------------------------------------------------------------


# -- 1. jobs with the offline summarizer ----------------------------------------------------------------------------


class TimedWriter:
    """A ``SummaryWriter`` that times the wrapped writer's fold."""

    def __init__(self, inner: SummaryWriter) -> None:
        self._inner = inner
        self.seconds = 0.0

    def fold(self, context: str | None, messages: list[StoredMessage]) -> Folded:
        start = time.perf_counter()
        try:
            return self._inner.fold(context, messages)
        finally:
            self.seconds += time.perf_counter() - start

    def take(self, context: str | None, messages: list[StoredMessage]) -> int:
        return self._inner.take(context, messages)


class TimedStore(RedisMemoryStore):
    """The real store, timing the two calls a job makes (network, Redis and decoding included)."""

    seconds = 0.0

    def fold_input(self, session: SessionRef, *, window: int, keep: int) -> FoldInput | None:
        start = time.perf_counter()
        try:
            return super().fold_input(session, window=window, keep=keep)
        finally:
            self.seconds += time.perf_counter() - start

    def commit_fold(self, session: SessionRef, *, start: FoldInput, folded: Folded) -> bool:
        began = time.perf_counter()
        try:
            return super().commit_fold(session, start=start, folded=folded)
        finally:
            self.seconds += time.perf_counter() - began


@dataclass
class JobSample:
    ms: float
    writer_ms: float
    store_ms: float
    folded: int
    server_calls: Counter[str]  # every command the server ran, Lua's included
    server_usec: Counter[str]
    client_calls: Counter[str]  # what the client sent: one round trip each
    bytes_in: int  # client -> server
    bytes_out: int  # server -> client


@dataclass
class JobRow:
    backlog: int
    messages: int  # stored when the job starts
    jobs: int
    folded: int
    p50_ms: float
    p95_ms: float
    writer_share: float  # of the summed job time
    store_share: float
    other_share: float
    server_ms: float  # Redis executing the client's commands, per job (commandstats usec)
    commands: float  # per job, Lua's included
    script_calls: float  # EVALSHA + EVAL per job
    round_trips: float
    by_command: dict[str, float]  # per job
    kib_in: float
    kib_out: float
    samples_ms: list[float] = field(repr=False)


@dataclass
class JobResult:
    rows: list[JobRow]
    first_job_ms: float  # a new process's first job (12+1): connection, cluster probe, script loads
    first_job_extra: dict[str, int]  # the server commands it ran beyond a warm job of the same size
    redis_version: str


def command_stats(client: redis.Redis) -> tuple[Counter[str], Counter[str]]:
    """Calls and microseconds per command (lowercase, subcommands as ``script|load``), this observer's excluded."""
    calls: Counter[str] = Counter()
    usec: Counter[str] = Counter()
    for key, stat in client.info("commandstats").items():
        name = str(key).removeprefix("cmdstat_")
        calls[name] = int(stat["calls"])
        usec[name] = int(stat["usec"])
    return calls, usec


def net_bytes(client: redis.Redis, client_id: int) -> tuple[int, int]:
    (entry,) = client.client_list(client_id=[client_id])
    return int(entry["tot-net-in"]), int(entry["tot-net-out"])


@contextmanager
def quiet_logger() -> Iterator[None]:
    """The job's log line is still formatted (it is part of a job's cost) but written to /dev/null."""
    handler: Any = logger.registered_handler
    with open(os.devnull, "w", encoding="utf-8") as sink:
        previous = handler.setStream(sink)
        try:
            yield
        finally:
            handler.setStream(previous)


@contextmanager
def counted_commands(client: redis.Redis, into: Counter[str]) -> Iterator[None]:
    """Count each command the client sends (a script call is one EVALSHA/EVAL: one round trip)."""
    send: Callable[..., Any] = client.execute_command

    def counting(*args: Any, **options: Any) -> Any:
        into[str(args[0]).lower().replace(" ", "|")] += 1
        return send(*args, **options)

    with mock.patch.object(client, "execute_command", counting):
        yield


class JobBench:
    """One embedded Redis, one store and service as production wires them, a second store that seeds sessions."""

    def __init__(self, server: EmbeddedRedis) -> None:
        self.settings = Settings(
            REDIS_URL=server.url, MOTORHEAD_MAX_WINDOW_SIZE=str(WINDOW), MOTORHEAD_SUMMARIZER="extractive"
        )
        keys = Keys(self.settings.key_prefix)
        lease_ms = self.settings.summary_lease_seconds * 1000
        self.connector = RedisConnector(self.settings)
        self.store = TimedStore(self.connector, keys, summary_lease_ms=lease_ms)  # as composition.memory.redis_store
        self.writer = TimedWriter(summary_writer(self.settings))
        self.service = SummarizerService(store=self.store, writer=self.writer, window=self.settings.max_window_size)
        self.seeder_connector = RedisConnector(self.settings)
        self.seeder = RedisMemoryStore(self.seeder_connector, keys)
        self.observer = server.client(decode_responses=True)
        self.client_id: int | None = None

    def close(self) -> None:
        self.observer.close()
        self.connector.close()
        self.seeder_connector.close()

    def seed(self, messages: Sequence[tuple[str, str]]) -> str:
        session_id = f"bench-{uuid.uuid4().hex[:12]}"
        for at in range(0, len(messages), SEED_CHUNK):
            chunk = [NewMessage(role, text) for role, text in messages[at : at + SEED_CHUNK]]
            self.seeder.append(SessionRef(NO_TENANT, session_id), chunk, context=None, namespace="bench", now_ms=0)
        return session_id

    def job(self, messages: Sequence[tuple[str, str]]) -> JobSample:
        session_id = self.seed(messages)
        sent: Counter[str] = Counter()
        calls_before, usec_before = command_stats(self.observer)
        bytes_before = net_bytes(self.observer, self.client_id) if self.client_id is not None else (0, 0)
        self.writer.seconds = self.store.seconds = 0.0
        start = time.perf_counter()
        client = self.connector.client()  # the first job connects (and asks whether the server is a cluster)
        assert isinstance(client, redis.Redis)
        with counted_commands(client, sent):
            outcome = self.service.run(SessionJob(session=SessionRef(NO_TENANT, session_id), last_id=len(messages)))
            seconds = time.perf_counter() - start
        calls_after, usec_after = command_stats(self.observer)
        bytes_after = net_bytes(self.observer, self.client_id) if self.client_id is not None else (0, 0)
        calls_after["info"] -= 1  # the observer's own INFO; its CLIENT LIST is in neither snapshot
        calls_after["client|list"] -= int(self.client_id is not None)
        if outcome.commits != 1 or outcome.folded != len(messages) - WINDOW // 2:
            raise RuntimeError(f"unexpected job outcome for {len(messages)} messages: {outcome}")
        return JobSample(
            ms=seconds * 1000,
            writer_ms=self.writer.seconds * 1000,
            store_ms=self.store.seconds * 1000,
            folded=outcome.folded,
            server_calls=calls_after - calls_before,
            server_usec=usec_after - usec_before,
            client_calls=sent,
            bytes_in=bytes_after[0] - bytes_before[0],
            bytes_out=bytes_after[1] - bytes_before[1],
        )


def job_row(backlog: int, samples: list[JobSample]) -> JobRow:
    n = len(samples)
    total_ms = sum(s.ms for s in samples)
    writer_ms = sum(s.writer_ms for s in samples)
    store_ms = sum(s.store_ms for s in samples)
    server_calls: Counter[str] = sum((s.server_calls for s in samples), Counter())
    client_calls: Counter[str] = sum((s.client_calls for s in samples), Counter())
    sent_usec = sum(s.server_usec[name] for s in samples for name in s.client_calls)
    scripts = server_calls["evalsha"] + server_calls["eval"]
    return JobRow(
        backlog=backlog,
        messages=WINDOW + backlog,
        jobs=n,
        folded=samples[0].folded,
        p50_ms=percentile([s.ms for s in samples], 50),
        p95_ms=percentile([s.ms for s in samples], 95),
        writer_share=writer_ms / total_ms,
        store_share=store_ms / total_ms,
        other_share=(total_ms - writer_ms - store_ms) / total_ms,
        server_ms=sent_usec / 1000 / n,
        commands=server_calls.total() / n,
        script_calls=scripts / n,
        round_trips=client_calls.total() / n,
        by_command={name: calls / n for name, calls in server_calls.most_common()},
        kib_in=statistics.fmean(s.bytes_in for s in samples) / 1024,
        kib_out=statistics.fmean(s.bytes_out for s in samples) / 1024,
        samples_ms=[s.ms for s in samples],
    )


def job_costs(settings: SummarizerSettings, progress: Callable[[str], None]) -> JobResult:
    biggest = max(backlog for backlog, _ in settings.jobs)
    corpus = chat_messages(WINDOW + biggest, words=(30, 60), seed=42)
    with EmbeddedRedis() as server, quiet_logger():
        bench = JobBench(server)
        try:
            redis_version = str(bench.observer.info("server")["redis_version"])
            first = bench.job(
                corpus[: WINDOW + settings.jobs[0][0]]
            )  # a new process: connection, cluster probe, script loads
            client = bench.connector.client()
            assert isinstance(client, redis.Redis)
            bench.client_id = int(client.client_id())
            for backlog, _ in settings.jobs:  # warm-up, not recorded
                bench.job(corpus[: WINDOW + backlog])
            samples: dict[int, list[JobSample]] = {backlog: [] for backlog, _ in settings.jobs}
            rounds = max(jobs for _, jobs in settings.jobs)
            for round_no in range(rounds):
                due = [backlog for backlog, jobs in settings.jobs if round_no < jobs]
                for backlog in random.sample(due, len(due)):
                    samples[backlog].append(bench.job(corpus[: WINDOW + backlog]))
                if (round_no + 1) % 10 == 0 or round_no + 1 == rounds:
                    progress(f"summarizer jobs: round {round_no + 1}/{rounds}")
        finally:
            bench.close()
    return JobResult(
        rows=[job_row(backlog, samples[backlog]) for backlog, _ in settings.jobs],
        first_job_ms=first.ms,
        first_job_extra=dict((first.server_calls - samples[settings.jobs[0][0]][0].server_calls).most_common()),
        redis_version=redis_version,
    )


# -- 2. LLM calls per summarization ----------------------------------------------------------------------------------


class InstantModel:
    """A ``ChatModel`` that answers at once with a fixed summary, counting calls and prompt tokens."""

    ANSWER = " ".join(
        ["The user is planning a trip to Lisbon on Friday with Ana and must land before 9 in the evening."] * 8
    )

    def __init__(self, counter: TokenCounter) -> None:
        self._counter = counter
        self._answer_tokens = counter.count(self.ANSWER)
        self.calls = 0
        self.prompt_tokens = 0
        self.max_prompt_tokens = 0

    def complete(self, *, system: str, user: str, max_tokens: int) -> ChatResult:
        prompt = self._counter.count(system) + self._counter.count(user)
        self.calls += 1
        self.prompt_tokens += prompt
        self.max_prompt_tokens = max(self.max_prompt_tokens, prompt)
        return ChatResult(text=self.ANSWER, total_tokens=prompt + self._answer_tokens)


@dataclass
class LlmRow:
    model: str
    line_budget: int
    kind: str
    messages: int
    line_tokens: int  # as the writer sizes batches: each "role: content" line plus its newline
    calls: int
    input_tokens: int
    max_input_tokens: int
    messages_per_call: float
    tokens_per_call: float
    ideal_calls: int  # ceil(line_tokens / line_budget)
    ratio: float


def llm_calls(settings: SummarizerSettings, progress: Callable[[str], None]) -> list[LlmRow]:
    counter = TiktokenCounter(model=MODEL, cache_dir=PACKAGED_TIKTOKEN_CACHE)
    summary_max_tokens = Settings(REDIS_URL="redis://unused").summary_max_tokens
    biggest = max(settings.llm_backlogs)
    corpora = {
        "short": stored(chat_messages(biggest, words=(8, 12), seed=7)),
        "long": stored(chat_messages(biggest, words=(110, 130), seed=8)),
    }
    sizes = {kind: [counter.count(f"{m.role}: {m.content}") + 1 for m in corpus] for kind, corpus in corpora.items()}
    models = (
        (f"{MODEL}, default limit", None),
        (f"{SMALL_CONTEXT_TOKENS // 1024}k-context model", SMALL_CONTEXT_TOKENS),
    )
    rows: list[LlmRow] = []
    for label, context_tokens in models:
        for kind, corpus in corpora.items():
            for n in settings.llm_backlogs:
                model = InstantModel(counter)
                writer = LlmSummaryWriter(
                    model=model, counter=counter, summary_max_tokens=summary_max_tokens, context_tokens=context_tokens
                )
                folded = writer.fold(None, corpus[:n])
                if folded.calls != model.calls:
                    raise RuntimeError(f"the writer reported {folded.calls} calls, the model saw {model.calls}")
                line_tokens = sum(sizes[kind][:n])
                ideal = math.ceil(line_tokens / writer.line_budget)
                rows.append(
                    LlmRow(
                        model=label,
                        line_budget=writer.line_budget,
                        kind=kind,
                        messages=n,
                        line_tokens=line_tokens,
                        calls=model.calls,
                        input_tokens=model.prompt_tokens,
                        max_input_tokens=model.max_prompt_tokens,
                        messages_per_call=n / model.calls,
                        tokens_per_call=model.prompt_tokens / model.calls,
                        ideal_calls=ideal,
                        ratio=model.calls / ideal,
                    )
                )
        progress(f"summarizer LLM calls: {label} done")
    return rows


# -- report ---------------------------------------------------------------------------------------------------------


@dataclass
class SummarizerResult:
    settings: SummarizerSettings
    jobs: JobResult
    llm: list[LlmRow]


def benchmark(settings: SummarizerSettings, progress: Callable[[str], None]) -> SummarizerResult:
    return SummarizerResult(settings=settings, jobs=job_costs(settings, progress), llm=llm_calls(settings, progress))


def _commands(row: JobRow) -> str:
    return " ".join(f"{name} {calls:g}" for name, calls in row.by_command.items())


def print_jobs(result: JobResult, number: int) -> None:
    print(
        f"\n{number}. Summarizer job, offline (extractive) writer, window {WINDOW} (keeps {WINDOW // 2}); "
        f"chat messages of 30-60 words; redis-server {result.redis_version} (embedded)"
    )
    print("   (each job on a freshly seeded session, sizes interleaved; 'writer' is the fold, 'store' the two store")
    print("   calls incl. network and decoding, 'other' the service and its log line; 'server' is Redis executing")
    print("   the client's commands (commandstats usec); commands include those run inside Lua scripts)")
    header = f"   {'backlog':>8} {'folded':>6} {'jobs':>4} {'p50 ms':>8} {'p95 ms':>8} {'writer':>6} {'store':>6}"
    header += f" {'other':>6} {'server ms':>9} {'round trips':>11} {'scripts':>7} {'commands':>8}"
    print(header + f" {'KiB in':>8} {'KiB out':>8}")
    for row in result.rows:
        print(
            f"   {'12+' + str(row.backlog):>8} {row.folded:6d} {row.jobs:4d} {row.p50_ms:8.2f} {row.p95_ms:8.2f}"
            f" {row.writer_share:6.0%} {row.store_share:6.0%} {row.other_share:6.0%} {row.server_ms:9.3f}"
            f" {row.round_trips:11g} {row.script_calls:7g} {row.commands:8g} {row.kib_in:8.1f} {row.kib_out:8.1f}"
        )
    print("   Redis commands per job (server side, Lua's included):")
    for row in result.rows:
        print(f"   {'12+' + str(row.backlog):>8}  {_commands(row)}")
    base = result.rows[0]
    print("   growth against the smallest backlog: folded messages, p50 latency, server time; p50 per folded message")
    for row in result.rows:
        print(
            f"   {'12+' + str(row.backlog):>8}  messages x{row.folded / base.folded:<6.0f}"
            f" p50 x{row.p50_ms / base.p50_ms:<7.1f} server x{row.server_ms / base.server_ms:<7.1f}"
            f" {row.p50_ms / row.folded * 1000:5.0f} us/message"
        )
    extra = " ".join(f"{name} {calls}" for name, calls in result.first_job_extra.items())
    print(
        f"   a new process's first job (12+{base.backlog}): {result.first_job_ms:.1f} ms; server commands beyond a"
        f" warm job's: {extra or 'none'}"
    )


def print_llm(rows: list[LlmRow], number: int) -> None:
    print(f"\n{number}. LLM calls per summarization: LlmSummaryWriter + a fake model that answers at once, no context")
    print(
        "   (short messages ~10 words, long ~120; 'line tok' = what the writer batches; ideal = ceil(line tok/budget))"
    )
    print(
        f"   {'model, line budget':34} {'kind':>5} {'messages':>8} {'line tok':>9} {'calls':>5} {'input tok':>10}"
        f" {'msgs/call':>9} {'tok/call':>8} {'ideal':>5} {'calls/ideal':>11}"
    )
    for row in rows:
        label = f"{row.model}, {row.line_budget}"
        print(
            f"   {label:34} {row.kind:>5} {row.messages:8d} {row.line_tokens:9d} {row.calls:5d}"
            f" {row.input_tokens:10d} {row.messages_per_call:9.1f} {row.tokens_per_call:8.0f} {row.ideal_calls:5d}"
            f" {row.ratio:11.3f}"
        )


def print_result(result: SummarizerResult, first_number: int) -> None:
    print_jobs(result.jobs, first_number)
    print_llm(result.llm, first_number + 1)


def summary_lines(result: SummarizerResult) -> list[str]:
    rows = result.jobs.rows
    lines = [
        f"Summarizer job (offline extractive writer, window {WINDOW}, 30-60-word messages; p50/p95 of "
        f"{'/'.join(str(r.jobs) for r in rows)} jobs):",
    ]
    lines += [
        f"  12+{row.backlog:<5} {row.p50_ms:8.1f} / {row.p95_ms:7.1f} ms  writer {row.writer_share:4.0%}  "
        f"store {row.store_share:4.0%}  {row.round_trips:g} round trips ({row.script_calls:g} EVALSHA), "
        f"{row.commands:g} Redis commands, {row.kib_in:.0f} KiB in / {row.kib_out:.0f} KiB out"
        for row in rows
    ]
    per_message = " / ".join(f"{row.p50_ms / row.folded * 1000:.0f}" for row in rows)
    lines.append(f"  p50 per folded message, smallest to largest backlog: {per_message} us")
    biggest = max(result.llm, key=lambda row: (row.messages, row.line_tokens))
    ratios = [row.ratio for row in result.llm]
    lines.append(
        f"LLM calls to fold a backlog (fake instant model): calls/ceil(line tokens/budget) "
        f"{min(ratios):.2f}-{max(ratios):.2f}; e.g."
    )
    for row in result.llm:
        if row.messages == biggest.messages:
            lines.append(
                f"  {row.model:27} budget {row.line_budget:5d}: {row.messages} {row.kind:5} msgs "
                f"({row.line_tokens} tok): {row.calls:4d} calls, {row.messages_per_call:.0f} msgs/call, "
                f"{row.tokens_per_call:.0f} input tok/call"
            )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    return standalone_main(
        argv, lambda quick, progress: benchmark(QUICK if quick else DEFAULT, progress), print_result, summary_lines
    )


if __name__ == "__main__":
    sys.exit(main())
