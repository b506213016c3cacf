"""The OpenAI chat adapter: OpenAI, Azure OpenAI, or any OpenAI-compatible server (llama.cpp, vLLM, ...).

Imported only by the summarizer, so the HTTP functions never pay for the ``openai`` package. The client's own retry
loop handles 408/409/429/5xx and connection errors with exponential backoff (``MOTORHEAD_LLM_MAX_RETRIES``); every
call is bounded by ``MOTORHEAD_LLM_TIMEOUT``. Anything still failing, or an answer without text, raises
``SummarizerError`` so the SQS job is retried and, after the queue's maxReceiveCount, lands in the dead-letter queue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import openai
from openai.types.chat import ChatCompletionMessageParam

from motorhead.adapters.openai_api.clients import azure_client, openai_client
from motorhead.core.values import ChatResult
from motorhead.errors import SummarizerError
from motorhead.observability import subsegment
from motorhead.settings import Settings

# what the job's failure says; the provider's own answer, which can quote the key or the prompt, goes to the log only
FAILED = "the summary model failed"

logger = logging.getLogger(__name__)


class OpenAIChatModel:
    """Implements ``motorhead.core.ports.ChatModel``."""

    def __init__(self, client: openai.OpenAI, *, model: str) -> None:
        self._client = client
        self._model = model

    def complete(self, *, system: str, user: str, max_tokens: int) -> ChatResult:
        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
        ]
        try:
            with subsegment("llm"):
                if is_reasoning_model(self._model):  # they take max_completion_tokens and only the default temperature
                    response = self._client.chat.completions.create(
                        model=self._model, messages=messages, max_completion_tokens=max_tokens
                    )
                else:
                    response = self._client.chat.completions.create(
                        model=self._model, messages=messages, temperature=0, max_tokens=max_tokens
                    )
        except (openai.OpenAIError, ValueError) as exc:  # ValueError: a 200 whose body is not JSON
            detail = f"{type(exc).__name__}: {exc}"[:500]
            logger.warning("the summary model call failed", extra={"error": detail})
            raise SummarizerError(FAILED, detail=detail) from exc
        try:
            choices = response.choices
            text = choices[0].message.content if choices else None
            total_tokens = int(getattr(response.usage, "total_tokens", 0) or 0)
        except (AttributeError, IndexError, TypeError, ValueError) as exc:
            raise SummarizerError(FAILED, detail=f"malformed answer: {type(exc).__name__}") from exc
        if not isinstance(text, str):
            raise SummarizerError(FAILED, detail="the answer has no text")
        return ChatResult(text=text, total_tokens=total_tokens)


def is_reasoning_model(model: str) -> bool:
    return model.startswith(("o1", "o3", "o4", "gpt-5"))


def openai_chat_model(settings: Settings, *, api_key: str | Callable[[], str]) -> OpenAIChatModel:
    """OpenAI or an OpenAI-compatible server at ``OPENAI_API_BASE``."""
    return OpenAIChatModel(openai_client(settings, api_key=api_key), model=settings.model)


def azure_chat_model(settings: Settings, *, api_key: str | Callable[[], str]) -> OpenAIChatModel:
    """Azure OpenAI with Motorhead's variables: AZURE_API_BASE, AZURE_DEPLOYMENT_ID and the key."""
    deployment = settings.azure_deployment_id or ""
    client = azure_client(settings, api_key=api_key, deployment=deployment, variable="AZURE_DEPLOYMENT_ID")
    return OpenAIChatModel(client, model=deployment)
