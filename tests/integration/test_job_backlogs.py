"""Backlogs through the real job functions under the template's real timeouts and settings, each function in its
own execution environments (the local runtime): nothing left pending, nothing dead-lettered.

This is the test that would have caught indexing failing on AWS while passing locally: with one shared settings
object and 900 s for every function, an indexer whose time reserve exceeded its own timeout still passed here."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import redis

from devserver.embedded_redis import EmbeddedRedis
from devserver.execution import LocalFunction
from devserver.lambda_runtime import http_event
from devserver.local_sqs import LocalQueue, LocalSqs, SqsPoller
from devserver.template import load_function_configs, load_routes
from motorhead.adapters.redis_db.keys import Keys
from tests.integration.conftest import fresh_queue
from tests.support import ref


class Deployment:
    """The post, indexer and summarizer functions as the template configures them, on local SQS and Redis."""

    def __init__(self, redis_url: str, sqs: LocalSqs, index_queue: LocalQueue, summary_queue: LocalQueue) -> None:
        configs = load_function_configs(
            {
                "RedisUrl": redis_url,
                "AuthMode": "none",
                "Embedder": "auto",
                "LongTermMemory": "true",
                "RateLimitPerSecond": "0",
            },
            {"IndexQueue": index_queue.url, "SummaryQueue": summary_queue.url},
        )
        base = {"AWS_ENDPOINT_URL_SQS": sqs.endpoint, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
        base |= {"AWS_DEFAULT_REGION": "us-east-1", "OPENBLAS_NUM_THREADS": "1"}
        self.functions = {
            name: LocalFunction(configs[name], base_environment=base)
            for name in ("PostMemoryFunction", "IndexerFunction", "SummarizerFunction")
        }
        self.route = next(r for r in load_routes() if r.function_id == "PostMemoryFunction" and r.path.startswith("/s"))
        self.indexer = SqsPoller(sqs, index_queue, function=self.functions["IndexerFunction"], max_backoff=0)
        self.summarizer = SqsPoller(sqs, summary_queue, function=self.functions["SummarizerFunction"], max_backoff=0)
        self.queues = (index_queue, summary_queue)
        self.sqs = sqs

    def post(self, session_id: str, contents: list[str]) -> None:
        body = json.dumps({"messages": [{"role": "Human", "content": c} for c in contents]}).encode()
        event = http_event(
            self.route,
            method="POST",
            raw_path=f"/sessions/{session_id}/memory",
            headers={"content-type": "application/json"},
            body=body,
        )
        assert self.functions["PostMemoryFunction"].invoke(event)["statusCode"] == 200

    def drain(self, *, within: float) -> None:
        """Run both queues until neither has anything left (visible or in flight)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            handled = self.indexer.poll_once() + self.summarizer.poll_once()
            if handled == 0 and not any(self.waiting(queue) for queue in self.queues):
                return
            if handled == 0:
                time.sleep(0.2)
        raise AssertionError("the queues did not drain")

    def waiting(self, queue: LocalQueue) -> int:
        attributes = self.sqs.client().get_queue_attributes(
            QueueUrl=queue.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def dead_letters(self) -> int:
        client = self.sqs.client()
        return sum(
            len(client.receive_message(QueueUrl=queue.dlq_url, WaitTimeSeconds=0).get("Messages", []))
            for queue in self.queues
        )

    def close(self) -> None:
        for function in self.functions.values():
            function.close()


@pytest.fixture
def deployment(redis_server: EmbeddedRedis, redis_client: redis.Redis, local_sqs: LocalSqs) -> Iterator[Deployment]:
    running = Deployment(
        redis_server.url,
        local_sqs,
        fresh_queue(local_sqs, "IndexerFunction"),
        fresh_queue(local_sqs, "SummarizerFunction"),
    )
    yield running
    running.close()


def test_backlogs_given_1000_to_index_and_200_to_summarize_leave_nothing_pending_or_dead(
    deployment: Deployment, redis_client: redis.Redis
) -> None:
    # Given 1,000 messages posted to one session (long-term memory on: all to index) and 200 to another
    for start in range(0, 1_000, 100):
        deployment.post(
            "big",
            [f"note {i}: the quick brown fox {i % 7} jumps over lazy dog {i % 11}" for i in range(start, start + 100)],
        )
    for start in range(0, 200, 100):
        deployment.post(
            "long", [f"fact {i}: Ana flies to Bogota on day {i} with {i % 5} bags." for i in range(start, start + 100)]
        )
    # When the indexer and the summarizer run their jobs, each with its own Timeout, memory and settings
    deployment.drain(within=240)
    # Then every message of the big session is indexed and none is pending, and both sessions fit their window
    keys = Keys("mh")
    big, long = keys.session(ref("big")), keys.session(ref("long"))
    assert redis_client.zcard(big.pending) == 0 and redis_client.llen(big.docs) == 1_000
    assert redis_client.zcard(long.pending) == 0 and redis_client.llen(long.docs) == 200
    assert redis_client.zcard(big.messages) <= 12 and redis_client.zcard(long.messages) <= 12
    assert redis_client.hget(long.meta, "context")
    # And nothing went to a dead-letter queue, and no invocation ran past its timeout
    assert deployment.dead_letters() == 0
    assert all(function.timeouts == 0 for function in deployment.functions.values())


def test_template_given_each_job_function_starts_its_steps_within_its_own_timeout() -> None:
    # Given each job function's own settings / Then one step's worst case fits in its timeout, with room for work
    from motorhead.composition.providers import call_reserve, embedding_reserve
    from motorhead.settings import Settings

    configs = load_function_configs({"RedisUrl": "redis://x", "Embedder": "openai"}, {})
    for name, reserve in (("SummarizerFunction", call_reserve), ("IndexerFunction", embedding_reserve)):
        config = configs[name]
        env = {k: v for k, v in config.environment.items() if v != ""}
        settings = Settings(**{**env, "OPENAI_API_KEY": "sk"})  # type: ignore[arg-type]
        assert reserve(settings) < config.timeout * 0.8, (name, reserve(settings), config.timeout)
