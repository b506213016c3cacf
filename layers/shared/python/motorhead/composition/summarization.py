"""Wiring of the summarizer: the summary writer (an LLM, or the offline extractive one) over the Redis store."""

from __future__ import annotations

from functools import lru_cache

from motorhead.composition.memory import redis_store, shared_connector
from motorhead.composition.providers import call_reserve, provider_key
from motorhead.core.job_loop import StepBudget
from motorhead.core.ports import ChatModel, SummaryWriter
from motorhead.core.summarization.service import SummarizerService
from motorhead.observability import enable_tracing
from motorhead.settings import Settings, get_settings


@lru_cache(maxsize=1)
def summarizer_service() -> SummarizerService:
    enable_tracing()  # subsegments around its Redis and LLM calls
    settings = get_settings()
    return SummarizerService(
        store=redis_store(settings, shared_connector()),
        writer=summary_writer(settings),
        window=settings.max_window_size,
        budget=StepBudget(reserve=call_reserve(settings)),
    )


def summary_writer(settings: Settings) -> SummaryWriter:
    """The extractive writer when no LLM is configured, else an LLM writer; both count tokens with tiktoken."""
    from motorhead.adapters.tiktoken_local.counter import TiktokenCounter

    counter = TiktokenCounter(model=settings.model, cache_dir=settings.tiktoken_cache_dir)
    if settings.summarizer_kind() == "extractive":
        from motorhead.core.summarization.extractive import ExtractiveSummaryWriter

        return ExtractiveSummaryWriter(counter=counter, max_tokens=settings.summary_max_tokens)
    from motorhead.core.summarization.llm_writer import LlmSummaryWriter

    return LlmSummaryWriter(
        model=chat_model(settings),
        counter=counter,
        summary_max_tokens=settings.summary_max_tokens,
        context_tokens=settings.model_context_tokens,
    )


def chat_model(settings: Settings) -> ChatModel:
    """OpenAI or Azure OpenAI; the key from the environment, or from Secrets Manager through powertools Parameters."""
    from motorhead.adapters.openai_api import chat_model as openai_chat  # the openai package only where it is used

    if settings.summarizer_kind() == "azure":
        return openai_chat.azure_chat_model(settings, api_key=provider_key(settings, "azure"))
    return openai_chat.openai_chat_model(settings, api_key=provider_key(settings, "openai"))
