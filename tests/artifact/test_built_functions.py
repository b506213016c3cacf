"""What AWS runs is what CI ran: every function ``sam build`` produced, run as Lambda runs it
(``tests/lambda_emulator.py``: the real runtime interface client on Python 3.12, the built code at /var/task and the
built layer at /opt, Lambda's environment with its tracing variables), invoked on the sample events of ``events/``.

A dependency the deployed artifact lacks (the X-Ray SDK once was: every traced function crashed at import) fails here.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from devserver.embedded_redis import EmbeddedRedis
from devserver.local_sqs import LocalQueue, LocalSqs
from devserver.template import load_queue_consumers
from tests.lambda_emulator import (
    BUILD_DIR,
    BuiltFunction,
    ExecutionEnvironment,
    InitError,
    XRayDaemon,
    built_functions,
    ensure_runtime,
    iter_output_lines,
)
from tests.openai_stub import OpenAIStub
from tests.support import REPO, load_event

pytestmark = [pytest.mark.artifact, pytest.mark.timeout(900)]  # the first test builds: sam build, ~1 min

# Each sample event, the function it belongs to, and the status its README gives (events/README.md).
HTTP_EVENTS: dict[str, tuple[str, int]] = {
    "health-ok": ("HealthFunction", 200),
    "current_key-ok": ("CurrentKeyFunction", 200),
    "list_sessions-ok": ("ListSessionsFunction", 200),
    "list_sessions-namespace": ("ListSessionsFunction", 200),
    "list_sessions-page-zero": ("ListSessionsFunction", 422),
    "list_sessions-size-too-large": ("ListSessionsFunction", 422),
    "list_sessions-page-not-a-number": ("ListSessionsFunction", 422),
    "get_memory-ok": ("GetMemoryFunction", 200),
    "get_memory-hostile-id": ("GetMemoryFunction", 200),
    "get_session-ok": ("GetSessionFunction", 200),
    "console-ok": ("ConsoleFunction", 200),
    "console-hostile-file": ("ConsoleFunction", 404),
    "post_memory-ok": ("PostMemoryFunction", 200),
    "post_memory-with-context": ("PostMemoryFunction", 200),
    "post_memory-base64": ("PostMemoryFunction", 200),
    "post_memory-hostile-id": ("PostMemoryFunction", 200),
    "post_memory-namespace": ("PostMemoryFunction", 200),
    "post_memory-empty-messages": ("PostMemoryFunction", 200),
    "post_memory-malformed-json": ("PostMemoryFunction", 400),
    "post_memory-not-an-object": ("PostMemoryFunction", 400),
    "post_memory-missing-messages": ("PostMemoryFunction", 422),
    "post_memory-wrong-types": ("PostMemoryFunction", 422),
    "post_memory-empty-role": ("PostMemoryFunction", 422),
    "retrieval-ok": ("RetrievalFunction", 200),
    "user_retrieval-ok": ("UserRetrievalFunction", 200),
    "mcp-ok": ("McpFunction", 200),
    "mcp-get-memory": ("McpFunction", 200),
    "post_memory-user": ("PostMemoryFunction", 200),
    "list_sessions-user": ("ListSessionsFunction", 200),
    "delete_user-ok": ("DeleteUserFunction", 200),
    "delete_memory-ok": ("DeleteMemoryFunction", 200),
    "delete_memory-namespace": ("DeleteMemoryFunction", 200),
    "delete_memory-hostile-id": ("DeleteMemoryFunction", 200),
}
JOB_EVENTS: dict[str, str] = {
    "summarizer-job": "SummarizerFunction",
    "summarizer-redelivery": "SummarizerFunction",
    "summarizer-mixed-batch": "SummarizerFunction",
    "indexer-job": "IndexerFunction",
}
OTHER_EVENTS: dict[str, str] = {"admin-list-keys": "AdminFunction"}


@pytest.fixture(scope="module")
def build() -> Path:
    """``make build`` (sam validate --lint, sam build, the size check) of this checkout, once per run."""
    log = REPO / ".build" / "sam-build.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output:
        done = subprocess.run(["bash", str(REPO / "scripts" / "sam_build.sh")], stdout=output, stderr=subprocess.STDOUT)
    assert done.returncode == 0, f"make build failed:\n{log.read_text(errors='replace')[-4000:]}"
    ensure_runtime()
    return BUILD_DIR


@dataclass
class Stack:
    """The built functions on a real Redis (with RediSearch), moto's SQS and Secrets Manager, and an
    OpenAI-compatible stub for the embeddings: one execution environment per function, started on first use."""

    functions: dict[str, BuiltFunction]
    extra: dict[str, str]
    xray: XRayDaemon
    stub: OpenAIStub
    sqs: LocalSqs
    queues: dict[str, LocalQueue]
    environments: dict[str, ExecutionEnvironment] = field(default_factory=dict)

    def environment(self, function_id: str) -> ExecutionEnvironment:
        if function_id not in self.environments:
            self.environments[function_id] = ExecutionEnvironment(
                self.functions[function_id], extra_environment=self.extra, xray=self.xray
            )
        return self.environments[function_id]

    def invoke(self, function_id: str, event: dict[str, Any]) -> Any:
        return self.environment(function_id).invoke(event)

    def close(self) -> None:
        for environment in self.environments.values():
            environment.close()


@contextmanager
def running_stack(search_server: EmbeddedRedis, parameters: dict[str, str]) -> Iterator[Stack]:
    """The built functions with the template's ``parameters`` (the OpenAI stub's URL and key secret when the
    embedder is openai), their own queues on moto's SQS, and one X-Ray daemon."""
    with ExitStack() as cleanup:
        sqs = LocalSqs().start()
        cleanup.callback(sqs.stop)
        stub = cleanup.enter_context(OpenAIStub())
        xray = XRayDaemon()
        cleanup.callback(xray.close)
        prefix = f"a{uuid.uuid4().hex[:8]}-"
        queues = {c.queue_id: sqs.create_queues(c, prefix=prefix) for c in load_queue_consumers()}
        parameters = {"RedisUrl": search_server.url, "AuthMode": "none", "Summarizer": "extractive", **parameters}
        if parameters.get("Embedder") == "openai":
            secrets = aws_client(sqs, "secretsmanager")
            openai_secret = secrets.create_secret(Name=f"{prefix}openai", SecretString="sk-artifact-test")["ARN"]
            parameters |= {"OpenAiApiBase": stub.base_url, "OpenAiApiKeySecretArn": openai_secret}
        functions = built_functions(parameters, {queue_id: queue.url for queue_id, queue in queues.items()})
        extra = {  # what an account gives every function: credentials; and here the endpoints of moto's services
            "AWS_ACCESS_KEY_ID": "ASIAARTIFACTTEST",
            "AWS_SECRET_ACCESS_KEY": "artifact-test",
            "AWS_SESSION_TOKEN": "artifact-test",
            "AWS_ENDPOINT_URL_SQS": sqs.endpoint,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": sqs.endpoint,
        }
        running = Stack(functions=functions, extra=extra, xray=xray, stub=stub, sqs=sqs, queues=queues)
        cleanup.callback(running.close)
        yield running


