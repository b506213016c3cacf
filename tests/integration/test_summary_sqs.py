"""Summarization end to end on a real Redis and SQS FIFO (moto's server): POST → job → summarizer handler → commit."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from devserver.embedded_redis import EmbeddedRedis, free_port
from devserver.local_sqs import LocalQueue, LocalSqs, SqsPoller
from motorhead.adapters.redis_db.keys import Keys, session_tag
from tests.integration.conftest import fresh_queue
from tests.support import Api, body, cold_start, get_event, load_event, messages, post_event, ref


@pytest.fixture
def queue(local_sqs: LocalSqs) -> LocalQueue:
    return fresh_queue(local_sqs, "SummarizerFunction")


@pytest.fixture
def api(queue: LocalQueue, redis_server: EmbeddedRedis, redis_client: redis.Redis) -> Iterator[Api]:
    """Window 4 (keep 2), jobs sent to the local FIFO queue, offline extractive summarizer."""
    with cold_start(
        REDIS_URL=redis_server.url,
        MOTORHEAD_MAX_WINDOW_SIZE="4",
        MOTORHEAD_SUMMARY_QUEUE_URL=queue.url,
        MOTORHEAD_SUMMARIZER="extractive",
    ) as loaded:
        yield loaded


def receive_all(sqs: LocalSqs, url: str) -> list[dict[str, Any]]:
    """Every message now visible in the queue (each received once, then hidden for a minute)."""
    client, found = sqs.client(), []
    while batch := client.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=60
    ).get("Messages", []):
        found.extend(batch)
    return found


def post(api: Api, session_id: str, n: int, start: int = 0) -> None:
    contents = [
        {"role": "Human", "content": f"Fact number {i}: the meeting with Ana moved to room {100 + i} on Friday."}
        for i in range(start, start + n)
    ]
    assert api.invoke("PostMemoryFunction", post_event(session_id, {"messages": contents}))["statusCode"] == 200


def test_post_given_session_over_window_enqueues_exactly_one_job(
    api: Api, local_sqs: LocalSqs, queue: LocalQueue
) -> None:
    # Given a window of 4 / When 5 POSTs of 2 messages arrive (over the window from the third on)
    for i in range(5):
        post(api, "s-1", 2, start=2 * i)
    # Then exactly one job is queued, for the state that crossed the window
    (job,) = receive_all(local_sqs, queue.url)
    assert json.loads(job["Body"]) == {"v": 1, "session_id": "s-1", "last_id": 6}
    assert job["Attributes"]["MessageGroupId"] == session_tag(ref("s-1"))
    assert re.fullmatch(rf"{session_tag(ref('s-1'))}-[0-9a-f]{{16}}-6", job["Attributes"]["MessageDeduplicationId"])


def test_summarizer_given_received_job_commits_a_summary(api: Api, local_sqs: LocalSqs, queue: LocalQueue) -> None:
    # Given a session over the window and its queued job
    post(api, "s-2", 9)
    # When Lambda's event source mapping feeds the received records to the summarizer handler
    handled = SqsPoller(local_sqs, queue, handler=api.consumer("SummarizerFunction")).drain()
    # Then the job is consumed and GET returns the newest half of the window plus a summary of the rest
    assert handled == 1 and receive_all(local_sqs, queue.url) == []
    memory = body(api.invoke("GetMemoryFunction", get_event("s-2")))
    assert [m["id"] for m in memory["messages"]] == [9, 8]
    assert "Fact number 0" in memory["context"] and "Fact number 6" in memory["context"]
    assert memory["tokens"] == 0  # the offline summarizer bills nothing


def test_summarizer_given_sample_job_event_commits_and_redelivery_is_a_no_op(
    api: Api, redis_client: redis.Redis
) -> None:
    # Given session-42 over the window
    post(api, "session-42", 14)
    # When the sample job event is handled
    response = api.invoke("SummarizerFunction", load_event("summarizer-job"))
    keys = Keys("mh").session(ref("session-42"))
    after_commit = (redis_client.zrange(keys.messages, 0, -1), redis_client.hgetall(keys.meta))
    # Then it succeeded; and the same job delivered again changes nothing at all
    assert response == {"batchItemFailures": []}
    assert api.invoke("SummarizerFunction", load_event("summarizer-redelivery")) == {"batchItemFailures": []}
    assert (redis_client.zrange(keys.messages, 0, -1), redis_client.hgetall(keys.meta)) == after_commit
    assert redis_client.zcard(keys.messages) == 2 and after_commit[1]["context"]


def test_summarizer_given_mixed_batch_reports_exactly_the_failed_record(api: Api, redis_client: redis.Redis) -> None:
    # Given session-42 over the window, and session-7 whose stored data is corrupt (a job for it must fail)
    post(api, "session-42", 6)
    post(api, "session-7", 6)
    redis_client.zadd(Keys("mh").session(ref("session-7")).messages, {"not json at all": 0})
    event = load_event("summarizer-mixed-batch")  # [job session-42, body "not json", job session-7]
    # When the batch is handled
    response = api.invoke("SummarizerFunction", event)
    # Then only session-7's record is reported; the malformed body is dropped (a retry could never help)
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][2]["messageId"]}]}
    assert body(api.invoke("GetMemoryFunction", load_event("get_memory-ok")))["context"]
    assert redis_client.zcard(Keys("mh").session(ref("session-7")).messages) == 7  # nothing of it was removed


def test_summarizer_given_llm_down_retries_then_dead_letters_and_keeps_every_message(
    local_sqs: LocalSqs, queue: LocalQueue, redis_server: EmbeddedRedis, redis_client: redis.Redis
) -> None:
    # Given the OpenAI summarizer pointed at a server that is down (no retries inside the call)
    with cold_start(
        REDIS_URL=redis_server.url,
        MOTORHEAD_MAX_WINDOW_SIZE="4",
        MOTORHEAD_SUMMARY_QUEUE_URL=queue.url,
        OPENAI_API_BASE=f"http://127.0.0.1:{free_port()}/v1",
        MOTORHEAD_LLM_MAX_RETRIES="0",
        MOTORHEAD_LLM_TIMEOUT="2",
    ) as api:
        post(api, "s-3", 9)
        # When the event source mapping keeps delivering the job (no backoff here)
        poller = SqsPoller(local_sqs, queue, handler=api.consumer("SummarizerFunction"), max_backoff=0)
        deliveries = poller.drain(max_batches=20)
        # Then after maxReceiveCount deliveries the job sits in the dead-letter queue
        (dead,) = receive_all(local_sqs, queue.dlq_url)
        assert json.loads(dead["Body"])["session_id"] == "s-3"
        assert deliveries == queue.consumer.max_receive_count
        # And no message was lost, while GET kept working the whole time
        memory = body(api.invoke("GetMemoryFunction", get_event("s-3")))
        assert ([m["id"] for m in memory["messages"]], memory["context"]) == ([9, 8, 7, 6], None)
        assert redis_client.zcard(Keys("mh").session(ref("s-3")).messages) == 9


def test_post_given_queue_unreachable_stores_messages_and_asks_again_next_time(
    redis_server: EmbeddedRedis, redis_client: redis.Redis, local_sqs: LocalSqs
) -> None:
    # Given a queue URL on a port where nothing listens
    dead_queue = f"http://127.0.0.1:{free_port()}/000000000000/nowhere.fifo"
    with cold_start(
        REDIS_URL=redis_server.url,
        MOTORHEAD_MAX_WINDOW_SIZE="4",
        MOTORHEAD_SUMMARY_QUEUE_URL=dead_queue,
        AWS_ENDPOINT_URL_SQS=f"http://127.0.0.1:{free_port()}",
        AWS_MAX_ATTEMPTS="1",
    ) as api:
        # When a POST crosses the window and the job cannot be sent
        response = api.invoke("PostMemoryFunction", post_event("s-4", {"messages": messages(5)}))
        # Then the POST still succeeds, its messages are stored, and the lease is released for the next POST
        assert response["statusCode"] == 200
        meta = redis_client.hgetall(Keys("mh").session(ref("s-4")).meta)
        assert redis_client.zcard(Keys("mh").session(ref("s-4")).messages) == 5 and "job_at" not in meta


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
