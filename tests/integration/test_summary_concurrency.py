"""Zero loss, zero duplication: writers and (re)delivered summarizer jobs hammer one session at the same time."""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import redis

from devserver.embedded_redis import EmbeddedRedis
from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.keys import Keys
from motorhead.adapters.redis_db.store import RedisMemoryStore
from motorhead.adapters.tiktoken_local.counter import TiktokenCounter
from motorhead.core.memory import MemoryService
from motorhead.core.summarization.llm_writer import NO_SUMMARY, LlmSummaryWriter
from motorhead.core.summarization.service import SummarizerService
from motorhead.core.values import ChatResult, MemoryLimits, NewMessage, SessionJob
from motorhead.errors import SummaryConflictError
from motorhead.settings import PACKAGED_TIKTOKEN_CACHE, Settings
from tests.support import ref

WRITERS, POSTS_PER_WRITER, MESSAGES_PER_POST = 4, 150, 2
SUMMARIZERS = 3  # concurrent deliveries of the same job: what SQS redelivery after a visibility timeout looks like
WINDOW = 12
PROMPT = re.compile(
    r"Current summary:\n(?P<summary>.*?)\n\nNew lines of the conversation:\n(?P<lines>.*?)\n\nUpdated", re.S
)


class LedgerModel:
    """A deliberately slow LLM whose 'summary' is the exact ledger of what it was given: the previous summary
    followed by every new line's content. Whatever ends up in ``context`` is therefore a record of every message
    that was folded by a committed job, in order."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.calls = 0

    def complete(self, *, system: str, user: str, max_tokens: int) -> ChatResult:
        with self._lock:
            self.calls += 1
            delay = self._random.uniform(0.002, 0.02)
        time.sleep(delay)
        found = PROMPT.search(user)
        assert found is not None, user
        previous = "" if found["summary"] == NO_SUMMARY else found["summary"]
        contents = [line.split(": ", 1)[1] for line in found["lines"].splitlines()]
        return ChatResult(text=" ".join([previous, *contents]).strip(), total_tokens=len(contents))


@pytest.fixture
def store(redis_server: EmbeddedRedis, redis_client: redis.Redis) -> Iterator[RedisMemoryStore]:
    connector = RedisConnector(Settings(REDIS_URL=redis_server.url))
    yield RedisMemoryStore(connector, Keys("mh"))
    connector.close()


def test_summarize_given_concurrent_writers_and_redelivered_jobs_loses_and_duplicates_nothing(
    store: RedisMemoryStore,
) -> None:
    # Given a session written by 4 writers while 3 summarizer workers keep running its job against a slow LLM
    memory = MemoryService(store=store, limits=MemoryLimits(window=WINDOW))
    model = LedgerModel(seed=7)
    writer = LlmSummaryWriter(
        model=model,
        counter=TiktokenCounter(model="gpt-4o-mini", cache_dir=PACKAGED_TIKTOKEN_CACHE),
        summary_max_tokens=16_384,
        max_batch_tokens=300,  # several model calls per job: the incremental path is exercised
    )
    summarizer = SummarizerService(store=store, writer=writer, window=WINDOW)
    session, job = "busy:{session} ü", SessionJob(session=ref("busy:{session} ü"), last_id=0)
    done = threading.Event()
    stats: Counter[str] = Counter()
    stats_lock = threading.Lock()

    def write(w: int) -> None:
        for n in range(POSTS_PER_WRITER):
            messages = [NewMessage(role="Human", content=f"w{w}n{n}k{k}") for k in range(MESSAGES_PER_POST)]
            memory.add_memory(ref(session), messages)
            time.sleep(0.001)  # let the summarizers interleave with the writers

    def summarize() -> None:
        while not done.is_set():
            try:
                outcome = summarizer.run(job)
            except SummaryConflictError:  # on AWS: an item failure, and SQS delivers the job again
                with stats_lock:
                    stats["jobs"] += 1
                    stats["failed jobs (retried)"] += 1
                continue
            with stats_lock:
                stats["jobs"] += 1
                stats["commits"] += outcome.commits
                stats["conflicts"] += outcome.conflicts
                stats["no-op jobs"] += outcome.commits == 0

    writers = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    workers = [threading.Thread(target=summarize) for _ in range(SUMMARIZERS)]
    for thread in workers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    for thread in workers:
        thread.join()
    # When one last delivery settles the backlog
    summarizer.run(job)
    # Then every posted message is either still in the list or was folded by exactly one committed job, in order
    snapshot = store.read(ref(session), limit=100_000)
    folded = (snapshot.context or "").split()
    remaining = [m.content for m in reversed(snapshot.messages)]
    seen = folded + remaining
    posted = {f"w{w}n{n}k{k}" for w in range(WRITERS) for n in range(POSTS_PER_WRITER) for k in range(2)}
    duplicated = [content for content, times in Counter(seen).items() if times > 1]
    lost = posted - set(seen)
    assert (lost, duplicated) == (set(), [])
    assert set(seen) == posted and len(seen) == WRITERS * POSTS_PER_WRITER * MESSAGES_PER_POST
    for w in range(WRITERS):
        mine = [c for c in seen if c.startswith(f"w{w}n")]
        assert mine == [f"w{w}n{n}k{k}" for n in range(POSTS_PER_WRITER) for k in range(2)]
    assert len(remaining) <= WINDOW
    assert snapshot.tokens == len(folded)  # usage of committed calls only: one token per folded line here
    assert stats["commits"] > 1 and stats["conflicts"] + stats["failed jobs (retried)"] > 0  # the race happened
    print(
        f"\nconcurrency: writers={WRITERS} messages={len(posted)} summarizer workers={SUMMARIZERS} "
        f"jobs={stats['jobs']} commits={stats['commits']} conflicts={stats['conflicts']} "
        f"no-op jobs={stats['no-op jobs']} failed jobs (retried)={stats['failed jobs (retried)']} "
        f"llm calls={model.calls} folded={len(folded)} "
        f"remaining={len(remaining)} lost={len(lost)} duplicated={len(duplicated)}"
    )
