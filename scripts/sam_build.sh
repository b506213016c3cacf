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
# - Prints every built layer and every function with its layers (Globals' first, then its own; each side of a
#   layer's !If, e.g. Embedder local or not), unzipped, in bytes and MiB (1 MiB = 1,048,576 bytes). Fails if one is
#   over Lambda's limit for a function with all its layers, 262,144,000 bytes = 250 MiB; warns when one has less
#   than MARGIN_MIB (default 20) left, the room a dependency bump may take.
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
echo "==> unzipped sizes (.aws-sam/build), in bytes and MiB (1 MiB = 1,048,576 bytes)"
MARGIN_MIB="${MARGIN_MIB:-20}" "$SAM_VENV/bin/python" - "$ROOT/.aws-sam/build" <<'PY'
"""Size of each built layer and of each function with its layers; exit 1 over Lambda's unzipped limit."""

import itertools
import os
import sys
from pathlib import Path

from samtranslator.yaml_helper import yaml_parse

LIMIT = 262_144_000  # Lambda: a function's code plus all its layers, unzipped: 262,144,000 bytes = 250 MiB
MIB = 1024 * 1024
MARGIN = float(os.environ["MARGIN_MIB"]) * MIB

build_dir = Path(sys.argv[1])
template = yaml_parse((build_dir / "template.yaml").read_text())
resources = template.get("Resources", {})


def size_of(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def variants(value: object) -> list[tuple[str, list[str]]]:
    """Each list of layer ids a Layers property can give, labelled by its conditions: `!Ref X` is X in every one;
    `!If [Cond, !Ref A, !Ref B]` is A where Cond holds and B where it does not."""
    items = value if isinstance(value, list) else []
    conditions = sorted({item["Fn::If"][0] for item in items if isinstance(item, dict) and "Fn::If" in item})
    out = []
    for truths in itertools.product((True, False), repeat=len(conditions)):
        holds = dict(zip(conditions, truths, strict=True))
        layers = []
        for item in items:
            if isinstance(item, dict) and "Fn::If" in item:
                condition, when_true, when_false = item["Fn::If"]
                item = when_true if holds[condition] else when_false
            if isinstance(item, dict) and isinstance(item.get("Ref"), str) and item["Ref"] != "AWS::NoValue":
                layers.append(item["Ref"])
        label = " ".join(name if truth else f"not {name}" for name, truth in holds.items())
        out.append((label, layers))
    return out


def fmt(size: float) -> str:
    return f"{size:>13,.0f} B {size / MIB:8.2f} MiB"


sizes = {name: size_of(build_dir / name) for name in resources if (build_dir / name).is_dir()}
print("  layers:")
for name, size in sorted(sizes.items()):
    if resources[name]["Type"].endswith("LayerVersion"):
        print(f"    {name:<22} {fmt(size)}")

global_layers = template.get("Globals", {}).get("Function", {}).get("Layers") or []
rows = []
for name, resource in resources.items():
    if resource["Type"] != "AWS::Serverless::Function" or name not in sizes:
        continue
    # SAM puts Globals' Layers first, then the function's own
    own = resource.get("Properties", {}).get("Layers") or []
    for label, layers in variants([*global_layers, *own]):
        missing = [layer for layer in layers if layer not in sizes]
        if missing:
            sys.exit(f"{name}: built layer(s) {missing} not found in {build_dir}")
        rows.append((name, label, layers, sizes[name] + sum(sizes[layer] for layer in layers)))

if not rows:
    sys.exit(f"no built function found in {build_dir}")
print(f"  functions with their layers (limit {LIMIT:,} B = {LIMIT / MIB:.0f} MiB):")
for name, label, layers, total in sorted(rows, key=lambda row: (-row[3], row[0], row[1])):
    where = f"{name} [{label}]" if label else name
    print(f"    {where:<42} {fmt(total)}  room {(LIMIT - total) / MIB:7.2f} MiB  {'+'.join(layers)}")
name, label, _layers, total = max(rows, key=lambda row: row[3])
print(f"  largest function+layers: {name}{f' [{label}]' if label else ''} {total:,} B = {total / MIB:.2f} MiB "
      f"(limit {LIMIT:,} B = {LIMIT / MIB:.0f} MiB; room {(LIMIT - total) / MIB:.2f} MiB)")
over = [row for row in rows if row[3] > LIMIT]
for name, label, _layers, total in over:
    print(f"  OVER THE LIMIT: {name} [{label}] {total:,} B = {total / MIB:.2f} MiB", file=sys.stderr)
if over:
    sys.exit(1)
for name, label, _layers, total in rows:
    if LIMIT - total < MARGIN:
        print(f"  warning: {name} [{label}] has {(LIMIT - total) / MIB:.2f} MiB left, under the {MARGIN / MIB:.0f} MiB "
              "margin for the next dependency bump", file=sys.stderr)
PY
