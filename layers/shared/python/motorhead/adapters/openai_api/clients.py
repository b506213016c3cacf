"""The ``openai`` client, built once per process for OpenAI, Azure OpenAI or any OpenAI-compatible server (llama.cpp,
vLLM, ...): the same client serves chat (summaries) and embeddings. Bounded timeout, retries with backoff."""

from __future__ import annotations

from collections.abc import Callable

import openai

from motorhead.errors import ConfigError
from motorhead.settings import Settings


def openai_client(settings: Settings, *, api_key: str | Callable[[], str]) -> openai.OpenAI:
    """OpenAI, or an OpenAI-compatible server at ``OPENAI_API_BASE``; bounded timeout, retries with backoff."""
    return openai.OpenAI(
        api_key=api_key,
        base_url=settings.openai_api_base or None,
        timeout=settings.llm_timeout,
        max_retries=settings.llm_max_retries,
    )


def azure_client(
    settings: Settings, *, api_key: str | Callable[[], str], deployment: str, variable: str
) -> openai.AzureOpenAI:
    """Azure OpenAI at ``AZURE_API_BASE`` for one deployment, named by ``variable`` (chat: AZURE_DEPLOYMENT_ID;
    embeddings: AZURE_DEPLOYMENT_ID_ADA)."""
    if not (settings.azure_api_base and deployment):
        raise ConfigError(f"AZURE_API_BASE and {variable} must both be set for Azure")
    return openai.AzureOpenAI(
        api_key=api_key,
        azure_endpoint=settings.azure_api_base,
        azure_deployment=deployment,
        api_version=settings.azure_api_version,
        timeout=settings.llm_timeout,
        max_retries=settings.llm_max_retries,
    )
