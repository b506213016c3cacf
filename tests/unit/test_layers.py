"""Each function carries only what it imports: the layers template.yaml gives it (for every Embedder) hold every
package its import graph reaches, and no layer holds what another one has (layers/*/requirements.txt)."""

from __future__ import annotations

import re
import sys
from functools import cache
from importlib.metadata import packages_distributions, version
from pathlib import Path
from typing import Any

import grimp
import pytest

from devserver.template import condition_values, load_template
from tests.lambda_emulator import function_layers
from tests.support import REPO

LAYER_DIRS = {
    "SharedLayer": "shared",
    "LlmLayer": "llm",
    "NumpyLayer": "numpy",
    "EmbeddingsLayer": "embeddings",
    "McpLayer": "mcp",
}
RUNTIME = frozenset({"boto3", "botocore"})  # what Lambda's python3.12 runtime provides (/var/runtime)
EMBEDDERS = ("local", "openai", "azure")
LTM_FUNCTIONS = ("IndexerFunction", "RetrievalFunction", "UserRetrievalFunction")


def pins(layer: str) -> dict[str, str]:
    """A layer's requirements: normalized distribution name -> pinned version."""
    text = (REPO / "layers" / LAYER_DIRS[layer] / "requirements.txt").read_text(encoding="utf-8")
    return {
        re.sub(r"[-_.]+", "-", name).lower(): pinned
        for name, pinned in re.findall(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s#]+)", text, flags=re.MULTILINE)
    }


@cache
def import_names(layer: str) -> frozenset[str]:
    """The top-level modules a layer's packages install (as this .venv has them), motorhead for the SharedLayer."""
    wanted = set(pins(layer))
    names = {
        module
        for module, dists in packages_distributions().items()
        if any(re.sub(r"[-_.]+", "-", dist).lower() in wanted for dist in dists)
    }
    return frozenset(names | ({"motorhead"} if layer == "SharedLayer" else set()))


@cache
def import_graph() -> grimp.ImportGraph:
    return grimp.build_graph("motorhead", "functions", include_external_packages=True, cache_dir=None)


@cache
def reached(function_module: str) -> frozenset[str]:
    """Every package outside the standard library that the function's import graph reaches, lazy imports included
    (as the import contracts see it)."""
    tops = {module.partition(".")[0] for module in import_graph().find_upstream_modules(function_module)}
    return frozenset(tops - set(sys.stdlib_module_names) - {"functions"})


@cache
def template() -> dict[str, Any]:
    return load_template()


@cache
def layers_of(function_id: str, embedder: str) -> list[str]:
    return function_layers(template(), function_id, conditions(embedder))


@cache
def conditions(embedder: str) -> dict[str, bool]:
    return condition_values({"Embedder": embedder})


def function_dir(function_id: str) -> str:
    return Path(template()["Resources"][function_id]["Properties"]["CodeUri"]).name


def function_ids() -> list[str]:
    resources = template()["Resources"]
    return sorted(name for name, res in resources.items() if res["Type"] == "AWS::Serverless::Function")


@pytest.mark.parametrize("function_id", function_ids())
def test_layers_given_every_embedder_hold_every_package_the_functions_import_graph_reaches(function_id: str) -> None:
    # Given the function's import graph (every branch: a long-term-memory function reaches both embedders' packages)
    code_uri = Path(template()["Resources"][function_id]["Properties"]["CodeUri"])
    graph = reached(f"functions.{code_uri.name}.app")
    # When its layers are taken for each Embedder / Then together they have every package of it, or the runtime does
    layers = {layer for embedder in EMBEDDERS for layer in layers_of(function_id, embedder)}
    offered = {name for layer in layers for name in import_names(layer)}
    assert graph - offered - RUNTIME == set(), f"{function_id} imports packages none of its layers has"


def test_layers_given_each_function_are_only_those_its_imports_need() -> None:
    # Given the template / Then the memory functions have the SharedLayer alone, the summarizer adds the LLM's, and
    # the long-term-memory functions numpy plus either the local model's runtime or the provider's client
    for function_id in function_ids():
        expected: dict[str, list[str]] = dict.fromkeys(EMBEDDERS, ["SharedLayer"])
        if function_id == "SummarizerFunction":
            expected = dict.fromkeys(EMBEDDERS, ["SharedLayer", "LlmLayer"])
        elif function_id in LTM_FUNCTIONS:
            remote = ["SharedLayer", "NumpyLayer", "LlmLayer"]
            expected = {"local": ["SharedLayer", "NumpyLayer", "EmbeddingsLayer"], "openai": remote, "azure": remote}
        elif function_id == "McpFunction":  # the SDK, and search_memory's long-term memory
            remote = ["SharedLayer", "McpLayer", "NumpyLayer", "LlmLayer"]
            local = ["SharedLayer", "McpLayer", "NumpyLayer", "EmbeddingsLayer"]
            expected = {"local": local, "openai": remote, "azure": remote}
        assert {embedder: layers_of(function_id, embedder) for embedder in EMBEDDERS} == expected, function_id
    # And a memory function's graph reaches none of numpy, openai, tiktoken, onnxruntime or tokenizers
    assert not reached("functions.get_memory.app") & {"numpy", "openai", "tiktoken", "onnxruntime", "tokenizers", "mcp"}
    # And only the MCP function's graph reaches the MCP SDK
    assert {f for f in function_ids() if "mcp" in reached(f"functions.{function_dir(f)}.app")} == {"McpFunction"}


def test_embedder_given_the_template_defaults_to_the_local_model_on_lambda() -> None:
    parameter = template()["Parameters"]["Embedder"]
    assert parameter["Default"] == "local"
    assert parameter["AllowedValues"] == ["local", "openai", "azure"]
    for function_id in LTM_FUNCTIONS:
        variables = template()["Resources"][function_id]["Properties"]["Environment"]["Variables"]
        assert variables["MOTORHEAD_LOCAL_MODEL_DIR"] == "/opt/models/all-MiniLM-L6-v2-int8"


def test_requirements_given_the_layers_no_package_is_in_two_and_each_is_the_tested_version() -> None:
    # Given every layer's pinned requirements
    seen: dict[str, str] = {}
    for layer in LAYER_DIRS:
        for name, pinned in pins(layer).items():
            # Then no package is installed by two layers (Lambda would extract both copies into /opt)
            assert name not in seen, f"{name} is in {seen.get(name)} and {layer}"
            seen[name] = layer
            # And each is the version this .venv runs the tests with
            assert version(name) == pinned, f"{layer}: {name}=={pinned}, but the tests run {version(name)}"
