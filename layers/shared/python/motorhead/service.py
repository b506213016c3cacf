"""Wires the production objects once per process: settings → adapters → services. Heavy SDKs load lazily here."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

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
    """OpenAI (key from OPENAI_API_KEY, or from Secrets Manager through powertools Parameters) or Azure OpenAI."""
    from motorhead import llm_openai  # the openai package only where a summary is written

    if settings.summarizer_kind() == "azure":
        return llm_openai.azure_chat_model(settings)
    return llm_openai.openai_chat_model(settings, api_key=openai_api_key(settings))


def openai_api_key(settings: Settings) -> str | Callable[[], str]:
    """The key itself, or a getter that reads it from Secrets Manager on each call (cached by powertools for
    POWERTOOLS_PARAMETERS_MAX_AGE seconds), so a rotated key is picked up without a cold start."""
    if settings.openai_api_key is not None:
        return settings.openai_api_key.get_secret_value()
    secret = settings.openai_api_key_secret
    if secret:
        from aws_lambda_powertools.utilities import parameters

        return lambda: str(parameters.get_secret(secret))
    return "not-needed"  # an OpenAI-compatible server at OPENAI_API_BASE that takes no key
