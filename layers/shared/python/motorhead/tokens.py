"""Token counting with tiktoken, offline: encodings come from the layer's own cache, never from the network.

The cache (``TIKTOKEN_CACHE_DIR``, by default ``motorhead/tiktoken_cache`` inside the layer) is produced at build
time by ``scripts/build_tiktoken_cache.py`` and verified by sha256; tiktoken verifies it again on load. A model
tiktoken does not know falls back to ``o200k_base``, the encoding of current OpenAI models.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import tiktoken

from motorhead.errors import ConfigError

SHIPPED_ENCODINGS = ("cl100k_base", "o200k_base")
FALLBACK_ENCODING = "o200k_base"


def use_cache_dir(cache_dir: Path) -> None:
    """Point tiktoken at the packaged cache (tiktoken reads only this variable) and refuse to go online."""
    if not cache_dir.is_dir():
        raise ConfigError(f"TIKTOKEN_CACHE_DIR: {cache_dir} does not exist (run `make install` or `sam build`)")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)


@lru_cache(maxsize=8)
def encoding_for(model: str) -> tiktoken.Encoding:
    try:
        name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        name = FALLBACK_ENCODING
    if name not in SHIPPED_ENCODINGS:  # anything else would make tiktoken download it
        name = FALLBACK_ENCODING
    return tiktoken.get_encoding(name)


class TokenCounter:
    """Counts tokens the way ``model`` does, from the packaged cache."""

    def __init__(self, *, model: str, cache_dir: Path) -> None:
        use_cache_dir(cache_dir)
        self.model = model
        self.encoding = encoding_for(model)

    def count(self, text: str) -> int:
        return len(self.encoding.encode(text, disallowed_special=()))
