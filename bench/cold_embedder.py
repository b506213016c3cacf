"""1b. Cold start of long-term memory on Lambda: the indexer and the retrieval function as ``make build`` built them,
with the local embedder (Embedder local, the template's default: SharedLayer + NumpyLayer + EmbeddingsLayer) and,
side by side, with OpenAI embeddings (Embedder openai: SharedLayer + NumpyLayer + LlmLayer) against the local
OpenAI stub.

Each round starts a new execution environment per function and embedder (``tests/lambda_emulator.py``: the real
runtime interface client on Python 3.12, the built code at /var/task, its layers merged at /opt, Lambda's
environment), and times what Lambda reports:

- ``init``: process start to the runtime's first poll for an event (Lambda's Init Duration: the runtime and the
  handler module's imports; the embedder loads nothing yet);
- ``1st call``: the first invocation, with the model's load (reading model.onnx, its SHA-256 check, the onnxruntime
  session) and the first embedding, or, with OpenAI, the client's first request;
- ``warm``: a second invocation of the same environment.

The indexer embeds the three messages a job brings (posted by the built post function just before, not timed); the
retrieval function answers one query. Each figure is the median over the rounds, on this machine's CPUs: Lambda
gives a 1,024 MB function about 0.6 of a vCPU, so expect longer there. Needs ``make build`` first.
"""

from __future__ import annotations

import json
import random
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3

from bench.events import load_event
from devserver.embedded_redis import EmbeddedRedis
from devserver.local_sqs import LocalSqs
from devserver.template import load_queue_consumers
from tests.lambda_emulator import BUILD_DIR, BuiltFunction, ExecutionEnvironment, XRayDaemon, built_functions
from tests.openai_stub import OpenAIStub

FUNCTIONS = ("IndexerFunction", "RetrievalFunction")
EMBEDDERS = ("local", "openai")
MESSAGES = [
    {"role": "Human", "content": "The team meeting moved to Thursday afternoon."},
    {"role": "Human", "content": "My sister is allergic to peanuts."},
    {"role": "AI", "content": "I bought a new mountain bike last week."},
]


@dataclass(frozen=True)
class Settings:
    rounds: int


DEFAULT = Settings(rounds=5)
QUICK = Settings(rounds=2)


@dataclass
class ColdLtmRow:
    function_id: str
    embedder: str
    layers: list[str]
    init_ms: float  # medians over the rounds
    first_call_ms: float
    warm_call_ms: float
    init_samples_ms: list[float] = field(repr=False)
    first_samples_ms: list[float] = field(repr=False)
    warm_samples_ms: list[float] = field(repr=False)


@dataclass
class ColdLtmResult:
    rounds: int
    rows: list[ColdLtmRow]
    skipped: str | None = None  # why nothing was measured (no build)


def _with_body(name: str, body: dict[str, Any]) -> dict[str, Any]:
    event = load_event(name)
    event["body"], event["isBase64Encoded"] = json.dumps(body), False
    event["headers"].pop("content-length", None)
    return event


@contextmanager
def _deployments(redis_url: str) -> Iterator[tuple[dict[str, dict[str, BuiltFunction]], dict[str, str]]]:
    """The built functions twice, Embedder local and openai (the stub), each under its own key prefix, with queues on
    one moto server; and the environment an account gives every function."""
    with ExitStack() as cleanup:
        sqs = LocalSqs().start()
        cleanup.callback(sqs.stop)
        stub = cleanup.enter_context(OpenAIStub())
        prefix = f"b{uuid.uuid4().hex[:8]}-"
        queues = {c.queue_id: sqs.create_queues(c, prefix=prefix).url for c in load_queue_consumers()}
        secrets = boto3.client(
            "secretsmanager", endpoint_url=sqs.endpoint, region_name="us-east-1", aws_access_key_id="x",
            aws_secret_access_key="x",
        )  # fmt: skip
        secret = secrets.create_secret(Name=f"{prefix}openai", SecretString="sk-bench")["ARN"]
        common = {"RedisUrl": redis_url, "LongTermMemory": "true", "AuthMode": "none", "Summarizer": "extractive"}
        openai = {"Embedder": "openai", "OpenAiApiBase": stub.base_url, "OpenAiApiKeySecretArn": secret}
        deployments = {
            "local": built_functions({**common, "KeyPrefix": "bench-local"}, queues),
            "openai": built_functions({**common, **openai, "KeyPrefix": "bench-openai"}, queues),
        }
        extra = {
            "AWS_ACCESS_KEY_ID": "ASIABENCH",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_SESSION_TOKEN": "bench",
            "AWS_ENDPOINT_URL_SQS": sqs.endpoint,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": sqs.endpoint,
        }
        yield deployments, extra


def _timed(environment: ExecutionEnvironment, event: dict[str, Any]) -> tuple[float, Any]:
    """One invocation's duration (ms) as the caller sees it (the Runtime API's round trips included, < 1 ms)."""
    start = time.perf_counter()
    result = environment.invoke(event)
    return (time.perf_counter() - start) * 1000, result


