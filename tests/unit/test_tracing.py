"""The observability module: sessions logged as hashes, traces only where they are cheap, subsegments around the
calls that leave the process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from motorhead import observability
from motorhead.adapters.redis_db.connector import mapped_errors
from motorhead.core.values import SessionRef
from tests.support import REPO


class RecordingProvider:
    def __init__(self) -> None:
        self.names: list[str] = []

    @contextmanager
    def in_subsegment(self, name: str) -> Iterator[None]:
        self.names.append(name)
        yield


class ActiveTracer:
    def __init__(self) -> None:
        self._config: dict[str, Any] = {"disabled": False}
        self.provider = RecordingProvider()


def test_session_hash_given_an_id_is_short_stable_and_says_nothing_of_it() -> None:
    one = observability.session_hash(SessionRef(tenant="", id="ana@example.com"))
    assert len(one) == 12 and one == observability.session_hash(SessionRef(tenant="", id="ana@example.com"))
    assert "ana" not in one and one != observability.session_hash(SessionRef(tenant="acme", id="ana@example.com"))


def test_subsegment_given_tracing_off_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(observability, "_tracer", None)
    with observability.subsegment("redis"):
        pass


def test_subsegment_given_tracing_on_wraps_every_redis_call(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an active tracer in this process
    tracer = ActiveTracer()
    monkeypatch.setattr(observability, "_tracer", tracer)
    # When Redis is used (every Redis call goes through mapped_errors) / Then each is a "## redis" subsegment
    with mapped_errors():
        pass
    with mapped_errors():
        pass
    assert tracer.provider.names == ["## redis", "## redis"]


def test_enable_tracing_given_no_active_tracing_loads_no_xray_sdk() -> None:
    # Given a fresh process outside Lambda (no AWS_XRAY_DAEMON_ADDRESS) / When tracing is asked for
    probe = (
        "import sys; from motorhead import observability as o; "
        "print(o.enable_tracing({}), 'aws_xray_sdk' in sys.modules, 'botocore.client' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": f"{REPO / 'layers/shared/python'}:{REPO}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    # Then it stays off, and neither the X-Ray SDK nor botocore's client (what makes it cost) was imported
    assert result.stdout.split() == ["False", "False", "False"]
