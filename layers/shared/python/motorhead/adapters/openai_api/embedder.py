"""Embeddings from OpenAI, Azure OpenAI or an OpenAI-compatible server: ``OpenAIEmbedder`` implements
``motorhead.ltm.ports.Embedder`` (L2-normalized float32 rows, in input order, batched inside by inputs and by
tokens)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import openai

from motorhead.adapters.openai_api.clients import azure_client, openai_client
from motorhead.core.ports import TokenCounter
from motorhead.errors import ConfigError, EmbeddingError, EmbeddingUnavailableError
from motorhead.ltm.ports import Vectors
from motorhead.ltm.vectors import empty, normalize
from motorhead.observability import subsegment
from motorhead.settings import Settings

OPENAI_BATCH = 256  # inputs per request, at most OPENAI_MAX_INPUTS
OPENAI_MAX_INPUTS = 2_048  # the API refuses a request with more inputs
OPENAI_MAX_REQUEST_TOKENS = 300_000  # the API refuses (400) a request whose inputs hold more tokens in all
OPENAI_MAX_CHARS = 24_000  # ~6k tokens of English: under the 8,192-token limit of every OpenAI embedding model
OPENAI_MAX_TOKENS = 8_000  # what a text is cut to when its bytes could exceed the limit (CJK, code, noise)
OPENAI_TOKEN_ENCODING_MODEL = "text-embedding-3-small"  # cl100k_base: the encoding of all OpenAI embedding models
NATIVE_DIMENSIONS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}
# what a client may read; the provider's own answer, which can quote the key or the request, goes to the log only
FAILED = "the embedding provider failed"
UNAVAILABLE = "the embedding provider is unavailable"
# what the openai client raises once its own retries are spent on a failure that is likely to pass: a timeout
# (APITimeoutError is an APIConnectionError), no connection, a rate limit, a 5xx
_PASSING = (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError)

logger = logging.getLogger(__name__)


class OpenAIEmbedder:
    """``client.embeddings.create`` on OpenAI, Azure OpenAI or an OpenAI-compatible server. The client's own retry loop
    handles 408/409/429/5xx and connection errors; anything still failing, or an answer that does not hold one vector
    of ``dimensions`` floats per input, raises ``EmbeddingError``. Rows are put back in input order by their
    ``index`` and normalized (compatible servers do not always).

    A request holds at most ``batch_size`` inputs and ``max_request_tokens`` tokens: 256 texts cut to 8,000 tokens
    each would be 2M tokens, which the API refuses however often it is retried."""

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
        max_request_tokens: int = OPENAI_MAX_REQUEST_TOKENS,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if max_request_tokens < 1:
            raise ValueError("max_request_tokens must be at least 1")
        self._client = client
        self._model = model
        self._dimensions = dimensions
        self._send_dimensions = send_dimensions
        self._identity = identity
        self._batch_size = batch_size
        self._max_chars = max_chars
        self._counter = counter
        self._max_request_tokens = max_request_tokens

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
        start = 0
        for chunk in self._batches([self._cut(text) for text in texts]):
            out[start : start + len(chunk)] = self._request(chunk)
            start += len(chunk)
        return normalize(out)

    def _batches(self, texts: list[str]) -> Iterator[list[str]]:
        """Consecutive runs of ``texts``, in order, each of at most ``batch_size`` inputs and ``max_request_tokens``
        tokens (greedy: a run is closed when the next text would overflow either). A text over the token limit on
        its own (only when ``max_request_tokens`` is under the 8,000 a text is cut to) goes alone: the server's
        answer, not a silent loss, then says so."""
        batch: list[str] = []
        tokens = 0
        for text, size in zip(texts, self._token_bounds(texts), strict=True):
            if batch and (len(batch) >= self._batch_size or tokens + size > self._max_request_tokens):
                yield batch
                batch, tokens = [], 0
            batch.append(text)
            tokens += size
        if batch:
            yield batch

    def _token_bounds(self, texts: list[str]) -> list[int]:
        """An upper bound of each text's tokens. UTF-8 bytes are one (a BPE token covers at least one byte), three
        to four times too high for English: when the bytes of all the texts fit in one request, that is enough and
        nothing is encoded (the usual case: a few chat messages); otherwise each text is counted with ``counter``,
        the embedding models' encoding, so requests are not split needlessly. Without a counter, bytes it is."""
        sizes = [len(text.encode("utf-8", "surrogatepass")) for text in texts]
        if self._counter is None or sum(sizes) <= self._max_request_tokens:
            return sizes
        return [self._counter.count(text) for text in texts]

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
            with subsegment("embedding"):
                if self._send_dimensions:
                    response = self._client.embeddings.create(
                        model=self._model, input=chunk, dimensions=self._dimensions
                    )
                else:
                    response = self._client.embeddings.create(model=self._model, input=chunk)
        except _PASSING as exc:
            detail = f"{type(exc).__name__}: {exc}"[:500]
            logger.warning("the embedding provider is unavailable", extra={"error": detail})
            raise EmbeddingUnavailableError(UNAVAILABLE, detail=detail) from exc
        except (openai.OpenAIError, ValueError) as exc:  # ValueError: a 200 whose body is not JSON, or has no data
            detail = f"{type(exc).__name__}: {exc}"[:500]
            logger.warning("the embedding call failed", extra={"error": detail})
            raise EmbeddingError(FAILED, detail=detail) from exc
        rows = np.zeros((len(chunk), self._dimensions), dtype=np.float32)
        seen: set[int] = set()
        try:
            for item in response.data:
                index = int(item.index)
                vector = np.asarray(item.embedding, dtype=np.float32)
                if not 0 <= index < len(chunk) or index in seen:
                    raise EmbeddingError(FAILED, detail=f"malformed answer: unexpected index {index}")
                if vector.shape != (self._dimensions,):
                    raise EmbeddingError(
                        FAILED, detail=f"malformed answer: {vector.shape} floats where {self._dimensions} were expected"
                    )
                if not np.isfinite(vector).all():
                    raise EmbeddingError(FAILED, detail="malformed answer: a vector holds NaN or infinity")
                rows[index] = vector
                seen.add(index)
        except (AttributeError, TypeError, ValueError) as exc:
            raise EmbeddingError(FAILED, detail=f"malformed answer: {type(exc).__name__}") from exc
        if len(seen) != len(chunk):
            raise EmbeddingError(FAILED, detail=f"malformed answer: {len(seen)} vectors for {len(chunk)} inputs")
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
    settings: Settings,
    *,
    api_key: str | Callable[[], str],
    counter: TokenCounter | None = None,
    max_request_tokens: int = OPENAI_MAX_REQUEST_TOKENS,
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
        max_request_tokens=max_request_tokens,
    )


def azure_embedder(
    settings: Settings,
    *,
    api_key: str | Callable[[], str],
    counter: TokenCounter | None = None,
    max_request_tokens: int = OPENAI_MAX_REQUEST_TOKENS,
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
        max_request_tokens=max_request_tokens,
    )
