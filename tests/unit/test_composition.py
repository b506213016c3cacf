"""The composition root picks the summarizer and the embedder from the settings (no network: nothing is called)."""

from __future__ import annotations

import openai
import pytest

from motorhead.adapters.onnx_local.embedder import LocalOnnxEmbedder
from motorhead.adapters.openai_api.chat_model import OpenAIChatModel
from motorhead.adapters.openai_api.embedder import OpenAIEmbedder
from motorhead.composition import long_term, summarization
from motorhead.composition.providers import call_reserve, provider_key
from motorhead.core.summarization.extractive import ExtractiveSummaryWriter
from motorhead.core.summarization.llm_writer import LlmSummaryWriter
from motorhead.errors import ConfigError
from motorhead.settings import Settings

AZURE = {
    "AZURE_API_KEY": "az",
    "AZURE_API_BASE": "https://example.openai.azure.com",
    "AZURE_DEPLOYMENT_ID": "chat",
    "AZURE_DEPLOYMENT_ID_ADA": "embed",
}


def settings(**env: str) -> Settings:
    return Settings(REDIS_URL="redis://127.0.0.1:1/0", **env)  # type: ignore[arg-type]


def test_summarizer_given_nothing_configured_is_the_offline_extractive_one() -> None:
    assert isinstance(summarization.summary_writer(settings()), ExtractiveSummaryWriter)


@pytest.mark.parametrize(
    "env",
    [{"OPENAI_API_KEY": "sk"}, {"OPENAI_API_BASE": "http://127.0.0.1:9/v1"}, {"MOTORHEAD_OPENAI_API_KEY_SECRET": "s"}],
)
def test_summarizer_given_openai_configured_is_an_llm_writer_on_openai(env: dict[str, str]) -> None:
    writer = summarization.summary_writer(settings(**env))
    assert isinstance(writer, LlmSummaryWriter)
    model = summarization.chat_model(settings(**env))
    assert isinstance(model, OpenAIChatModel) and type(model._client) is openai.OpenAI


def test_summarizer_given_azure_configured_talks_to_the_chat_deployment() -> None:
    model = summarization.chat_model(settings(**AZURE))
    assert isinstance(model, OpenAIChatModel) and isinstance(model._client, openai.AzureOpenAI)
    assert model._model == "chat"


def test_summarizer_given_extractive_asked_for_ignores_the_keys() -> None:
    writer = summarization.summary_writer(settings(MOTORHEAD_SUMMARIZER="extractive", OPENAI_API_KEY="sk"))
    assert isinstance(writer, ExtractiveSummaryWriter)


def test_embedder_given_nothing_configured_is_the_local_model() -> None:
    assert isinstance(long_term.embedder(settings()), LocalOnnxEmbedder)


@pytest.mark.parametrize(
    ("env", "identity"),
    [
        ({"OPENAI_API_KEY": "sk"}, "openai:text-embedding-3-small:1536"),
        ({"OPENAI_API_KEY": "sk", "MOTORHEAD_EMBEDDING_DIMENSIONS": "256"}, "openai:text-embedding-3-small:256"),
        (AZURE, "azure:embed:1536"),
    ],
)
def test_embedder_given_a_provider_configured_embeds_with_it(env: dict[str, str], identity: str) -> None:
    embedder = long_term.embedder(settings(**env))
    assert isinstance(embedder, OpenAIEmbedder) and embedder.identity == identity


def test_embedder_given_local_asked_for_ignores_the_keys() -> None:
    assert isinstance(long_term.embedder(settings(MOTORHEAD_EMBEDDER="local", OPENAI_API_KEY="sk")), LocalOnnxEmbedder)


def test_provider_key_given_a_secret_name_reads_it_on_each_call_not_at_build_time() -> None:
    key = provider_key(settings(MOTORHEAD_OPENAI_API_KEY_SECRET="prod/openai"), "openai")
    assert callable(key)


def test_provider_key_given_azure_without_a_key_fails_naming_the_variables() -> None:
    with pytest.raises(ConfigError, match="AZURE_API_KEY"):
        provider_key(settings(AZURE_API_BASE="https://x", AZURE_DEPLOYMENT_ID="chat"), "azure")


def test_call_reserve_given_timeout_and_retries_is_every_attempt_plus_a_margin() -> None:
    assert call_reserve(settings(MOTORHEAD_LLM_TIMEOUT="20", MOTORHEAD_LLM_MAX_RETRIES="2")) == 65.0
