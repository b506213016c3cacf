"""The OpenAI adapter and the LLM summary writer against a real HTTP server speaking the OpenAI API (a scripted stub),
through the real ``openai`` client: request shape, retries, timeouts, malformed answers, batching, secrets, Azure."""

from __future__ import annotations

import re
from collections.abc import Iterator

import boto3
import pytest

from motorhead.adapters.openai_api.chat_model import openai_chat_model
from motorhead.adapters.tiktoken_local.counter import TiktokenCounter
from motorhead.composition import summarization
from motorhead.core.ports import TokenCounter
from motorhead.core.summarization.llm_writer import NO_SUMMARY, SYSTEM_PROMPT, LlmSummaryWriter
from motorhead.core.values import StoredMessage
from motorhead.errors import SecretUnavailableError, SummarizerError
from motorhead.settings import PACKAGED_TIKTOKEN_CACHE, Settings
from tests.openai_stub import Answer, Hang, Malformed, OpenAIStub, RecordedRequest, Status

SUMMARY_MAX_TOKENS = 512
PROMPT = re.compile(
    r"^Current summary:\n(?P<summary>.*?)\n\nNew lines of the conversation:\n(?P<lines>.*?)\n\nUpdated summary:$", re.S
)
SECRET_NAME = "motorhead/test/openai-api-key"
AZURE_SECRET_NAME = "motorhead/test/azure-api-key"


# --- fixtures and helpers ---------------------------------------------------------------------------------------
@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as server:
        yield server


@pytest.fixture(scope="module")
def counter() -> TokenCounter:
    return TiktokenCounter(model="gpt-4o-mini", cache_dir=PACKAGED_TIKTOKEN_CACHE)


# Seconds a client waits for the stub where the test is not about timeouts: on a busy 2-core machine a short one
# fires on a healthy answer and the client retries, which such a test would count as a failure.
ROOMY_TIMEOUT = "30"
SHORT_TIMEOUT = "0.5"  # the tests of the timeout itself, against a stub that hangs for 5 s


@pytest.fixture
def settings(stub: OpenAIStub) -> Settings:
    return Settings(
        OPENAI_API_BASE=stub.base_url,
        OPENAI_API_KEY="sk-test",
        MOTORHEAD_MODEL="gpt-4o-mini",
        MOTORHEAD_LLM_TIMEOUT=ROOMY_TIMEOUT,
        MOTORHEAD_LLM_MAX_RETRIES="2",
    )


@pytest.fixture
def writer(settings: Settings, counter: TokenCounter) -> LlmSummaryWriter:
    return LlmSummaryWriter(
        model=openai_chat_model(settings, api_key="sk-test"), counter=counter, summary_max_tokens=SUMMARY_MAX_TOKENS
    )


def conversation(n: int, *, words: int = 3) -> list[StoredMessage]:
    """``n`` messages, alternating roles, each with a unique marker and ``words`` filler words."""
    filler = " ".join(["lorem"] * words)
    return [
        StoredMessage(id=i, role="user" if i % 2 == 0 else "assistant", content=f"m{i:03d} {filler}", created_at=i)
        for i in range(n)
    ]


def prompt_of(request: RecordedRequest) -> tuple[str, list[str]]:
    """The current summary and the conversation lines that one request's user prompt carries."""
    found = PROMPT.match(request.content_of("user"))
    assert found is not None, request.content_of("user")
    return found["summary"], found["lines"].splitlines()


# --- one call: the request and the answer -----------------------------------------------------------------------
def test_fold_given_an_answer_returns_it_as_summary_with_usage_tokens(
    stub: OpenAIStub, writer: LlmSummaryWriter
) -> None:
    # Given a server that answers with a summary and its usage
    stub.script(Answer("  The user, Ana, prefers tea.  ", prompt_tokens=120, completion_tokens=9))

    # When two messages are folded into no summary
    folded = writer.fold(None, conversation(2))

    # Then the (stripped) answer is the summary and the tokens are the usage's total_tokens, in one call
    assert folded.context == "The user, Ana, prefers tea."
    assert folded.tokens == 129
    assert folded.calls == 1
    assert len(stub.requests) == 1


