"""Token counting with tiktoken, offline: encodings come from the layer's own cache, never from the network.

The cache (``TIKTOKEN_CACHE_DIR``, by default ``motorhead/tiktoken_cache`` inside the layer) is produced at build
time by ``scripts/build_tiktoken_cache.py`` and verified by sha256; tiktoken verifies it again on load. A model
tiktoken does not know falls back to ``o200k_base``, the encoding of current OpenAI models.
"""

from __future__ import annotations

import os
from functools import cached_property, lru_cache
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


class TiktokenCounter:
    """Implements ``motorhead.core.ports.TokenCounter``: counts tokens the way ``model`` does, from the packaged
    cache."""

    def __init__(self, *, model: str, cache_dir: Path) -> None:
        if not cache_dir.is_dir():  # fail at cold start, naming the variable, not at the first count
            raise ConfigError(f"TIKTOKEN_CACHE_DIR: {cache_dir} does not exist (run `make install` or `sam build`)")
        self.model = model
        self._cache_dir = cache_dir

    @cached_property
    def encoding(self) -> tiktoken.Encoding:
        """Loaded on first use (a few tens of ms), so a function that may never count pays nothing at cold start."""
        use_cache_dir(self._cache_dir)
        return encoding_for(self.model)

    def count(self, text: str) -> int:
        return len(self.encoding.encode(text, disallowed_special=()))

    def head(self, text: str, tokens: int) -> str:
        """The first ``tokens`` tokens of ``text``, without a character cut in half at the end."""
        encoded = self.encoding.encode(text, disallowed_special=())
        if len(encoded) <= tokens:
            return text
        return self.encoding.decode(encoded[: max(tokens, 0)]).rstrip("\ufffd")
