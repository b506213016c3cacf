#!/usr/bin/env python3
"""Build tiktoken's BPE cache files offline, from the npm package ``tiktoken`` (no PyPI package ships them).

``tiktoken.get_encoding(name)`` downloads ``<name>.tiktoken`` from a blob store on first use, which fails in a
Lambda without internet access. tiktoken first looks in ``$TIKTOKEN_CACHE_DIR`` for a file named
``sha1(<blob url>)`` whose sha256 equals the expected hash, so we ship those files in the layer.

Source: the npm package ``tiktoken@1.0.22`` carries ``encoders/<name>.json`` whose ``bpe_ranks`` string holds
lines ``"<key> <start_rank> <b64 token> <b64 token> ..."``; expanding each into ``"<b64 token> <rank>\\n"``
lines (rank = start_rank + position) rebuilds the official ``.tiktoken`` file byte for byte.

The blob URLs and expected hashes are not written here: they are read from the installed python package
(``tiktoken_ext.openai_public``), whose constructors are called with ``load_tiktoken_bpe`` replaced by a
recorder. Every written file is checked against that hash; any mismatch exits non-zero.

Usage::

    python scripts/build_tiktoken_cache.py --out layers/shared/python/motorhead/tiktoken_cache
    python scripts/build_tiktoken_cache.py --out DIR --encodings cl100k_base \\
        --tarball .build/tiktoken-1.0.22.tgz
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from tiktoken_ext import openai_public

NPM_PACKAGE = "tiktoken"
NPM_VERSION = "1.0.22"
NPM_TARBALL_URL = f"https://registry.npmjs.org/{NPM_PACKAGE}/-/{NPM_PACKAGE}-{NPM_VERSION}.tgz"
DEFAULT_ENCODINGS = ("cl100k_base", "o200k_base")
TARBALL_ENV = "TIKTOKEN_NPM_TARBALL"
DOWNLOAD_TIMEOUT_S = 120


class CacheBuildError(Exception):
    """Anything that must stop the build: unknown encoding, bad tarball, hash mismatch."""


@dataclass(frozen=True)
class BpeSource:
    """Where tiktoken would download an encoding's ranks from, and the sha256 it expects."""

    encoding: str
    blob_url: str
    expected_hash: str

    @property
    def npm_encoder(self) -> str:
        """The npm package's encoder holding this file's ranks (``.../o200k_base.tiktoken`` -> ``o200k_base``)."""
        return PurePosixPath(urlsplit(self.blob_url).path).stem

    @property
    def cache_name(self) -> str:
        """The file name tiktoken looks up in ``$TIKTOKEN_CACHE_DIR``."""
        return hashlib.sha1(self.blob_url.encode()).hexdigest()


def bpe_source(encoding: str) -> BpeSource:
    """Ask the installed ``tiktoken_ext.openai_public`` which URL and hash it would load for ``encoding``."""
    constructors: dict[str, Callable[[], Any]] = openai_public.ENCODING_CONSTRUCTORS
    constructor = constructors.get(encoding)
    if constructor is None:
        raise CacheBuildError(f"unknown encoding {encoding!r}; tiktoken knows {sorted(constructors)}")

    calls: list[tuple[str, str | None]] = []

    def recorder(tiktoken_bpe_file: str, expected_hash: str | None = None) -> dict[bytes, int]:
        calls.append((tiktoken_bpe_file, expected_hash))
        return {}

    def refuse_data_gym(*_args: object, **_kwargs: object) -> dict[bytes, int]:
        raise CacheBuildError(f"{encoding}: uses the data-gym format (vocab.bpe + encoder.json), not supported")

    originals = (openai_public.load_tiktoken_bpe, openai_public.data_gym_to_mergeable_bpe_ranks)
    openai_public.load_tiktoken_bpe = recorder
    openai_public.data_gym_to_mergeable_bpe_ranks = refuse_data_gym
    try:
        constructor()
    finally:
        openai_public.load_tiktoken_bpe, openai_public.data_gym_to_mergeable_bpe_ranks = originals

    if len(calls) != 1:
        raise CacheBuildError(f"{encoding}: expected one load_tiktoken_bpe call, recorded {calls!r}")
    blob_url, expected_hash = calls[0]
    if not expected_hash:
        raise CacheBuildError(f"{encoding}: tiktoken gives no expected hash for {blob_url}")
    return BpeSource(encoding=encoding, blob_url=blob_url, expected_hash=expected_hash)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same directory, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def download_tarball() -> bytes:
    print(f"downloading {NPM_TARBALL_URL}", file=sys.stderr)
    with urllib.request.urlopen(NPM_TARBALL_URL, timeout=DOWNLOAD_TIMEOUT_S) as response:
        data: bytes = response.read()
    return data


