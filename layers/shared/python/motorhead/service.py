"""Wires the production objects once per process: settings → adapters → services. Heavy SDKs load lazily here."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from pydantic import SecretStr

from motorhead.errors import ConfigError, SummarizerError
from motorhead.keys import Keys
from motorhead.memory import MemoryService
from motorhead.ports import ChatModel, JobQueue, SummaryWriter
from motorhead.redis_client import RedisConnector
from motorhead.redis_store import RedisMemoryStore
from motorhead.settings import Settings, get_settings
from motorhead.summarizer import SummarizerService

if TYPE_CHECKING:  # numpy and the embedders load only in the functions that search or index
    from motorhead.ltm_ports import Embedder, VectorIndex
    from motorhead.retrieval import DisabledRetrieval, IndexerService, RetrievalService


def redis_store(settings: Settings, connector: RedisConnector | None = None) -> RedisMemoryStore:
    return RedisMemoryStore(
        connector or RedisConnector(settings),
        Keys(settings.key_prefix),
        summary_lease_ms=settings.summary_lease_seconds * 1000,
        index_lease_ms=settings.index_lease_seconds * 1000,
    )


def job_queue(url: str | None) -> JobQueue | None:
    if not url:
        return None
    from motorhead.sqs_queue import SqsJobQueue

    return SqsJobQueue(url)


@lru_cache(maxsize=1)
def memory_service() -> MemoryService:
    settings = get_settings()
    return MemoryService(
        store=redis_store(settings),
        settings=settings,
        jobs=job_queue(settings.summary_queue_url),
        index_jobs=job_queue(settings.index_queue_url),
    )


@lru_cache(maxsize=1)
def retrieval_service() -> RetrievalService | DisabledRetrieval:
    from motorhead.retrieval import DisabledRetrieval, RetrievalService

    settings = get_settings()
    if not settings.long_term_memory:
        return DisabledRetrieval()
    from motorhead.keyword import KeywordIndex

    connector = RedisConnector(settings)
    embed = embedder(settings)
    keys = Keys(settings.key_prefix)
    return RetrievalService(
        embedder=embed,
        index=vector_index(settings, connector, dimensions=embed.dimensions),
        keywords=KeywordIndex(connector, keys),
        hybrid=settings.retrieval_hybrid,
    )


@lru_cache(maxsize=1)
def indexer_service() -> IndexerService:
    from motorhead.retrieval import IndexerService

    settings = get_settings()
    connector = RedisConnector(settings)
    embed = embedder(settings)
    return IndexerService(
        store=redis_store(settings, connector),
        embedder=embed,
        index=vector_index(settings, connector, dimensions=embed.dimensions),
        reserve=call_reserve(settings),
    )


def embedder(settings: Settings) -> Embedder:
    """The local ONNX model, or OpenAI / Azure embeddings (keys as for the summarizer)."""
    import motorhead.embeddings as embeddings

    kind = settings.embedder_kind()
    if kind == "local":
        return embeddings.local_embedder(settings)
    if kind == "azure":
        return embeddings.azure_embedder(settings, api_key=provider_key(settings, "azure"))
    return embeddings.openai_embedder(settings, api_key=provider_key(settings, "openai"))


def vector_index(settings: Settings, connector: RedisConnector, *, dimensions: int) -> VectorIndex:
    """The configured backend; ``auto`` decides on first use (see motorhead.vector_index)."""
    from motorhead.vector_index import AutoVectorIndex, make_index

    keys = Keys(settings.key_prefix)
    if settings.vector_backend == "auto":
        return AutoVectorIndex(connector, keys, dimensions=dimensions)
    return make_index(settings.vector_backend, connector, keys, dimensions=dimensions)


@lru_cache(maxsize=1)
def summarizer_service() -> SummarizerService:
    settings = get_settings()
    return SummarizerService(
        store=redis_store(settings),
        writer=summary_writer(settings),
        window=settings.max_window_size,
        reserve=call_reserve(settings),
    )


def call_reserve(settings: Settings) -> float:
    """Seconds one model call may take, retries included: a job starts no new step with less time left."""
    return settings.llm_timeout * (settings.llm_max_retries + 1) + 5.0


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
        return llm_openai.azure_chat_model(settings, api_key=provider_key(settings, "azure"))
    return llm_openai.openai_chat_model(settings, api_key=provider_key(settings, "openai"))


def provider_key(settings: Settings, provider: Literal["openai", "azure"]) -> str | Callable[[], str]:
    """The provider's key: from the environment, or from Secrets Manager. OpenAI without any key means an
    OpenAI-compatible server at OPENAI_API_BASE that takes none (llama.cpp, vLLM); Azure always needs one."""
    if provider == "azure":
        azure_key = api_key(settings.azure_api_key, settings.azure_api_key_secret)
        if azure_key is None:
            raise ConfigError("AZURE_API_KEY or MOTORHEAD_AZURE_API_KEY_SECRET must be set for Azure")
        return azure_key
    return api_key(settings.openai_api_key, settings.openai_api_key_secret) or "not-needed"


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
