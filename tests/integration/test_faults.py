"""Faults that only real processes and real sockets show: Redis going away under live traffic, Lambda killing a summary
job at its timeout, and a reply lost on its way back from Redis. The first two run the template's functions in the
local Lambda runtime (each in its own processes, with its own environment and timeout), so a recovery there is the
functions' own, not a fixture's.

What must hold through a fault: nothing acknowledged is lost, nothing is stored or folded twice, every refusal is a
fast 503 the client can retry, and the service comes back by itself once the fault is over.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
import requests

from devserver.embedded_redis import EmbeddedRedis, free_port
from devserver.execution import LocalFunction
from devserver.lambda_runtime import http_event
from devserver.local_sqs import LocalQueue, LocalSqs, SqsPoller
from devserver.server import IsolatedFunction, LocalGateway
from devserver.template import FunctionConfig, load_function_configs, load_routes
from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.keys import Keys
from motorhead.adapters.redis_db.store import RedisMemoryStore
from motorhead.adapters.tiktoken_local.counter import TiktokenCounter
from motorhead.core.summarization.llm_writer import NO_SUMMARY, LlmSummaryWriter
from motorhead.core.values import NewMessage, StoredMessage
from motorhead.settings import PACKAGED_TIKTOKEN_CACHE, Settings
from tests.fault_proxy import ReplyDroppingProxy
from tests.integration.conftest import fresh_queue
from tests.openai_stub import Answer, Behaviour, Hang, OpenAIStub, RecordedRequest, Status
from tests.support import body, cold_start, post_event, ref

# What every function's environment gets from the runtime (as in test_job_backlogs.Deployment): no variable of this
# process leaks into a function.
BASE_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
    "OPENBLAS_NUM_THREADS": "1",
}


def runtimes(
    parameters: dict[str, str], resources: dict[str, str], base: dict[str, str], *, max_concurrency: int = 4
) -> dict[str, LocalFunction]:
    """Every function of the template in the local Lambda runtime, configured by the template (not started yet: an
    environment starts on a function's first invocation)."""
    configs = load_function_configs({"AuthMode": "none", "RateLimitPerSecond": "0", **parameters}, resources)
    return {
        name: LocalFunction(config, base_environment=base, max_concurrency=max_concurrency)
        for name, config in configs.items()
    }


# --- 1. Redis stopped and started again under concurrent writers ------------------------------------------------
WRITERS = 8
ENVIRONMENTS = 4  # concurrent POST invocations (Lambda instances): 8 cold starts at once take ~9 s on 2 cores
SESSION = "outage"
REFUSAL_BOUND_S = 3.0  # connect timeout 1 s + socket timeout 2 s: a refused POST never waits longer than that
RECOVERY_GRACE_S = 1.0  # after Redis answers PING again, the first POSTs may still meet it loading its AOF


@dataclass(frozen=True)
class Attempt:
    """One POST as its client saw it."""

    writer: int
    n: int
    started: float
    ended: float
    status: int
    retry_after: str | None
    content_type: str | None
    body: bytes

    @property
    def contents(self) -> list[str]:
        return [f"w{self.writer}n{self.n}k{k}" for k in range(2)]

    @property
    def elapsed(self) -> float:
        return self.ended - self.started


@contextmanager
def gateway_on(redis_url: str) -> Iterator[tuple[str, dict[str, LocalFunction]]]:
    """The API's functions in their own processes behind the local gateway (``make run``'s way), on ``redis_url``,
    with a window big enough for GET to return the whole session. Each POST environment keeps its own connector."""
    functions = runtimes(
        {"RedisUrl": redis_url, "RedisMode": "standalone", "MaxWindowSize": "10000"},
        {},
        BASE_ENVIRONMENT,
        max_concurrency=ENVIRONMENTS,
    )
    routed = [IsolatedFunction(route, functions[route.function_id]) for route in load_routes()]
    gateway = LocalGateway(("127.0.0.1", 0), routed, {})
    thread = threading.Thread(target=gateway.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{gateway.server_address[1]}", functions
    finally:
        gateway.shutdown()
        gateway.server_close()
        thread.join()
        for function in functions.values():
            function.close()


def test_posts_given_redis_restarted_under_concurrent_writers_keep_every_acknowledged_message(tmp_path: Path) -> None:
    """Redis restarts (a failover, a patch, a crash-restart) must cost clients a few fast, retryable 503s and nothing
    else: every 200 is a durable write, a 503 never hangs the client, and the functions reconnect by themselves
    without a cold start. One session shared by all writers makes its id counter and the all-or-nothing write of
    every POST meet the outage at once."""
    # Given a Redis with an append-only file on a fixed port, and the functions in their own processes on it
    server = EmbeddedRedis(port=free_port(), data_dir=tmp_path / "redis").start()
    try:
        with gateway_on(server.url) as (base_url, functions):
            url = f"{base_url}/sessions/{quote(SESSION, safe='')}/memory"
            post_function = functions["PostMemoryFunction"]
            attempts: list[Attempt] = []
            attempts_lock = threading.Lock()
            stop = threading.Event()

            def write(writer: int) -> None:
                with requests.Session() as http:
                    n = 0
                    while not stop.is_set():
                        payload = {"messages": [{"role": "Human", "content": f"w{writer}n{n}k{k}"} for k in range(2)]}
                        started = time.monotonic()
                        answer = http.post(url, json=payload, timeout=15)
                        attempt = Attempt(
                            writer=writer,
                            n=n,
                            started=started,
                            ended=time.monotonic(),
                            status=answer.status_code,
                            retry_after=answer.headers.get("retry-after"),
                            content_type=answer.headers.get("content-type"),
                            body=answer.content,
                        )
                        with attempts_lock:
                            attempts.append(attempt)
                        n += 1  # a refused POST is not resent: its contents stay unique, so a duplicate shows

            # When 8 writers post continuously, and Redis is shut down (AOF flushed) and started again on its port
            writers = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
            for thread in writers:
                thread.start()
            warm_by = time.monotonic() + 20
            while post_function.cold_starts < ENVIRONMENTS or len({a.writer for a in list(attempts)}) < WRITERS:
                assert time.monotonic() < warm_by, "the POST environments did not start"
                time.sleep(0.1)
            time.sleep(0.5)  # every POST environment started, every writer writing
            cold_starts_before = post_function.cold_starts
            down_at = time.monotonic()
            server.stop()
            time.sleep(1.5)
            server.start()
            up_at = time.monotonic()
            time.sleep(2.0)
            stop.set()
            for thread in writers:
                thread.join()

            # Then every answer was a 200, or a fast 503 JSON with Retry-After, and only around the outage
            statuses = Counter(a.status for a in attempts)
            assert set(statuses) <= {200, 503}, statuses
            refused = [a for a in attempts if a.status == 503]
            assert refused, "no POST met the outage"
            for attempt in refused:
                assert json.loads(attempt.body) == {"error": "redis unavailable"}, attempt
                assert attempt.retry_after == "1" and attempt.content_type == "application/json", attempt
                assert attempt.elapsed < REFUSAL_BOUND_S, attempt
                assert down_at <= attempt.ended and attempt.started <= up_at + RECOVERY_GRACE_S, attempt
            # And every writer got 200s again once Redis was back, from the same environments (no cold start)
            for writer in range(WRITERS):
                after = [a for a in attempts if a.writer == writer and a.started > up_at + RECOVERY_GRACE_S]
                assert after and all(a.status == 200 for a in after), (writer, Counter(a.status for a in after))
            assert post_function.cold_starts == cold_starts_before and post_function.timeouts == 0
            # And the session, read back through the API, holds every acknowledged message once, each POST whole
            read = requests.get(url, timeout=15)
            assert read.status_code == 200
            stored = list(reversed(read.json()["messages"]))  # oldest first
            assert len(stored) < 10_000  # the window: GET returned the whole session
            ids = [m["id"] for m in stored]
            contents = [m["content"] for m in stored]
            duplicated = [c for c, times in Counter(contents).items() if times > 1]
            acknowledged = {c for a in attempts if a.status == 200 for c in a.contents}
            assert duplicated == [] and acknowledged - set(contents) == set()
            assert ids == list(range(1, len(ids) + 1))  # unique, increasing, and no id handed out then lost
            by_content = dict(zip(contents, ids, strict=True))
            posts = [a for a in attempts if a.contents[0] in by_content or a.contents[1] in by_content]
            assert all(by_content.get(a.contents[1]) == by_content.get(a.contents[0], -2) + 1 for a in posts)
            for writer in range(WRITERS):  # a writer's later POST always got later ids
                mine = [by_content[a.contents[0]] for a in sorted(posts, key=lambda a: a.n) if a.writer == writer]
                assert mine == sorted(mine)
            # And what Redis holds directly agrees with what GET returned
            with redis.Redis.from_url(server.url, decode_responses=True) as client:
                key = Keys("mh").session(ref(SESSION)).messages
                raw: list[str] = client.zrange(key, 0, -1)
            assert [json.loads(member)["id"] for member in raw] == ids
            ambiguous = len(posts) - statuses[200]  # refused, yet stored: the reply was lost as Redis went down
            print(
                f"\nredis restart: posts={len(attempts)} ok={statuses[200]} refused={len(refused)} "
                f"stored-though-refused={ambiguous} messages={len(ids)} "
                f"slowest refusal={max(a.elapsed for a in refused):.3f}s "
                f"outage={up_at - down_at:.2f}s cold starts={post_function.cold_starts}"
            )
    finally:
        server.stop()


# --- 2. A summary job killed at its timeout halfway through a backlog -------------------------------------------
WINDOW = 12
BACKLOG = 40
FILLER = " ".join(["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"] * 4)
ANSWER_AFTER_S = 0.5  # each LLM answer: slow, yet well inside MOTORHEAD_LLM_TIMEOUT (no client-side retry)
LLM_TIMEOUT_S = 2
LLM_MAX_RETRIES = 1  # the job's reserve: 2 s x 2 attempts + 5 s = 9 s; no step starts with less time left
SUMMARIZER_TIMEOUT_S = 14.0  # steps may start in the first 5 s: room for the whole rest after a redelivery
RATE_LIMITED_CALL = 2  # the third LLM call (the third step) is told to come back later...
RETRY_AFTER_S = 60  # ...much later than the invocation has left: the openai client waits, and Lambda kills it
CONTEXT_TOKENS, SUMMARY_MAX_TOKENS = 1024, 200  # a 440-token line budget: 7 of these messages per LLM call
PROMPT = re.compile(
    r"Current summary:\n(?P<summary>.*?)\n\nNew lines of the conversation:\n(?P<lines>.*?)\n\nUpdated", re.S
)


def message_id(n: int) -> str:
    return f"m{n:02d}"


def folded_ids(request: RecordedRequest) -> tuple[list[str], list[str]]:
    """The summary a call started from (as a ledger of ids) and the ids of the lines it was asked to fold."""
    found = PROMPT.search(request.content_of("user"))
    assert found is not None, request.content_of("user")
    previous = [] if found["summary"] == NO_SUMMARY else found["summary"].split()
    return previous, [line.split(": ", 1)[1].split()[0] for line in found["lines"].splitlines()]


class LedgerLlm:
    """A slow OpenAI-compatible model whose "summary" is the ledger of what it folded: the previous summary followed
    by the id of every new line. Whatever ends up in ``context`` is therefore the exact record of every message
    folded by a committed step, in order. One call, ``rate_limited_call``, gets a 429 whose Retry-After outlasts
    the invocation."""

    def __init__(self, *, answer_after: float, rate_limited_call: int, retry_after: int) -> None:
        self._answer_after = answer_after
        self._rate_limited_call = rate_limited_call
        self._retry_after = retry_after

    def __call__(self, request: RecordedRequest) -> Behaviour:
        if request.index == self._rate_limited_call:
            return Status(429, headers={"retry-after": str(self._retry_after)})
        previous, new = folded_ids(request)
        return Hang(
            self._answer_after, then=Answer(" ".join(previous + new), prompt_tokens=len(new), completion_tokens=0)
        )


def expected_steps() -> list[int]:
    """How many messages each step (one LLM call, one commit) folds, by the product's own batching (tiktoken, the
    line budget): each step takes the first batch of what overflows the newest half of the window, until the
    session fits the window. The ledger stays far under the summary's token budget, so it never shrinks a batch."""
    writer = LlmSummaryWriter(
        model=None,  # type: ignore[arg-type]  # only the batching is asked of it
        counter=TiktokenCounter(model="gpt-4o-mini", cache_dir=PACKAGED_TIKTOKEN_CACHE),
        summary_max_tokens=SUMMARY_MAX_TOKENS,
        context_tokens=CONTEXT_TOKENS,
    )
    left = [
        StoredMessage(id=n + 1, role="Human", content=f"{message_id(n)} {FILLER}", created_at=0) for n in range(BACKLOG)
    ]
    steps: list[int] = []
    while len(left) > WINDOW:
        steps.append(len(next(writer.batches(left[: len(left) - WINDOW // 2]))))
        left = left[steps[-1] :]
    return steps


@dataclass
class SummaryDeployment:
    """The post and summarizer functions in the local runtime, the summarizer with a short timeout, on local SQS."""

    post: LocalFunction
    summarizer: LocalFunction
    poller: SqsPoller
    queue: LocalQueue
    sqs: LocalSqs

    def waiting(self) -> int:
        attributes = self.sqs.client().get_queue_attributes(
            QueueUrl=self.queue.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def dead_letters(self) -> int:
        received = self.sqs.client().receive_message(QueueUrl=self.queue.dlq_url, WaitTimeSeconds=0)
        return len(received.get("Messages", []))


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    llm = LedgerLlm(answer_after=ANSWER_AFTER_S, rate_limited_call=RATE_LIMITED_CALL, retry_after=RETRY_AFTER_S)
    with OpenAIStub(default=llm) as running:
        yield running


@pytest.fixture
def deployment(
    redis_server: EmbeddedRedis, redis_client: redis.Redis, local_sqs: LocalSqs, stub: OpenAIStub
) -> Iterator[SummaryDeployment]:
    queue = fresh_queue(local_sqs, "SummarizerFunction")
    base = {**BASE_ENVIRONMENT, "AWS_ENDPOINT_URL_SQS": local_sqs.endpoint}
    parameters = {
        "RedisUrl": redis_server.url,
        "MaxWindowSize": str(WINDOW),
        "Summarizer": "openai",
        "OpenAiApiBase": stub.base_url,
    }
    functions = runtimes(parameters, {"SummaryQueue": queue.url}, base)
    config: FunctionConfig = functions["SummarizerFunction"].config
    short = dataclasses.replace(
        config,
        timeout=SUMMARIZER_TIMEOUT_S,
        environment={
            **config.environment,
            "MOTORHEAD_LLM_TIMEOUT": str(LLM_TIMEOUT_S),
            "MOTORHEAD_LLM_MAX_RETRIES": str(LLM_MAX_RETRIES),
            "MOTORHEAD_MODEL_CONTEXT_TOKENS": str(CONTEXT_TOKENS),
            "MOTORHEAD_SUMMARY_MAX_TOKENS": str(SUMMARY_MAX_TOKENS),
        },
    )
    summarizer = LocalFunction(short, base_environment=base)
    running = SummaryDeployment(
        post=functions["PostMemoryFunction"],
        summarizer=summarizer,
        poller=SqsPoller(local_sqs, queue, function=summarizer, max_backoff=0),
        queue=queue,
        sqs=local_sqs,
    )
    yield running
    for function in (*functions.values(), summarizer):
        function.close()


def test_summary_job_given_killed_at_its_timeout_mid_backlog_loses_nothing_and_finishes_on_redelivery(
    deployment: SummaryDeployment, stub: OpenAIStub, redis_client: redis.Redis
) -> None:
    """Lambda kills an invocation at its timeout wherever it is, whatever the job's own time check promised (here a
    rate-limited LLM call whose Retry-After outlasts the invocation). What the killed invocation committed must
    stay, the step it was in must leave no trace, and SQS's redelivery must finish the backlog from there: no
    message lost, none folded twice, nothing dead-lettered."""
    # Given a session 40 messages long (window 12) posted through the post function, which sends one summary job
    steps = expected_steps()
    assert len(steps) > RATE_LIMITED_CALL + 1  # steps to commit before the kill, and after it
    route = next(r for r in load_routes() if r.function_id == "PostMemoryFunction" and r.path.startswith("/s"))
    contents = [f"{message_id(n)} {FILLER}" for n in range(BACKLOG)]
    event = http_event(
        route,
        method="POST",
        raw_path="/sessions/backlog/memory",
        headers={"content-type": "application/json"},
        body=json.dumps({"messages": [{"role": "Human", "content": c} for c in contents]}).encode(),
    )
    assert deployment.post.invoke(event)["statusCode"] == 200
    keys = Keys("mh").session(ref("backlog"))

    def state() -> tuple[list[str], list[str], int]:
        """The committed ledger, the ids still in the list (oldest first), and the tokens counted."""
        context = redis_client.hget(keys.meta, "context") or ""
        members: list[str] = redis_client.zrange(keys.messages, 0, -1)  # type: ignore[assignment]
        remaining = [json.loads(member)["content"].split()[0] for member in members]
        return str(context).split(), remaining, int(redis_client.hget(keys.meta, "tokens") or 0)

    # When the summarizer runs it with a 14 s timeout: two steps commit, the third one's LLM call is rate-limited
    started = time.monotonic()
    assert deployment.poller.poll_once(wait_seconds=5) == 1
    first_delivery = time.monotonic() - started
    # Then the runtime killed that invocation, and the two committed steps stayed, nothing else changed
    assert deployment.summarizer.timeouts == 1
    folded, remaining, tokens = state()
    committed = sum(steps[:RATE_LIMITED_CALL])
    everything = [message_id(n) for n in range(BACKLOG)]
    assert folded == everything[:committed] and remaining == everything[committed:] and tokens == committed
    killed_previous, killed_lines = folded_ids(stub.requests[RATE_LIMITED_CALL])
    assert killed_previous == folded  # the killed step had started from the committed summary

    # When SQS delivers the job again until the queue is empty
    deadline = time.monotonic() + 30
    while deployment.waiting() and time.monotonic() < deadline:
        deployment.poller.poll_once(wait_seconds=1)
    total = time.monotonic() - started

    # Then every message is in the list or in exactly one committed summary, in order, none twice
    folded, remaining, tokens = state()
    assert folded + remaining == everything, (folded, remaining)
    assert len(remaining) <= WINDOW and len(folded) == sum(steps)
    assert tokens == len(folded)  # the usage of committed calls only: the killed call's answer never came
    # And the killed step's batch was folded again, from the summary it had started from, by the redelivery
    calls = stub.requests
    assert folded_ids(calls[RATE_LIMITED_CALL + 1]) == (killed_previous, killed_lines)
    assert len(calls) == len(steps) + 1  # one call per step, plus the one that was killed
    assert [len(folded_ids(r)[1]) for r in calls if r.index != RATE_LIMITED_CALL] == steps
    # And only that one invocation timed out, the job left the queue, and nothing went to the dead-letter queue
    assert deployment.summarizer.timeouts == 1 and deployment.waiting() == 0
    assert deployment.dead_letters() == 0
    print(
        f"\nkilled summary job: steps={steps} committed before the kill={committed} "
        f"first delivery={first_delivery:.1f}s total={total:.1f}s llm calls={len(calls)} "
        f"cold starts={deployment.summarizer.cold_starts} timeouts={deployment.summarizer.timeouts}"
    )


# --- 3. A reply lost on a live Redis while another POST lands on the same session ------------------------------
def test_post_given_its_reply_lost_while_another_post_lands_stores_its_messages_once(
    redis_server: EmbeddedRedis, redis_client: redis.Redis
) -> None:
    """A lost reply on a live server (a connection reset by a NAT, a load balancer, a blip) is the fault in which
    Redis did the write and the client resends it: with several writers on one session, as chat apps have (a user's
    tabs, an agent and its tools), another POST can land between the write and the resend."""
    other_connector = RedisConnector(Settings(REDIS_URL=redis_server.url, MOTORHEAD_REDIS_MODE="standalone"))
    other_instance = RedisMemoryStore(other_connector, Keys("mh"))

    def another_post_lands() -> None:
        other_instance.append(
            ref("s"), [NewMessage(role="Human", content="from B")], context=None, namespace="default", now_ms=1
        )

    # Given the post function reaching Redis through a link that will lose one reply, its script already loaded
    with (
        closing(other_connector),
        ReplyDroppingProxy(redis_server.port) as link,
        cold_start(REDIS_URL=link.url, MOTORHEAD_REDIS_MODE="standalone") as api,
    ):
        warm = api.invoke("PostMemoryFunction", post_event("warm", {"messages": [{"role": "Human", "content": "w"}]}))
        assert warm["statusCode"] == 200
        # When its next write runs on Redis, its reply is lost, and another POST lands before the client resends
        link.lose_next_reply(b"EVALSHA", another_post_lands)
        posted = api.invoke("PostMemoryFunction", post_event("s", {"messages": [{"role": "Human", "content": "A"}]}))
    # Then the client was answered once, and its message is stored once
    assert link.replies_lost == 1
    assert (posted["statusCode"], body(posted)) == (200, {"status": "Ok"})
    members: list[str] = redis_client.zrange(Keys("mh").session(ref("s")).messages, 0, -1)  # type: ignore[assignment]
    assert [json.loads(member)["content"] for member in members] == ["A", "from B"]
