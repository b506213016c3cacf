"""`make run` as a user runs it, for the tests that need the whole local server: ``python -m devserver`` in its own
process, in an environment holding none of ours (no Redis, Motorhead or AWS setting), the Makefile's PYTHONPATH."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.support import REPO

START_TIMEOUT_S = 60.0


def user_environment(**env: str) -> dict[str, str]:
    """Our environment without any Redis, Motorhead or AWS setting, the Makefile's PYTHONPATH, and ``env``."""
    clean = {k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith(("MOTORHEAD_", "AWS_"))}
    return {**clean, "PYTHONPATH": f"{REPO}/layers/shared/python:{REPO}", **env}


@contextmanager
def make_run(data_dir: Path, port: int, **env: str) -> Iterator[subprocess.Popen[str]]:
    """`make run` (no REDIS_URL) on ``data_dir``, serving on ``port`` for the block (its output in ``stdout``), then
    stopped with SIGTERM as Ctrl-C would."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "devserver"],
        cwd=REPO,
        env=user_environment(PORT=str(port), MOTORHEAD_DATA_DIR=str(data_dir), **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except requests.RequestException:  # not listening yet, or its first request still starting up
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "make run did not come up"
                time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
