"""What the summarizer, the indexer and retrieval share: the provider keys and the time one provider call may take."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from motorhead.adapters.aws_secrets.secret_reader import key_or_secret
from motorhead.errors import ConfigError
from motorhead.settings import Settings


def provider_key(settings: Settings, provider: Literal["openai", "azure"]) -> str | Callable[[], str]:
    """The provider's key: from the environment, or from Secrets Manager. OpenAI without any key means an
    OpenAI-compatible server at OPENAI_API_BASE that takes none (llama.cpp, vLLM); Azure always needs one."""
    if provider == "azure":
        azure_key = key_or_secret(settings.azure_api_key, settings.azure_api_key_secret)
        if azure_key is None:
            raise ConfigError("AZURE_API_KEY or MOTORHEAD_AZURE_API_KEY_SECRET must be set for Azure")
        return azure_key
    return key_or_secret(settings.openai_api_key, settings.openai_api_key_secret) or "not-needed"


LOCAL_EMBEDDING_RESERVE = 15.0  # seconds: one batch of 128 texts of 256 word pieces on a slow Lambda CPU, with margin


def call_reserve(settings: Settings) -> float:
    """Seconds one model call may take, retries included: a job starts no new step with less time left. Read from
    the function's own settings (the summarizer's and the indexer's differ)."""
    return settings.llm_timeout * (settings.llm_max_retries + 1) + 5.0


def embedding_reserve(settings: Settings) -> float:
    """Seconds one embedding batch may take: a provider call (timeout × attempts), or the local model's worst case
    (no network: no timeout, no retry)."""
    return LOCAL_EMBEDDING_RESERVE if settings.embedder_kind() == "local" else call_reserve(settings)