def test_fold_given_a_summary_and_messages_sends_the_expected_request(
    stub: OpenAIStub, writer: LlmSummaryWriter
) -> None:
    # Given a session with a summary and two new messages
    messages = [
        StoredMessage(id=1, role="user", content="I moved to Lyon.", created_at=1),
        StoredMessage(id=2, role="assistant", content="Noted: Lyon.", created_at=2),
    ]

    # When they are folded
    writer.fold("Ana likes tea.", messages)

    # Then one chat completion request carries the model, temperature 0, the summary's token cap, the system prompt,
    # the current summary and the `role: content` lines, authenticated with the configured key
    (request,) = stub.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.body["model"] == "gpt-4o-mini"
    assert request.body["temperature"] == 0
    assert request.body["max_tokens"] == SUMMARY_MAX_TOKENS
    assert [message["role"] for message in request.messages] == ["system", "user"]
    assert request.content_of("system") == SYSTEM_PROMPT.format(words=SUMMARY_MAX_TOKENS * 3 // 4)
    assert prompt_of(request) == ("Ana likes tea.", ["user: I moved to Lyon.", "assistant: Noted: Lyon."])


def test_fold_given_no_summary_yet_sends_the_placeholder(stub: OpenAIStub, writer: LlmSummaryWriter) -> None:
    # Given a session without a summary
    # When its messages are folded
    writer.fold(None, conversation(1))

    # Then the prompt says there is none yet
    assert prompt_of(stub.requests[0])[0] == NO_SUMMARY


@pytest.mark.parametrize("answer", ["NONE", "none.", "", "  None  "])
def test_fold_given_a_none_answer_keeps_the_previous_summary_and_counts_tokens(
    stub: OpenAIStub, writer: LlmSummaryWriter, answer: str
) -> None:
    # Given a model that finds nothing worth remembering
    stub.script(Answer(answer, prompt_tokens=50, completion_tokens=1))

    # When messages are folded into an existing summary
    folded = writer.fold("Ana likes tea.", conversation(2))

    # Then the summary is unchanged, but the call was paid for
    assert folded.context == "Ana likes tea."
    assert folded.tokens == 51
    assert folded.calls == 1


# --- failures ---------------------------------------------------------------------------------------------------
def test_fold_given_a_429_then_an_answer_succeeds_after_one_retry(stub: OpenAIStub, writer: LlmSummaryWriter) -> None:
    # Given a rate limit (retry-after: 0) and then an answer
    stub.script(Status(429), Answer("Ana likes tea.", prompt_tokens=10, completion_tokens=5))

    # When messages are folded
    folded = writer.fold(None, conversation(2))

    # Then the client retried once, with the same request, and only the answer's usage is counted
    first, second = stub.requests
    assert folded.context == "Ana likes tea."
    assert folded.tokens == 15
    assert second.body == first.body
    assert second.headers["x-stainless-retry-count"] == "1"


def test_fold_given_500_on_every_attempt_raises_summarizer_error(stub: OpenAIStub, writer: LlmSummaryWriter) -> None:
    # Given a server failing more often than the client retries (MOTORHEAD_LLM_MAX_RETRIES=2)
    stub.script(Status(500), Status(500), Status(500), Answer("too late"))

    # When messages are folded
    with pytest.raises(SummarizerError) as raised:
        writer.fold(None, conversation(2))
    assert str(raised.value) == "the summary model failed"  # the provider's own error in the detail, for the log
    assert (raised.value.detail or "").startswith("InternalServerError")

    # Then the client made 1 + 2 attempts and gave up
    assert len(stub.requests) == 3
    assert stub.pending == 1


def test_fold_given_a_400_raises_summarizer_error_without_retrying(stub: OpenAIStub, writer: LlmSummaryWriter) -> None:
    # Given a server rejecting the request
    stub.script(Status(400))

    # When messages are folded
    with pytest.raises(SummarizerError) as raised:
        writer.fold(None, conversation(2))
    assert (raised.value.detail or "").startswith("BadRequestError")

    # Then a client error is not retried
    assert len(stub.requests) == 1


def test_fold_given_a_server_slower_than_the_timeout_raises_summarizer_error(
    stub: OpenAIStub, settings: Settings, counter: TokenCounter
) -> None:
    # Given a server that hangs longer than MOTORHEAD_LLM_TIMEOUT (0.5 s) on every attempt
    settings = settings.model_copy(update={"llm_timeout": float(SHORT_TIMEOUT)})
    writer = LlmSummaryWriter(
        model=openai_chat_model(settings, api_key="sk-test"), counter=counter, summary_max_tokens=SUMMARY_MAX_TOKENS
    )
    stub.script(Hang(5.0), Hang(5.0), Hang(5.0))

    # When messages are folded
    with pytest.raises(SummarizerError) as raised:
        writer.fold(None, conversation(2))
    assert "Timeout" in (raised.value.detail or "")

    # Then every attempt timed out
    assert len(stub.requests) == 3


@pytest.mark.parametrize(
    "body",
    [
        {"choices": []},
        {"choices": [{"index": 0, "message": {"role": "assistant", "content": None}, "finish_reason": "stop"}]},
        {"id": "chatcmpl-x", "object": "chat.completion"},
    ],
    ids=["no-choices", "null-content", "no-choices-key"],
)
def test_fold_given_a_malformed_answer_raises_summarizer_error(
    stub: OpenAIStub, writer: LlmSummaryWriter, body: dict[str, object]
) -> None:
    # Given a server answering 200 without any text
    stub.script(Malformed(body))

    # When messages are folded
    # Then the job fails (and SQS retries it) rather than storing an empty summary
    with pytest.raises(SummarizerError) as raised:
        writer.fold("Ana likes tea.", conversation(2))
    assert "no text" in (raised.value.detail or "")


@pytest.mark.parametrize("body", ["<html>proxy error</html>", '{"choices": "x"}'], ids=["not-json", "choices-str"])
def test_fold_given_an_unparseable_answer_raises_summarizer_error(
    stub: OpenAIStub, writer: LlmSummaryWriter, body: str
) -> None:
    # Given a server answering 200 with a body that is not a chat completion at all
    stub.script(Malformed(body))

    # When messages are folded
    # Then the adapter's contract holds: anything failing raises SummarizerError
    with pytest.raises(SummarizerError):
        writer.fold(None, conversation(2))


# --- several batches --------------------------------------------------------------------------------------------
def test_fold_given_a_backlog_larger_than_a_batch_folds_incrementally_without_loss_or_repeat(
    stub: OpenAIStub, settings: Settings, counter: TokenCounter
) -> None:
    # Given batches of at most 300 tokens of lines and a backlog of ~1,900 tokens (the stub answers "Summary #n.")
    writer = LlmSummaryWriter(
        model=openai_chat_model(settings, api_key="sk-test"),
        counter=counter,
        summary_max_tokens=SUMMARY_MAX_TOKENS,
        max_batch_tokens=300,
    )
    messages = conversation(60, words=25)

    # When the backlog is folded into an existing summary
    folded = writer.fold("Ana likes tea.", messages)

    # Then it took several calls, each carrying the summary the previous call produced
    requests = stub.requests
    prompts = [prompt_of(request) for request in requests]
    assert len(requests) == folded.calls >= 5
    assert [summary for summary, _ in prompts] == ["Ana likes tea."] + [
        f"Summary #{n}." for n in range(1, folded.calls)
    ]
    assert folded.context == f"Summary #{folded.calls}."
    # and every line went to exactly one call, in order, within the batch budget
    sent = [line for _, lines in prompts for line in lines]
    assert sent == [f"{message.role}: {message.content}" for message in messages]
    assert all(sum(counter.count(line) + 1 for line in lines) <= writer.line_budget for _, lines in prompts)
    # and the tokens are the sum of every call's usage
    assert folded.tokens == sum(4 + sum(len(m["content"]) for m in r.messages) // 4 for r in requests)


def test_fold_given_a_none_answer_between_batches_carries_the_last_real_summary(
    stub: OpenAIStub, settings: Settings, counter: TokenCounter
) -> None:
    # Given a model answering a summary, then NONE, then (by default) "Summary #3."
    writer = LlmSummaryWriter(
        model=openai_chat_model(settings, api_key="sk-test"),
        counter=counter,
        summary_max_tokens=SUMMARY_MAX_TOKENS,
        max_batch_tokens=300,
    )
    stub.script(Answer("first summary"), Answer("NONE"))

    # When a backlog of three batches or more is folded
    folded = writer.fold(None, conversation(60, words=25))

    # Then the call after the NONE still carries the first summary
    summaries = [prompt_of(request)[0] for request in stub.requests]
    assert summaries[:3] == [NO_SUMMARY, "first summary", "first summary"]
    assert folded.context == f"Summary #{folded.calls}."


# --- wiring: service, secrets, Azure ----------------------------------------------------------------------------
def test_summary_writer_given_openai_settings_uses_the_stub_with_the_configured_cap(stub: OpenAIStub) -> None:
    # Given settings naming an OpenAI-compatible server and a summary cap
    settings = Settings(
        OPENAI_API_BASE=stub.base_url,
        OPENAI_API_KEY="sk-test",
        MOTORHEAD_SUMMARY_MAX_TOKENS="200",
        MOTORHEAD_LLM_TIMEOUT=ROOMY_TIMEOUT,
    )

    # When the service's summary writer folds messages
    folded = summarization.summary_writer(settings).fold(None, conversation(2))

    # Then the LLM wrote the summary, within the configured cap
    assert folded.context == "Summary #1."
    assert stub.requests[0].body["max_tokens"] == 200


def test_chat_model_given_a_key_secret_sends_the_secret_and_picks_up_its_rotation(
    stub: OpenAIStub, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the key only in Secrets Manager, with powertools' cache expiring at once
    monkeypatch.setenv("POWERTOOLS_PARAMETERS_MAX_AGE", "0")
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    secrets.create_secret(Name=SECRET_NAME, SecretString="sk-from-secret")
    settings = Settings(
        OPENAI_API_BASE=stub.base_url,
        OPENAI_API_KEY=None,
        MOTORHEAD_OPENAI_API_KEY_SECRET=SECRET_NAME,
        MOTORHEAD_LLM_TIMEOUT=ROOMY_TIMEOUT,
    )
    model = summarization.chat_model(settings)

    # When the model is called, the secret rotated, and the model called again (same client, no cold start)
    model.complete(system="s", user="u", max_tokens=32)
    secrets.put_secret_value(SecretId=SECRET_NAME, SecretString="sk-rotated")
    model.complete(system="s", user="u", max_tokens=32)

    # Then each request carried the key current at the time
    assert [request.headers["authorization"] for request in stub.requests] == [
        "Bearer sk-from-secret",
        "Bearer sk-rotated",
    ]


def test_chat_model_given_a_missing_secret_raises_a_typed_error_that_names_no_secret(
    stub: OpenAIStub, aws: None
) -> None:
    # Given a secret name that does not exist
    settings = Settings(
        OPENAI_API_BASE=stub.base_url, OPENAI_API_KEY=None, MOTORHEAD_OPENAI_API_KEY_SECRET="prod/absent-openai-key"
    )

    # When the model is called
    # Then the failure is typed, says nothing of the secret (the log has it), and nothing reached the server
    with pytest.raises(SecretUnavailableError) as raised:
        summarization.chat_model(settings).complete(system="s", user="u", max_tokens=32)
    assert "absent" not in str(raised.value)
    assert stub.requests == []


def test_chat_model_given_azure_settings_calls_the_deployment_with_an_api_key(stub: OpenAIStub) -> None:
    # Given Azure OpenAI's variables, the endpoint being the stub's root
    settings = Settings(
        MOTORHEAD_SUMMARIZER="azure",
        AZURE_API_KEY="az-key",
        AZURE_API_BASE=stub.root_url,
        AZURE_DEPLOYMENT_ID="dep",
        MOTORHEAD_LLM_TIMEOUT=ROOMY_TIMEOUT,
    )

    # When the model is called
    result = summarization.chat_model(settings).complete(system="s", user="u", max_tokens=32)

    # Then the request went to the deployment's route, with the API version and the api-key header (no bearer)
    (request,) = stub.requests
    assert result.text == "Summary #1."
    assert request.path == "/openai/deployments/dep/chat/completions"
    assert request.deployment == "dep"
    assert request.query == {"api-version": [settings.azure_api_version]}
    assert request.headers["api-key"] == "az-key"
    assert "authorization" not in request.headers
    assert request.body["model"] == "dep"


def test_chat_model_given_an_azure_key_secret_sends_it_as_api_key_and_picks_up_its_rotation(
    stub: OpenAIStub, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given Azure's key only in Secrets Manager, with powertools' cache expiring at once
    monkeypatch.setenv("POWERTOOLS_PARAMETERS_MAX_AGE", "0")
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    secrets.create_secret(Name=AZURE_SECRET_NAME, SecretString="az-from-secret")
    settings = Settings(
        AZURE_API_KEY=None,
        MOTORHEAD_AZURE_API_KEY_SECRET=AZURE_SECRET_NAME,
        AZURE_API_BASE=stub.root_url,
        AZURE_DEPLOYMENT_ID="dep",
        MOTORHEAD_LLM_TIMEOUT=ROOMY_TIMEOUT,
    )
    model = summarization.chat_model(settings)

    # When the model is called, the secret rotated, and the model called again
    model.complete(system="s", user="u", max_tokens=32)
    secrets.put_secret_value(SecretId=AZURE_SECRET_NAME, SecretString="az-rotated")
    model.complete(system="s", user="u", max_tokens=32)

    # Then each request went to the deployment with the key current at the time
    assert [request.deployment for request in stub.requests] == ["dep", "dep"]
    assert [request.headers["api-key"] for request in stub.requests] == ["az-from-secret", "az-rotated"]