def benchmark(settings: Settings, progress: Callable[[str], None]) -> ColdLtmResult:
    if not (BUILD_DIR / "EmbeddingsLayer").is_dir():
        return ColdLtmResult(rounds=0, rows=[], skipped=f"no built EmbeddingsLayer in {BUILD_DIR}: run `make build`")
    samples: dict[tuple[str, str], tuple[list[float], list[float], list[float]]] = {
        (function_id, embedder): ([], [], []) for function_id in FUNCTIONS for embedder in EMBEDDERS
    }
    post = _with_body("post_memory-ok", {"messages": MESSAGES})
    job, query = load_event("indexer-job"), _with_body("retrieval-ok", {"text": "Which food must my sibling avoid?"})
    with EmbeddedRedis() as server, _deployments(server.url) as (deployments, extra), ExitStack() as cleanup:
        xray = XRayDaemon()
        cleanup.callback(xray.close)
        writers = {}  # warm post and delete functions per embedder, not timed
        for embedder, functions in deployments.items():
            for function_id in ("PostMemoryFunction", "DeleteMemoryFunction"):
                writers[embedder, function_id] = environment = ExecutionEnvironment(
                    functions[function_id], extra_environment=extra, xray=xray
                )
                cleanup.callback(environment.close)
        pairs = list(samples)
        for round_no in range(1, settings.rounds + 1):
            for function_id, embedder in random.sample(pairs, len(pairs)):
                inits, firsts, warms = samples[function_id, embedder]
                if function_id == "IndexerFunction":  # a job with three messages to embed
                    writers[embedder, "DeleteMemoryFunction"].invoke(load_event("delete_memory-ok"))
                    writers[embedder, "PostMemoryFunction"].invoke(post)
                event = job if function_id == "IndexerFunction" else query
                with ExecutionEnvironment(
                    deployments[embedder][function_id], extra_environment=extra, xray=xray
                ) as environment:
                    inits.append(environment.init_ms)
                    first_ms, answer = _timed(environment, event)
                    _check(function_id, answer, environment)
                    if function_id == "IndexerFunction":
                        writers[embedder, "PostMemoryFunction"].invoke(post)
                    warm_ms, answer = _timed(environment, event)
                    _check(function_id, answer, environment)
                firsts.append(first_ms)
                warms.append(warm_ms)
            progress(f"cold start with the local embedder: round {round_no}/{settings.rounds}")
    rows = [
        ColdLtmRow(
            function_id=function_id,
            embedder=embedder,
            layers=[path.name for path in deployments[embedder][function_id].layer_dirs],
            init_ms=statistics.median(inits),
            first_call_ms=statistics.median(firsts),
            warm_call_ms=statistics.median(warms),
            init_samples_ms=inits,
            first_samples_ms=firsts,
            warm_samples_ms=warms,
        )
        for (function_id, embedder), (inits, firsts, warms) in samples.items()
    ]
    return ColdLtmResult(rounds=settings.rounds, rows=rows)


def _check(function_id: str, answer: Any, environment: ExecutionEnvironment) -> None:
    ok = answer == {"batchItemFailures": []} if function_id == "IndexerFunction" else answer.get("statusCode") == 200
    if not ok:
        raise RuntimeError(f"{function_id} failed: {answer}\n{environment.output()[-2000:]}")


def print_result(result: ColdLtmResult, number: str) -> None:
    print(f"\n{number}. Cold start of long-term memory, built artifact as Lambda runs it, {result.rounds} rounds")
    if result.skipped:
        print(f"   skipped: {result.skipped}")
        return
    print("   (medians, ms; init = Lambda's Init Duration, then the first and a warm invocation of that environment)")
    print(f"   {'':34} {'init':>7} {'1st call':>8} {'warm':>7} {'total':>7}  layers")
    for row in result.rows:
        name = f"{row.function_id} [{row.embedder}]"
        total = row.init_ms + row.first_call_ms
        print(
            f"   {name:34} {row.init_ms:7.0f} {row.first_call_ms:8.0f} {row.warm_call_ms:7.0f} {total:7.0f}"
            f"  {'+'.join(row.layers)}"
        )


def summary_lines(result: ColdLtmResult) -> list[str]:
    if result.skipped:
        return [f"Cold start of long-term memory: skipped ({result.skipped})"]
    lines = [
        f"Cold start of long-term memory (built artifact, awslambdaric on Python 3.12, median of {result.rounds}; "
        "init + first call, then warm):"
    ]
    lines += [
        f"  {row.function_id:18} {row.embedder:7} init {row.init_ms:5.0f} ms + 1st call {row.first_call_ms:5.0f} ms"
        f" = {row.init_ms + row.first_call_ms:5.0f} ms; warm {row.warm_call_ms:4.0f} ms"
        for row in result.rows
    ]
    return lines
