#!/usr/bin/env bash
# Validate and build the SAM application, then report the unzipped size of every artifact.
#
#   scripts/sam_build.sh            # sam validate --lint && sam build (settings from samconfig.toml)
#   scripts/sam_build.sh --no-cached   # extra arguments go to `sam build`
#
# - SAM CLI lives in its own venv, .sam-venv/ (aws-sam-cli pins boto3; keep it away from .venv/).
#   Override the version with SAM_CLI_VERSION, the python that creates the venv with SAM_PYTHON.
# - `sam build` for runtime python3.12 needs a python3.12 on PATH; with pyenv we add an installed 3.12 to
#   PYENV_VERSION, elsewhere python3.12 must already be on PATH.
# - The layer's Makefile downloads the npm tiktoken tarball once into .build/ (TIKTOKEN_NPM_TARBALL).
# - Fails if any function plus its layers exceeds Lambda's 250 MB unzipped limit (262,144,000 bytes).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SAM_VENV="$ROOT/.sam-venv"
SAM_CLI_VERSION="${SAM_CLI_VERSION:-1.170.0}"
SAM_PYTHON="${SAM_PYTHON:-python3}"

die() {
    echo "sam_build.sh: $*" >&2
    exit 1
}

is_python312() {
    "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1
}

# --- SAM CLI in its own venv ----------------------------------------------------------------------------------
if [[ ! -x "$SAM_VENV/bin/sam" ]]; then
    echo "==> installing aws-sam-cli==$SAM_CLI_VERSION into $SAM_VENV"
    "$SAM_PYTHON" -m venv "$SAM_VENV" || die "cannot create $SAM_VENV with $SAM_PYTHON"
    "$SAM_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "aws-sam-cli==$SAM_CLI_VERSION"
fi
SAM="$SAM_VENV/bin/sam"

# --- a python3.12 on PATH for the python3.12 runtime ----------------------------------------------------------
if ! is_python312 python3.12; then
    if command -v pyenv >/dev/null 2>&1; then
        py312="$(pyenv versions --bare | grep -E '^3\.12\.[0-9]+$' | sort -V | tail -n 1 || true)"
        [[ -n "$py312" ]] || die "pyenv has no 3.12.x: run 'pyenv install 3.12' (sam build needs python3.12)"
        current="$(pyenv version-name)"
        export PYENV_VERSION="${current}:${py312}"
        echo "==> PYENV_VERSION=$PYENV_VERSION"
    fi
    is_python312 python3.12 || die "no python3.12 on PATH: install Python 3.12 (sam build needs it for runtime python3.12)"
fi

# Offline-friendly defaults: no telemetry, a region for the translator, the npm tarball cached in .build/.
export SAM_CLI_TELEMETRY="${SAM_CLI_TELEMETRY:-0}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-${AWS_REGION:-us-east-1}}"
export TIKTOKEN_NPM_TARBALL="${TIKTOKEN_NPM_TARBALL:-$ROOT/.build/npm/tiktoken.tgz}"

echo "==> sam validate --lint"
"$SAM" validate --lint

echo "==> sam build $*"
"$SAM" build "$@"

# --- sizes ----------------------------------------------------------------------------------------------------
echo "==> unzipped sizes (.aws-sam/build)"
"$SAM_VENV/bin/python" - "$ROOT/.aws-sam/build" <<'PY'
"""Size of each built artifact and of each function with its layers; exit 1 over Lambda's unzipped limit."""

import os
import sys
from pathlib import Path

from samtranslator.yaml_helper import yaml_parse

LIMIT = 262_144_000  # Lambda: 250 MB unzipped, function code plus all its layers
MB = 1024 * 1024

build_dir = Path(sys.argv[1])
template = yaml_parse((build_dir / "template.yaml").read_text())
resources = template.get("Resources", {})


def size_of(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def layer_ids(value: object) -> list[str]:
    refs = value if isinstance(value, list) else []
    return [ref["Ref"] for ref in refs if isinstance(ref, dict) and isinstance(ref.get("Ref"), str)]


sizes = {name: size_of(build_dir / name) for name in resources if (build_dir / name).is_dir()}
for name, size in sorted(sizes.items()):
    kind = resources[name]["Type"].split("::")[-1]
    print(f"  {name:<24} {kind:<14} {size / MB:9.3f} MB")

global_layers = layer_ids(template.get("Globals", {}).get("Function", {}).get("Layers"))
totals = {}
for name, resource in resources.items():
    if resource["Type"] != "AWS::Serverless::Function" or name not in sizes:
        continue
    props = resource.get("Properties", {})
    layers = layer_ids(props["Layers"]) if "Layers" in props else global_layers
    missing = [layer for layer in layers if layer not in sizes]
    if missing:
        sys.exit(f"{name}: built layer(s) {missing} not found in {build_dir}")
    totals[name] = sizes[name] + sum(sizes[layer] for layer in layers)

if not totals:
    sys.exit(f"no built function found in {build_dir}")
largest = max(totals, key=lambda name: totals[name])
print(f"  largest function+layers: {largest} {totals[largest] / MB:.2f} MB (limit {LIMIT / MB:.0f} MB)")
over = {name: total for name, total in totals.items() if total > LIMIT}
if over:
    for name, total in sorted(over.items()):
        print(f"  OVER THE LIMIT: {name} {total / MB:.2f} MB", file=sys.stderr)
    sys.exit(1)
PY
