"""Embeddings from OpenAI, Azure OpenAI or an OpenAI-compatible server: ``OpenAIEmbedder`` implements
``motorhead.ltm.ports.Embedder`` (L2-normalized float32 rows, in input order, batched inside)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import openai

from motorhead.adapters.openai_api.clients import azure_client, openai_client
from motorhead.core.ports import TokenCounter
from motorhead.errors import ConfigError, EmbeddingError
from motorhead.ltm.ports import Vectors
from motorhead.ltm.vectors import empty, normalize
from motorhead.settings import Settings

OPENAI_BATCH = 256  # inputs per request (the API takes 2048, and 300k tokens in all)
OPENAI_MAX_CHARS = 24_000  # ~6k tokens of English: under the 8,192-token limit of every OpenAI embedding model
OPENAI_MAX_TOKENS = 8_000  # what a text is cut to when its bytes could exceed the limit (CJK, code, noise)
OPENAI_TOKEN_ENCODING_MODEL = "text-embedding-3-small"  # cl100k_base: the encoding of all OpenAI embedding models
NATIVE_DIMENSIONS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}


class OpenAIEmbedder:
    """``client.embeddings.create`` on OpenAI, Azure OpenAI or an OpenAI-compatible server. The client's own retry loop
    handles 408/409/429/5xx and connection errors; anything still failing, or an answer that does not hold one vector
    of ``dimensions`` floats per input, raises ``EmbeddingError``. Rows are put back in input order by their
    ``index`` and normalized (compatible servers do not always)."""

    def __init__(
        self,
        client: openai.OpenAI,
        *,
        model: str,
        dimensions: int,
        send_dimensions: bool,
        identity: str,
        batch_size: int = OPENAI_BATCH,
        max_chars: int = OPENAI_MAX_CHARS,
        counter: TokenCounter | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._client = client
        self._model = model
        self._dimensions = dimensions
        self._send_dimensions = send_dimensions
        self._identity = identity
        self._batch_size = batch_size
        self._max_chars = max_chars
        self._counter = counter

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return empty(self._dimensions)
        out = np.empty((len(texts), self._dimensions), dtype=np.float32)
        for start in range(0, len(texts), self._batch_size):
            chunk = [self._cut(text) for text in texts[start : start + self._batch_size]]
            out[start : start + len(chunk)] = self._request(chunk)
        return normalize(out)

    def _cut(self, text: str) -> str:
        """The text within the model's input limit: at most ``max_chars`` characters, and at most 8,000 tokens when
        its UTF-8 bytes (an upper bound of its BPE tokens) could exceed them. An empty input is refused by the API."""
        text = text[: self._max_chars]
        # a character is at most 4 bytes: only a text over 2,000 characters can be over 8,000 bytes
        if len(text) > OPENAI_MAX_TOKENS // 4 and len(text.encode("utf-8", "surrogatepass")) > OPENAI_MAX_TOKENS:
            text = self._cut_tokens(text)
        return text or " "

    def _cut_tokens(self, text: str) -> str:
        """At most OPENAI_MAX_TOKENS tokens, counted with the embedding models' encoding (``counter``)."""
        return text if self._counter is None else self._counter.head(text, OPENAI_MAX_TOKENS)

    def _request(self, chunk: list[str]) -> Vectors:
        try:
            if self._send_dimensions:
                response = self._client.embeddings.create(model=self._model, input=chunk, dimensions=self._dimensions)
            else:
                response = self._client.embeddings.create(model=self._model, input=chunk)
        except (openai.OpenAIError, ValueError) as exc:  # ValueError: a 200 whose body is not JSON, or has no data
            raise EmbeddingError(f"embedding call failed: {type(exc).__name__}: {exc}") from exc
        rows = np.zeros((len(chunk), self._dimensions), dtype=np.float32)
        seen: set[int] = set()
        try:
            for item in response.data:
                index = int(item.index)
                vector = np.asarray(item.embedding, dtype=np.float32)
                if not 0 <= index < len(chunk) or index in seen:
                    raise EmbeddingError(f"malformed embedding answer: unexpected index {index}")
                if vector.shape != (self._dimensions,):
                    raise EmbeddingError(
                        f"malformed embedding answer: {vector.shape} floats where {self._dimensions} were expected"
                    )
                if not np.isfinite(vector).all():
                    raise EmbeddingError("malformed embedding answer: a vector holds NaN or infinity")
                rows[index] = vector
                seen.add(index)
        except (AttributeError, TypeError, ValueError) as exc:
            raise EmbeddingError(f"malformed embedding answer: {type(exc).__name__}") from exc
        if len(seen) != len(chunk):
            raise EmbeddingError(f"malformed embedding answer: {len(seen)} vectors for {len(chunk)} inputs")
        return rows


def dimensions_for(model: str, requested: int | None) -> tuple[int, bool]:
    """The vectors' dimensions and whether to send them (text-embedding-3-* can shorten their vectors; other models
    return their native size). A model we do not know needs MOTORHEAD_EMBEDDING_DIMENSIONS."""
    native = NATIVE_DIMENSIONS.get(model)
    shortenable = model.startswith("text-embedding-3")
    if requested is None:
        if native is None:
            raise ConfigError(f"MOTORHEAD_EMBEDDING_DIMENSIONS must be set for the embedding model {model!r}")
        return native, shortenable
    if native is not None and (requested > native or (requested != native and not shortenable)):
        raise ConfigError(f"MOTORHEAD_EMBEDDING_DIMENSIONS={requested} is not possible with {model} ({native})")
    return requested, shortenable


def openai_embedder(
    settings: Settings, *, api_key: str | Callable[[], str], counter: TokenCounter | None = None
) -> OpenAIEmbedder:
    """OpenAI or an OpenAI-compatible server at ``OPENAI_API_BASE``, model MOTORHEAD_EMBEDDING_MODEL."""

    model = settings.embedding_model
    dimensions, send = dimensions_for(model, settings.embedding_dimensions)
    return OpenAIEmbedder(
        openai_client(settings, api_key=api_key),
        model=model,
        dimensions=dimensions,
        send_dimensions=send,
        identity=f"openai:{model}:{dimensions}",
        counter=counter,
    )


def azure_embedder(
    settings: Settings, *, api_key: str | Callable[[], str], counter: TokenCounter | None = None
) -> OpenAIEmbedder:
    """Azure OpenAI with Motorhead's variables: AZURE_API_BASE and the embeddings deployment AZURE_DEPLOYMENT_ID_ADA
    (MOTORHEAD_EMBEDDING_MODEL names the model behind it, for its dimensions)."""

    deployment = settings.azure_deployment_id_ada or ""  # azure_client refuses an empty one
    client = azure_client(settings, api_key=api_key, deployment=deployment, variable="AZURE_DEPLOYMENT_ID_ADA")
    dimensions, send = dimensions_for(settings.embedding_model, settings.embedding_dimensions)
    return OpenAIEmbedder(
        client,
        model=deployment,
        dimensions=dimensions,
        send_dimensions=send,
        identity=f"azure:{deployment}:{dimensions}",
        counter=counter,
    )
