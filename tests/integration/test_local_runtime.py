"""The local runtime enforces what the template says of each function, as Lambda does: its own environment (so its
own settings), its timeout (the context's remaining time follows it; past it, the invocation is killed and an SQS
record comes back), its memory size, one invocation at a time per execution environment."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from devserver.execution import FunctionFailed, FunctionTimedOut, LocalFunction
from devserver.local_sqs import LocalQueue, LocalSqs, SqsPoller
from devserver.template import FunctionConfig, QueueConsumer, load_function_configs
from tests.support import REPO

PROBE = REPO / "tests" / "fixtures" / "functions" / "probe"


def probe(timeout: float = 2.0, memory_size: int = 256, **environment: str) -> FunctionConfig:
    return FunctionConfig(
        function_id="ProbeFunction",
        code_uri=PROBE,
        handler="app.handler",
        timeout=timeout,
        memory_size=memory_size,
        environment=environment,
    )


@pytest.fixture
def running() -> Iterator[list[LocalFunction]]:
    started: list[LocalFunction] = []
    yield started
    for function in started:
        function.close()


def start(running: list[LocalFunction], config: FunctionConfig, **base: str) -> LocalFunction:
    function = LocalFunction(config, base_environment=base)
    running.append(function)
    return function


def test_template_given_each_function_resolves_its_own_environment_timeout_and_memory() -> None:
    # Given the template, a local Redis URL and local queues
    configs = load_function_configs(
        {"RedisUrl": "redis://local"}, {"SummaryQueue": "http://q/s", "IndexQueue": "http://q/i"}
    )
    # Then each function has Globals merged with its own Environment, and its own Timeout and MemorySize
    post, health = configs["PostMemoryFunction"], configs["HealthFunction"]
    assert (
        post.environment["MOTORHEAD_SUMMARY_QUEUE_URL"] == "http://q/s"
        and post.environment["REDIS_URL"] == "redis://local"
    )
    assert "REDIS_URL" not in health.environment and "MOTORHEAD_SUMMARY_QUEUE_URL" not in health.environment
    indexer, retrieval, summarizer = (
        configs[f] for f in ("IndexerFunction", "RetrievalFunction", "SummarizerFunction")
    )
    assert (indexer.timeout, indexer.memory_size, indexer.environment["MOTORHEAD_LLM_TIMEOUT"]) == (60, 1024, "20")
    assert (retrieval.timeout, retrieval.environment["MOTORHEAD_LLM_TIMEOUT"]) == (15, "5")
    assert (summarizer.timeout, summarizer.environment["MOTORHEAD_LLM_MAX_RETRIES"]) == (120, "2")
    assert (health.timeout, health.memory_size) == (10, 512)
    # And nothing that exists only on Lambda (the layers' /opt paths) reaches a local function
    lambda_only = {"TIKTOKEN_CACHE_DIR", "MOTORHEAD_LOCAL_MODEL_DIR"}
    assert all(not lambda_only & set(config.environment) for config in configs.values())


def test_invoke_given_a_function_gives_it_its_own_environment_memory_and_deadline(running: list[LocalFunction]) -> None:
    # Given two functions with different environments, memory and timeouts, sharing one base environment
    first = start(running, probe(timeout=3, memory_size=256, MOTORHEAD_LLM_TIMEOUT="5"), SHARED="base")
    second = start(
        running,
        replace(probe(timeout=9, memory_size=1024, MOTORHEAD_LLM_TIMEOUT="20"), function_id="Other"),
        SHARED="base",
    )
    # When each is invoked
    variables = {"variables": ["MOTORHEAD_LLM_TIMEOUT", "SHARED"]}
    a, b = first.invoke(variables), second.invoke(variables)
    # Then each sees its own variables and the shared ones, its memory size, and a deadline of its own timeout
    assert a["environment"] == {"MOTORHEAD_LLM_TIMEOUT": "5", "SHARED": "base"}
    assert b["environment"] == {"MOTORHEAD_LLM_TIMEOUT": "20", "SHARED": "base"}
    assert (a["memory_limit_in_mb"], b["memory_limit_in_mb"]) == (256, 1024)
    assert 2_000 < a["remaining_ms"] <= 3_000 and 8_000 < b["remaining_ms"] <= 9_000
    assert a["pid"] != b["pid"]


def test_invoke_given_a_warm_environment_reuses_it_and_starts_no_other(running: list[LocalFunction]) -> None:
    function = start(running, probe())
    pids = {function.invoke({})["pid"] for _ in range(5)}
    assert len(pids) == 1 and function.cold_starts == 1


def test_invoke_given_a_run_past_the_timeout_kills_it_and_the_next_starts_cold(running: list[LocalFunction]) -> None:
    # Given a function with a 1 s timeout
    function = start(running, probe(timeout=1.0))
    warm_pid = function.invoke({})["pid"]
    # When an invocation runs past it / Then it fails as on Lambda, within about the timeout
    began = time.monotonic()
    with pytest.raises(FunctionTimedOut, match="timed out after 1 seconds"):
        function.invoke({"sleep": 5})
    assert time.monotonic() - began < 2.5
    # And the next invocation gets a new execution environment (the old one was killed)
    assert function.invoke({})["pid"] != warm_pid and function.cold_starts == 2 and function.timeouts == 1


def test_invoke_given_an_unhandled_exception_fails_and_keeps_the_environment(running: list[LocalFunction]) -> None:
    function = start(running, probe())
    with pytest.raises(FunctionFailed, match="RuntimeError: asked to fail"):
        function.invoke({"fail": True})
    assert function.invoke({})["pid"] and function.cold_starts == 1


def test_sqs_given_a_consumer_past_its_timeout_gets_the_record_again(
    running: list[LocalFunction], local_sqs: LocalSqs, tmp_path: Path
) -> None:
    # Given a consumer whose first invocation sleeps past its 1 s timeout, and a FIFO queue with a redrive policy
    log = tmp_path / "bodies.log"
    config = probe(timeout=1.0, PROBE_SLEEP_ONCE=str(tmp_path / "slept"), PROBE_SLEEP="5", PROBE_LOG=str(log))
    function = start(running, config)
    consumer = QueueConsumer(
        function_id="ProbeFunction",
        code_uri=PROBE,
        handler="app.handler",
        queue_id=f"Probe{time.monotonic_ns()}",
        fifo=True,
        visibility_timeout=30,
        max_receive_count=3,
        batch_size=10,
        url_env=None,
    )
    queue: LocalQueue = local_sqs.create_queues(consumer)
    client = local_sqs.client()
    client.send_message(
        QueueUrl=queue.url, MessageBody=json.dumps({"job": 1}), MessageGroupId="g", MessageDeduplicationId="1"
    )
    poller = SqsPoller(local_sqs, queue, function=function, max_backoff=0)
    # When the poller delivers it: the first invocation is killed at its timeout, the record comes back
    assert poller.poll_once() == 1
    assert not log.exists() and function.timeouts == 1
    # Then the next delivery handles it, and nothing reaches the dead-letter queue
    deadline = time.monotonic() + 10
    while not log.exists():
        assert time.monotonic() < deadline, "the record did not come back"
        poller.poll_once(wait_seconds=1)
    assert log.read_text(encoding="utf-8").splitlines() == [json.dumps({"job": 1})]
    assert client.receive_message(QueueUrl=queue.dlq_url, WaitTimeSeconds=0).get("Messages", []) == []
