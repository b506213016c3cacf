"""Cold start stays light: no function imports what it does not use, and none touches the network at import."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from devserver.template import load_routes
from tests.support import REPO

PROBE = """
import json, sys
from devserver.template import load_routes
from devserver.lambda_runtime import load_function
route = next(r for r in load_routes() if r.function_id == sys.argv[1])
load_function(route)
print(json.dumps({name: name in sys.modules for name in ("openai", "boto3", "numpy", "tiktoken", "jwt")}))
"""


@pytest.mark.parametrize("auth", ["api-key", "none"])
@pytest.mark.parametrize("function_id", sorted({r.function_id for r in load_routes()}))
def test_cold_start_given_a_function_imports_no_heavy_sdk(function_id: str, auth: str) -> None:
    # Given a fresh process, a REDIS_URL where nothing listens, and API keys (the AWS default) or no auth
    env = {
        **os.environ,
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "MOTORHEAD_AUTH": auth,
        "PYTHONPATH": f"{REPO / 'layers/shared/python'}:{REPO}",
    }
    # When the function's module is imported, as Lambda's init phase does
    result = subprocess.run(
        [sys.executable, "-c", PROBE, function_id], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    # Then the import succeeds without reaching Redis, and neither openai, boto3, numpy, tiktoken nor PyJWT was loaded
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded == {"openai": False, "boto3": False, "numpy": False, "tiktoken": False, "jwt": False}


@pytest.mark.parametrize(
    ("embedder", "must_not_load"),
    [("local", {"openai", "boto3"}), ("openai", {"onnxruntime", "tokenizers", "boto3"})],
)
def test_cold_start_given_retrieval_with_an_embedder_imports_nothing_of_the_other(
    embedder: str, must_not_load: set[str]
) -> None:
    # Given long-term memory on, with the local model or with OpenAI embeddings
    env = {
        **os.environ,
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "MOTORHEAD_LONG_TERM_MEMORY": "true",
        "MOTORHEAD_EMBEDDER": embedder,
        "MOTORHEAD_VECTOR_BACKEND": "exact",  # auto would ask the (absent) server
        "OPENAI_API_KEY": "sk-test",
        "PYTHONPATH": f"{REPO / 'layers/shared/python'}:{REPO}",
    }
    probe = PROBE.replace('("openai", "boto3", "numpy", "tiktoken", "jwt")', repr(tuple(sorted(must_not_load))))
    # When the retrieval function is imported, as Lambda's init phase does
    result = subprocess.run(
        [sys.executable, "-c", probe, "RetrievalFunction"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    # Then it loads nothing of the other embedder (nor boto3)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == dict.fromkeys(sorted(must_not_load), False)