@pytest.fixture(scope="module")
def stack(build: Path, search_server: EmbeddedRedis) -> Iterator[Stack]:
    with redis.Redis(port=search_server.port) as client:
        client.flushall()
    with running_stack(search_server, {"LongTermMemory": "true", "Embedder": "openai"}) as running:
        yield running


@pytest.fixture(scope="module")
def local_stack(build: Path, search_server: EmbeddedRedis) -> Iterator[Stack]:
    """The template's defaults for the embedder (Embedder local: the EmbeddingsLayer, no OpenAI anything), under a
    key prefix of its own beside ``stack``'s index of stub vectors."""
    parameters = {"LongTermMemory": "true", "KeyPrefix": "mhlocal"}
    with running_stack(search_server, parameters) as running:
        yield running


def aws_client(sqs: LocalSqs, service: str) -> Any:
    import boto3

    return boto3.client(
        service, endpoint_url=sqs.endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def http_body(response: dict[str, Any]) -> Any:
    return json.loads(response["body"]) if response.get("body") else None


# --- the tests -------------------------------------------------------------------------------------------------


def test_every_sample_event_belongs_to_a_function_of_the_template(build: Path) -> None:
    # Given the sample events and the built template / Then each event names a function that exists
    names = {path.stem for path in (REPO / "events").glob("*.json")}
    mapped = {**{k: v[0] for k, v in HTTP_EVENTS.items()}, **JOB_EVENTS, **OTHER_EVENTS}
    assert names == set(mapped), f"events without an expected answer here: {sorted(names ^ set(mapped))}"
    functions = built_functions({}, {})
    assert set(mapped.values()) <= set(functions)


def test_init_given_lambdas_tracing_variables_every_built_function_starts(stack: Stack) -> None:
    # Given every built function, with Lambda's environment (AWS_XRAY_DAEMON_ADDRESS set: tracing active)
    failures: dict[str, str] = {}
    for function_id in sorted(stack.functions):
        try:  # When its execution environment starts (the init phase: imports, settings, clients)
            stack.environment(function_id)
        except InitError as exc:
            failures[function_id] = str(exc)[-1500:]
    # Then none fails its init phase
    assert not failures, "\n\n".join(f"{name}: {error}" for name, error in failures.items())


def test_init_given_the_built_layer_runs_on_python_312_with_nothing_of_this_machine(stack: Stack) -> None:
    # Given the health function's environment / When it runs / Then its interpreter is 3.12 and the layer is /opt
    environment = stack.environment("HealthFunction")
    probe = environment.output()
    assert environment.process.poll() is None, probe
    answer = stack.invoke("HealthFunction", load_event("health-ok"))
    assert answer["statusCode"] == 200
    if environment.mounted:
        assert "/opt/python" in environment.function.environment.get("TIKTOKEN_CACHE_DIR", "")


@pytest.mark.parametrize("event_name", sorted(HTTP_EVENTS))
def test_http_event_given_the_built_function_answers_as_its_readme_says(stack: Stack, event_name: str) -> None:
    # Given a sample API Gateway event / When the built function of its route handles it
    function_id, status = HTTP_EVENTS[event_name]
    response = stack.invoke(function_id, load_event(event_name))
    # Then the answer is the one events/README.md gives, as JSON
    assert response["statusCode"] == status, response
    kind = "text/html" if event_name == "console-ok" else "application/json"  # the console's page is HTML
    assert response["headers"]["content-type"].startswith(kind), response


def test_summarizer_given_an_overflowing_session_folds_it_and_writes_the_summary(stack: Stack) -> None:
    # Given session-42 with more messages than the window (12), written by the built post function
    stack.invoke("DeleteMemoryFunction", load_event("delete_memory-ok"))
    for _ in range(8):
        assert stack.invoke("PostMemoryFunction", load_event("post_memory-ok"))["statusCode"] == 200
    # Then the post function (boto3 of the runtime, through the layer's adapter) queued a summary job on SQS
    sqs = aws_client(stack.sqs, "sqs")
    received = sqs.receive_message(QueueUrl=stack.queues["SummaryQueue"].url, MaxNumberOfMessages=10)
    assert [json.loads(m["Body"])["session_id"] for m in received.get("Messages", [])] == ["session-42"]
    # When the built summarizer gets the sample job (and its redelivery)
    for name in ("summarizer-job", "summarizer-redelivery", "summarizer-mixed-batch"):
        answer = stack.invoke("SummarizerFunction", load_event(name))
        # Then no record fails
        assert answer == {"batchItemFailures": []}, (name, answer, stack.environment("SummarizerFunction").output())
    # And the session now has a summary and keeps its window
    memory = http_body(stack.invoke("GetMemoryFunction", load_event("get_memory-ok")))
    assert memory["context"], memory
    assert len(memory["messages"]) <= 12


def test_indexer_and_retrieval_given_posted_messages_find_them_and_trace_their_calls(stack: Stack) -> None:
    # Given session-42 written by the built post function
    stack.invoke("DeleteMemoryFunction", load_event("delete_memory-ok"))
    assert stack.invoke("PostMemoryFunction", load_event("post_memory-ok"))["statusCode"] == 200
    # When the built indexer gets the sample job, and the built retrieval function the sample query
    answer = stack.invoke("IndexerFunction", load_event("indexer-job"))
    assert answer == {"batchItemFailures": []}, stack.environment("IndexerFunction").output()
    response = stack.invoke("RetrievalFunction", load_event("retrieval-ok"))
    # Then the messages are found, through the embeddings of the (stub) provider, with the key read from Secrets
    # Manager
    assert response["statusCode"] == 200, response
    assert http_body(response), response
    assert any(r.headers.get("authorization") == "Bearer sk-artifact-test" for r in stack.stub.requests)
    # And the X-Ray SDK of the layer sent their subsegments to the daemon's address
    names = stack.xray.subsegment_names()
    assert {"## redis", "## embedding"} <= names, names


def test_admin_given_the_list_event_answers_ok(stack: Stack) -> None:
    # Given the built admin function / When it gets the list event / Then it answers ok with the keys (none yet)
    answer = stack.invoke("AdminFunction", load_event("admin-list-keys"))
    assert answer["ok"] is True, answer


def test_logs_given_a_poison_job_are_powertools_json_with_the_request_and_trace_ids(stack: Stack) -> None:
    # Given the built summarizer / When it gets a batch with a body that is not a job
    environment = stack.environment("SummarizerFunction")
    assert stack.invoke("SummarizerFunction", load_event("summarizer-mixed-batch")) == {"batchItemFailures": []}
    # Then it logs the drop as one JSON line with the Lambda request id and the X-Ray trace id of the invocation
    lines = [
        line for line in iter_output_lines(environment.output()) if line.get("message") == "dropping a malformed job"
    ]
    assert lines, environment.output()[-2000:]
    assert lines[-1]["function_request_id"] and lines[-1]["xray_trace_id"].startswith("1-"), lines[-1]


def with_body(name: str, body: dict[str, Any]) -> dict[str, Any]:
    """A sample API Gateway event with another JSON body."""
    event = load_event(name)
    event["body"], event["isBase64Encoded"] = json.dumps(body), False
    event["headers"].pop("content-length", None)
    return event


MESSAGES = [
    {"role": "Human", "content": "The team meeting moved to Thursday afternoon."},
    {"role": "Human", "content": "My sister is allergic to peanuts."},
    {"role": "AI", "content": "I bought a new mountain bike last week."},
]
QUESTION = "Which food must my sibling avoid?"  # no word in common with the answer: only its meaning finds it


def test_local_embedder_given_the_template_default_indexes_and_finds_a_message_by_its_meaning(
    local_stack: Stack,
) -> None:
    # Given the template's default embedder: the long-term-memory functions have the EmbeddingsLayer, not the LLM's
    for function_id in ("IndexerFunction", "RetrievalFunction", "UserRetrievalFunction"):
        function = local_stack.functions[function_id]
        assert [layer.name for layer in function.layer_dirs] == ["SharedLayer", "NumpyLayer", "EmbeddingsLayer"]
        assert function.environment["MOTORHEAD_EMBEDDER"] == "local"
        assert not any(name.startswith(("OPENAI", "AZURE")) and value for name, value in function.environment.items())
    # And three messages of user-7's session-42, posted by the built post function
    local_stack.invoke("DeleteMemoryFunction", load_event("delete_memory-ok"))
    posted = local_stack.invoke("PostMemoryFunction", with_body("post_memory-user", {"messages": MESSAGES}))
    assert posted["statusCode"] == 200, posted
    # When the built indexer gets the job, embedding them with the model of the layer (no network, no key)
    indexed = local_stack.invoke("IndexerFunction", load_event("indexer-job"))
    assert indexed == {"batchItemFailures": []}, local_stack.environment("IndexerFunction").output()[-3000:]
    # And the built retrieval functions get a question that shares no word with its answer
    session = local_stack.invoke("RetrievalFunction", with_body("retrieval-ok", {"text": QUESTION, "k": 3}))
    user = local_stack.invoke("UserRetrievalFunction", with_body("user_retrieval-ok", {"text": QUESTION, "limit": 3}))
    # Then both rank the answer first
    assert session["statusCode"] == 200, (session, local_stack.environment("RetrievalFunction").output()[-3000:])
    assert http_body(session)[0]["content"] == "My sister is allergic to peanuts.", http_body(session)
    assert user["statusCode"] == 200, (user, local_stack.environment("UserRetrievalFunction").output()[-3000:])
    assert "My sister is allergic to peanuts." in json.dumps(http_body(user)[0]), http_body(user)
    # And the index is the local model's, and nothing was asked of an OpenAI endpoint
    with redis.Redis.from_url(local_stack.functions["IndexerFunction"].environment["REDIS_URL"]) as client:
        assert client.hget("mhlocal:ltm", "embedder") == b"onnx:all-MiniLM-L6-v2-int8:384"
    assert not local_stack.stub.requests


def test_mcp_given_the_sample_tools_call_the_built_function_answers_get_memorys_json(stack: Stack) -> None:
    # Given session-42 written by the built post function
    stack.invoke("DeleteMemoryFunction", load_event("delete_memory-ok"))
    assert stack.invoke("PostMemoryFunction", load_event("post_memory-ok"))["statusCode"] == 200
    # When the built MCP function (its McpLayer, on Python 3.12) handles the sample tools/call of get_memory
    answer = http_body(stack.invoke("McpFunction", load_event("mcp-get-memory")))
    # Then the tool ran: no tool error, and its structured content is GET memory's body
    result = answer["result"]
    assert result.get("isError") is not True, (result, stack.environment("McpFunction").output())
    memory = http_body(stack.invoke("GetMemoryFunction", load_event("get_memory-ok")))
    assert memory["messages"] and result["structuredContent"] == memory
