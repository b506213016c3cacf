"""Summary jobs on a real Redis and a real OpenAI-compatible server: they commit step by step, and start no step
they do not have the time to finish."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from devserver.embedded_redis import EmbeddedRedis
from motorhead.adapters.openai_api.chat_model import openai_chat_model
from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.keys import Keys
from motorhead.adapters.redis_db.store import RedisMemoryStore
from motorhead.adapters.tiktoken_local.counter import TiktokenCounter
from motorhead.core.job_loop import StepBudget
from motorhead.core.summarization.llm_writer import LlmSummaryWriter
from motorhead.core.summarization.service import SummarizerService
from motorhead.core.values import NewMessage, SessionJob
from motorhead.errors import JobIncompleteError, SummarizerError
from motorhead.settings import PACKAGED_TIKTOKEN_CACHE, Settings
from tests.openai_stub import Answer, OpenAIStub, Status
from tests.support import ref


@pytest.fixture
def store(redis_server: EmbeddedRedis, redis_client: redis.Redis) -> Iterator[RedisMemoryStore]:
    connector = RedisConnector(Settings(REDIS_URL=redis_server.url))
    yield RedisMemoryStore(connector, Keys("mh"))
    connector.close()


def _backlog(store: RedisMemoryStore, n: int = 40) -> None:
    for i in range(n):
        store.append(
            ref("s"), [NewMessage("Human", f"fact {i}: " + "word " * 30)], context=None, namespace="", now_ms=i
        )


def _writer(stub: OpenAIStub) -> LlmSummaryWriter:
    """An LLM writer on the stub server, batches of at most 400 tokens (several steps for the backlog), no retries."""
    settings = Settings(OPENAI_API_BASE=stub.base_url, OPENAI_API_KEY="sk", MOTORHEAD_LLM_MAX_RETRIES="0")
    return LlmSummaryWriter(
        model=openai_chat_model(settings, api_key="sk"),
        counter=TiktokenCounter(model="gpt-4o-mini", cache_dir=PACKAGED_TIKTOKEN_CACHE),
        summary_max_tokens=64,
        max_batch_tokens=400,
    )


def test_summarizer_given_a_long_backlog_commits_call_by_call_so_a_later_failure_keeps_the_progress(
    store: RedisMemoryStore,
) -> None:
    # Given a backlog that needs several LLM calls, and an LLM that answers twice then fails
    _backlog(store)
    with OpenAIStub() as stub:
        stub.script(Answer("summary one"), Answer("summary two"), *[Status(500)] * 3)
        writer = _writer(stub)
        # When the job runs / Then it fails on the third call...
        with pytest.raises(SummarizerError):
            SummarizerService(store=store, writer=writer, window=12).run(SessionJob(session=ref("s"), last_id=40))
    # ...but what the first two calls folded is committed: the next delivery starts from there
    snapshot = store.read(ref("s"), limit=100)
    assert snapshot.context == "summary two"
    assert 6 < len(snapshot.messages) < 40 - 6


def test_summarizer_given_less_time_than_one_step_starts_no_llm_call_and_asks_for_redelivery(
    store: RedisMemoryStore,
) -> None:
    # Given a backlog of several LLM steps and an invocation with 1 s left, where one step may take 10 s
    _backlog(store)
    with OpenAIStub() as stub:
        service = SummarizerService(store=store, writer=_writer(stub), window=12, budget=StepBudget(reserve=10.0))
        # When the job runs / Then it calls no LLM (the call would outlive the invocation) and fails, so SQS delivers
        # it again
        with pytest.raises(JobIncompleteError):
            service.run(SessionJob(session=ref("s"), last_id=40), time_left=lambda: 1.0)
        assert stub.requests == []
    # And nothing changed
    snapshot = store.read(ref("s"), limit=100)
    assert (snapshot.context, len(snapshot.messages)) == (None, 40)


def test_summarizer_given_time_for_one_step_commits_it_and_leaves_the_rest(store: RedisMemoryStore) -> None:
    # Given a backlog of several LLM steps and an invocation with time for one 10 s step only
    _backlog(store)
    left = iter([15.0, 4.0, 4.0])
    with OpenAIStub() as stub:
        service = SummarizerService(store=store, writer=_writer(stub), window=12, budget=StepBudget(reserve=10.0))
        # When the job runs / Then it makes one step of progress, commits it, and stops cleanly
        outcome = service.run(SessionJob(session=ref("s"), last_id=40), time_left=lambda: next(left))
        assert (outcome.commits, len(stub.requests)) == (1, 1)
    snapshot = store.read(ref("s"), limit=100)
    assert snapshot.context and 12 < len(snapshot.messages) < 40
