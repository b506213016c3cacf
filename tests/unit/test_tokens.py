"""Token counting works offline from the packaged, sha256-verified tiktoken cache, and never downloads."""

from __future__ import annotations

from pathlib import Path

import pytest
import tiktoken.load

from motorhead.adapters.tiktoken_local.counter import TiktokenCounter, encoding_for
from motorhead.errors import ConfigError
from motorhead.settings import PACKAGED_TIKTOKEN_CACHE


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt by tiktoken to fetch a file fails the test."""

    def refuse(blobpath: str) -> bytes:
        raise AssertionError(f"tiktoken tried to download {blobpath}")

    monkeypatch.setattr(tiktoken.load, "read_file", refuse)
    encoding_for.cache_clear()


@pytest.mark.parametrize(
    ("model", "expected"),
    [("gpt-3.5-turbo", [15339, 1917]), ("gpt-4", [15339, 1917]), ("gpt-4o-mini", [24912, 2375])],
)
def test_token_counter_given_packaged_cache_encodes_offline(model: str, expected: list[int]) -> None:
    # Given the cache built by `make install` / When a model's encoding is loaded with the network refused
    counter = TiktokenCounter(model=model, cache_dir=PACKAGED_TIKTOKEN_CACHE)
    # Then it encodes exactly as OpenAI's tokenizer does
    assert counter.encoding.encode("hello world") == expected
    assert counter.count("hello world") == 2


def test_token_counter_given_unknown_model_falls_back_to_a_shipped_encoding() -> None:
    counter = TiktokenCounter(model="my-local-llama", cache_dir=PACKAGED_TIKTOKEN_CACHE)
    assert counter.encoding.name == "o200k_base"


def test_token_counter_given_missing_cache_dir_fails_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TIKTOKEN_CACHE_DIR"):
        TiktokenCounter(model="gpt-4o-mini", cache_dir=tmp_path / "absent")
