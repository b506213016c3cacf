"""Regressions found in review: each test names the failure it guards against."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
import redis

from devserver.embedded_redis import EmbeddedRedis, free_port
from devserver.local_sqs import LocalSqs
from motorhead.errors import IndexingIncompleteError, SummarizerError
from motorhead.exact_index import ExactVectorIndex
from motorhead.keys import Keys
from motorhead.llm_openai import openai_chat_model
from motorhead.llm_summary import LlmSummaryWriter
from motorhead.ltm_ports import Vectors
from motorhead.ports import SessionJob
from motorhead.redis_client import RedisConnector
from motorhead.redis_store import RedisMemoryStore
from motorhead.retrieval import IndexerService
from motorhead.settings import PACKAGED_TIKTOKEN_CACHE, Settings
from motorhead.summarizer import SummarizerService
from motorhead.tokens import TokenCounter
from tests.integration.conftest import fresh_queue
from tests.openai_stub import Answer, OpenAIStub, Status
from tests.support import Api, body, cold_start, load_event, post_event


@pytest.fixture
def store(redis_server: EmbeddedRedis, redis_client: redis.Redis) -> Iterator[RedisMemoryStore]:
    connector = RedisConnector(Settings(REDIS_URL=redis_server.url))
    yield RedisMemoryStore(connector, Keys("mh"))
    connector.close()


def test_summarizer_given_a_long_backlog_commits_call_by_call_so_a_later_failure_keeps_the_progress(
    store: RedisMemoryStore,
) -> None:
    # Given a backlog that needs several LLM calls, and an LLM that answers twice then fails
    for i in range(40):
        store.append("s", [("Human", f"fact {i}: " + "word " * 30)], context=None, namespace="", now_ms=i)
    with OpenAIStub() as stub:
        stub.script(Answer("summary one"), Answer("summary two"), *[Status(500)] * 3)
        settings = Settings(OPENAI_API_BASE=stub.base_url, OPENAI_API_KEY="sk", MOTORHEAD_LLM_MAX_RETRIES="0")
        writer = LlmSummaryWriter(
            model=openai_chat_model(settings, api_key="sk"),
            counter=TokenCounter(model="gpt-4o-mini", cache_dir=PACKAGED_TIKTOKEN_CACHE),
            summary_max_tokens=64,
            max_batch_tokens=400,
        )
        # When the job runs / Then it fails on the third call...
        with pytest.raises(SummarizerError):
            SummarizerService(store=store, writer=writer, window=12).run(SessionJob(session_id="s", last_id=40))
    # ...but what the first two calls folded is committed: the next delivery starts from there
    snapshot = store.read("s", limit=100)
    assert snapshot.context == "summary two"
    assert 6 < len(snapshot.messages) < 40 - 6


class Tiny:
    """Vectors are data here, not the point: the store and the index are real."""

    identity = "test:tiny:4"
    dimensions = 4

    def embed(self, texts: Sequence[str]) -> Vectors:
        return np.tile(np.array([1, 0, 0, 0], dtype=np.float32), (len(texts), 1))


def test_indexer_given_more_pending_than_one_job_takes_fails_the_job_and_the_next_delivery_finishes(
    store: RedisMemoryStore, redis_client: redis.Redis, redis_server: EmbeddedRedis
) -> None:
    # Given 300 pending messages and an indexer allowed 2 batches of 128 per job
    for i in range(300):
        store.append("s", [("Human", f"m{i}")], context=None, namespace="", now_ms=i, index=True)

    connector = RedisConnector(Settings(REDIS_URL=redis_server.url))
    indexer = IndexerService(
        store=store, embedder=Tiny(), index=ExactVectorIndex(connector, Keys("mh"), dimensions=4), max_rounds=2
    )
    # When the job runs / Then it fails so that SQS delivers it again (messages stay pending, lease held)
    with pytest.raises(IndexingIncompleteError):
        indexer.run(SessionJob(session_id="s", last_id=300))
    assert redis_client.zcard(Keys("mh").session("s").pending) == 300 - 256
    # And the next delivery indexes the rest and lets go of the lease
    indexer.run(SessionJob(session_id="s", last_id=300))
    assert redis_client.zcard(Keys("mh").session("s").pending) == 0
    assert redis_client.llen(Keys("mh").session("s").docs) == 300
    assert not redis_client.hexists(Keys("mh").session("s").meta, "idx_at")


def test_post_given_a_deleted_and_recreated_session_sends_a_job_fifo_will_not_swallow(
    local_sqs: LocalSqs, redis_server: EmbeddedRedis, redis_client: redis.Redis
) -> None:
    # Given a session that sent a job, then was deleted and re-created up to the same message id
    queue = fresh_queue(local_sqs, "SummarizerFunction")
    with cold_start(
        REDIS_URL=redis_server.url, MOTORHEAD_MAX_WINDOW_SIZE="2", MOTORHEAD_SUMMARY_QUEUE_URL=queue.url
    ) as api:
        payload = {"messages": [{"role": "Human", "content": str(i)} for i in range(3)]}
        api.invoke("PostMemoryFunction", post_event("s", payload))
        delete = load_event("delete_memory-ok")
        delete["pathParameters"] = {"session_id": "s"}
        delete["rawPath"] = delete["requestContext"]["http"]["path"] = "/sessions/s/memory"
        api.invoke("DeleteMemoryFunction", delete)
        api.invoke("PostMemoryFunction", post_event("s", payload))
    # Then both jobs are queued (FIFO deduplication would drop the second within 5 minutes if their deduplication
    # ids were equal: ids restart after DELETE, generations do not)
    received = local_sqs.client().receive_message(
        QueueUrl=queue.url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=60
    )["Messages"]
    dedup = [m["Attributes"]["MessageDeduplicationId"] for m in received]
    assert [json.loads(m["Body"])["last_id"] for m in received] == [3, 3]
    assert len(set(dedup)) == 2


@pytest.mark.parametrize(
    "payload",
    [
        '{"messages": [{"role": "Human", "content": "cut mid-emoji \\ud83e"}]}',
        '{"messages": [], "context": "\\udfff"}',
        '{"messages": [{"role": "\\ud800", "content": "x"}]}',
    ],
)
def test_post_given_lone_surrogates_returns_422_not_500(api: Api, redis_client: redis.Redis, payload: str) -> None:
    response = api.invoke("PostMemoryFunction", post_event("s", payload))
    assert response["statusCode"] == 422 and "Unicode" in body(response)["error"]
    assert redis_client.dbsize() == 0


def test_list_sessions_given_a_huge_page_returns_422_not_500(api: Api) -> None:
    event = load_event("list_sessions-ok")
    event["queryStringParameters"] = {"page": str(10**20)}
    event["rawQueryString"] = f"page={10**20}"
    assert api.invoke("ListSessionsFunction", event)["statusCode"] == 422


def test_retrieval_given_redis_down_imports_fine_and_answers_503_json() -> None:
    # Given long-term memory on, the auto backend, and no Redis at all (a cold start must not need it)
    with cold_start(
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        MOTORHEAD_LONG_TERM_MEMORY="true",
        MOTORHEAD_EMBEDDER="local",
        MOTORHEAD_VECTOR_BACKEND="auto",
    ) as api:
        event = post_event("s", {"text": "anything"})
        event["routeKey"] = event["requestContext"]["routeKey"] = "POST /sessions/{session_id}/retrieval"
        event["rawPath"] = event["requestContext"]["http"]["path"] = "/sessions/s/retrieval"
        response = api.invoke("RetrievalFunction", event)
    assert response["statusCode"] == 503 and "redis unavailable" in body(response)["error"]


def test_summarizer_given_little_time_left_commits_one_step_and_leaves_the_rest(store: RedisMemoryStore) -> None:
    # Given a backlog of several LLM steps and an invocation about to run out of time
    for i in range(40):
        store.append("s", [("Human", f"fact {i}: " + "word " * 30)], context=None, namespace="", now_ms=i)
    with OpenAIStub() as stub:
        settings = Settings(OPENAI_API_BASE=stub.base_url, OPENAI_API_KEY="sk", MOTORHEAD_LLM_MAX_RETRIES="0")
        writer = LlmSummaryWriter(
            model=openai_chat_model(settings, api_key="sk"),
            counter=TokenCounter(model="gpt-4o-mini", cache_dir=PACKAGED_TIKTOKEN_CACHE),
            summary_max_tokens=64,
            max_batch_tokens=400,
        )
        service = SummarizerService(store=store, writer=writer, window=12, reserve=10.0)
        # When the job runs with 1 s left / Then it makes one step of progress, commits it, and stops cleanly
        outcome = service.run(SessionJob(session_id="s", last_id=40), time_left=lambda: 1.0)
        assert (outcome.commits, len(stub.requests)) == (1, 1)
    assert store.read("s", limit=100).context