def tarball_version(data: bytes) -> str | None:
    """The ``version`` in the tarball's package.json, or None when it is not a readable npm tarball."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            extracted = tar.extractfile("package/package.json")
            if extracted is None:
                return None
            with extracted:
                manifest = json.load(extracted)
    except (tarfile.TarError, KeyError, ValueError, OSError):
        return None
    version = manifest.get("version") if isinstance(manifest, dict) else None
    return version if isinstance(version, str) else None


def load_tarball(tarball: Path | None) -> bytes:
    """Reuse ``tarball`` if it holds the right version, else download it (and keep it there when one is named)."""
    if tarball is not None and tarball.is_file():
        data = tarball.read_bytes()
        found = tarball_version(data)
        if found == NPM_VERSION:
            print(f"reusing {tarball}", file=sys.stderr)
            return data
        print(f"{tarball} holds version {found}, not {NPM_VERSION}: downloading again", file=sys.stderr)
    data = download_tarball()
    if tarball_version(data) != NPM_VERSION:
        raise CacheBuildError(f"{NPM_TARBALL_URL} is not the {NPM_PACKAGE}@{NPM_VERSION} npm tarball")
    if tarball is not None:
        atomic_write(tarball, data)
    return data


def encoder_json(tar: tarfile.TarFile, encoding: str) -> dict[str, Any]:
    member_name = f"package/encoders/{encoding}.json"
    try:
        member = tar.getmember(member_name)
    except KeyError as exc:
        raise CacheBuildError(f"{member_name} is not in {NPM_PACKAGE}@{NPM_VERSION}") from exc
    extracted = tar.extractfile(member)
    if extracted is None:
        raise CacheBuildError(f"{member_name} is not a regular file")
    with extracted:
        loaded: dict[str, Any] = json.load(extracted)
    return loaded


def expand_bpe_ranks(bpe_ranks: str) -> Iterator[bytes]:
    """Turn ``"<key> <start_rank> <tok> <tok> ..."`` lines into ``"<tok> <rank>\\n"`` lines."""
    for lineno, line in enumerate(bpe_ranks.split("\n"), start=1):
        if not line:
            continue
        fields = line.split(" ")
        if len(fields) < 2 or not fields[1].isdigit():
            raise CacheBuildError(f"bpe_ranks line {lineno} does not start with '<key> <start_rank>'")
        start = int(fields[1])
        for offset, token in enumerate(fields[2:]):
            yield f"{token} {start + offset}\n".encode("ascii")


def build_cache(encodings: Sequence[str], out_dir: Path, tarball: Path | None) -> list[Path]:
    """Make sure ``out_dir`` holds a verified cache file for every encoding; return their paths."""
    # Several encodings can share one file (p50k_edit reads p50k_base's, o200k_harmony o200k_base's).
    by_file: dict[str, BpeSource] = {}
    for encoding in encodings:
        source = bpe_source(encoding)
        by_file.setdefault(source.cache_name, source)
    sources = list(by_file.values())
    missing: list[BpeSource] = []
    for source in sources:
        target = out_dir / source.cache_name
        if target.is_file() and sha256_of(target) == source.expected_hash:
            print(f"{source.encoding}: {target} already present", file=sys.stderr)
        else:
            missing.append(source)

    if missing:
        archive = load_tarball(tarball)
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            for source in missing:
                contents = b"".join(expand_bpe_ranks(encoder_json(tar, source.npm_encoder)["bpe_ranks"]))
                actual = hashlib.sha256(contents).hexdigest()
                if actual != source.expected_hash:
                    raise CacheBuildError(
                        f"{source.encoding}: rebuilt file has sha256 {actual}, tiktoken expects "
                        f"{source.expected_hash} for {source.blob_url}"
                    )
                target = out_dir / source.cache_name
                atomic_write(target, contents)
                print(f"{source.encoding}: wrote {target} ({len(contents)} bytes)", file=sys.stderr)

    paths = [out_dir / source.cache_name for source in sources]
    for source, path in zip(sources, paths, strict=True):
        if sha256_of(path) != source.expected_hash:
            raise CacheBuildError(f"{source.encoding}: {path} does not verify after writing")
    return paths


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True, help="directory to write the cache files into")
    parser.add_argument(
        "--encodings",
        nargs="+",
        default=list(DEFAULT_ENCODINGS),
        metavar="NAME",
        help=f"encodings to build (default: {' '.join(DEFAULT_ENCODINGS)}); comma-separated lists also work",
    )
    parser.add_argument(
        "--tarball",
        type=Path,
        default=Path(os.environ[TARBALL_ENV]) if os.environ.get(TARBALL_ENV) else None,
        help=f"reuse this {NPM_PACKAGE}-{NPM_VERSION}.tgz if it exists, or download it there "
        f"(default: ${TARBALL_ENV}, else download to memory)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    encodings = list(dict.fromkeys(name for item in args.encodings for name in item.split(",") if name))
    try:
        build_cache(encodings, args.out, args.tarball)
    except (CacheBuildError, OSError, tarfile.TarError, ValueError, KeyError) as exc:
        print(f"build_tiktoken_cache: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
