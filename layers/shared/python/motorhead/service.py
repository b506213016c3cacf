"""Wires the production objects once per process: settings → adapters → services. Heavy SDKs load lazily here."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from pydantic import SecretStr

from motorhead.errors import ConfigError, SummarizerError
from motorhead.keys import Keys
from motorhead.memory import MemoryService
from motorhead.ports import ChatModel, SummaryWriter
from motorhead.redis_client import RedisConnector
from motorhead.redis_store import RedisMemoryStore
from motorhead.settings import Settings, get_settings
from motorhead.summarizer import SummarizerService


def redis_store(settings: Settings) -> RedisMemoryStore:
    return RedisMemoryStore(
        RedisConnector(settings), Keys(settings.key_prefix), summary_lease_ms=settings.summary_lease_seconds * 1000
    )


@lru_cache(maxsize=1)
def memory_service() -> MemoryService:
    settings = get_settings()
    jobs = None
    if settings.summary_queue_url:
        from motorhead.sqs_queue import SqsJobQueue

        jobs = SqsJobQueue(settings.summary_queue_url)
    return MemoryService(store=redis_store(settings), settings=settings, jobs=jobs)


@lru_cache(maxsize=1)
def summarizer_service() -> SummarizerService:
    settings = get_settings()
    return SummarizerService(
        store=redis_store(settings), writer=summary_writer(settings), window=settings.max_window_size
    )


def summary_writer(settings: Settings) -> SummaryWriter:
    from motorhead.tokens import TokenCounter  # tiktoken: the summarizer's, not the HTTP functions' cold start

    counter = TokenCounter(model=settings.model, cache_dir=settings.tiktoken_cache_dir)
    if settings.summarizer_kind() == "extractive":
        from motorhead.extractive import ExtractiveSummaryWriter

        return ExtractiveSummaryWriter(counter=counter, max_tokens=settings.summary_max_tokens)
    from motorhead.llm_summary import LlmSummaryWriter

    return LlmSummaryWriter(
        model=chat_model(settings),
        counter=counter,
        summary_max_tokens=settings.summary_max_tokens,
        context_tokens=settings.model_context_tokens,
    )


def chat_model(settings: Settings) -> ChatModel:
    """OpenAI or Azure OpenAI; the key from the environment, or from Secrets Manager through powertools Parameters."""
    from motorhead import llm_openai  # the openai package only where a summary is written

    if settings.summarizer_kind() == "azure":
        azure_key = api_key(settings.azure_api_key, settings.azure_api_key_secret)
        if azure_key is None:
            raise ConfigError("AZURE_API_KEY or MOTORHEAD_AZURE_API_KEY_SECRET must be set for Azure")
        return llm_openai.azure_chat_model(settings, api_key=azure_key)
    openai_key = api_key(settings.openai_api_key, settings.openai_api_key_secret)
    # no key at all: an OpenAI-compatible server at OPENAI_API_BASE that takes none (llama.cpp, vLLM)
    return llm_openai.openai_chat_model(settings, api_key=openai_key or "not-needed")


def api_key(value: SecretStr | None, secret_name: str | None) -> str | Callable[[], str] | None:
    """The key itself, or a getter that reads it from Secrets Manager on each call (cached by powertools for
    POWERTOOLS_PARAMETERS_MAX_AGE seconds), so a rotated key is picked up without a cold start."""
    if value is not None:
        return value.get_secret_value()
    if secret_name:
        return lambda: secret_value(secret_name)
    return None


def secret_value(name: str) -> str:
    """A secret's string from Secrets Manager (powertools caches it); a failure fails the job, which SQS retries."""
    from aws_lambda_powertools.utilities import parameters

    try:
        value = parameters.get_secret(name)
    except parameters.exceptions.GetParameterError as exc:
        raise SummarizerError(f"cannot read secret {name}: {exc}") from exc
    if isinstance(value, bytes):
        return value.decode("utf-8").strip()
    return str(value).strip()
