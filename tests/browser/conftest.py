"""Fixtures of the browser tests: Debian's Chromium (``/usr/bin/chromium``, installed by ``.ci/run``) driven by
Playwright, one browser per module and a fresh context (no storage, no cookies) per test.

Without Chromium the tests fail in CI (``CI=true``): a browser test that skips there would pass silently. Locally they
skip, saying why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
# A function's first call in `make run` starts its process (a cold start, seconds on a loaded CI machine)
TIMEOUT_MS = 20_000
expect.set_options(timeout=TIMEOUT_MS)


def chromium_path() -> str:
    """Debian's Chromium: a test of this folder fails without it in CI, and skips elsewhere."""
    found = next((path for path in CHROMIUM_CANDIDATES if Path(path).is_file()), None) or shutil.which("chromium")
    if found:
        return found
    reason = "Chromium is not installed (apt-get install chromium; .ci/run installs it)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason}: the browser tests must run in CI")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One browser per module, stopped after it: Playwright's sync API keeps an event loop running in this thread
    while it is started, and the tests after this folder run their own (Mangum's, the MCP client's)."""
    executable = chromium_path()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh profile: empty sessionStorage, no cookies, a desktop viewport."""
    fresh = browser.new_context(viewport={"width": 1440, "height": 1000})
    fresh.set_default_timeout(TIMEOUT_MS)
    yield fresh
    fresh.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A page whose script errors fail the test."""
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    assert not errors, errors


def drain(proc: subprocess.Popen[str]) -> list[str]:
    """Read the output of `make run` as it comes, into the list returned: nobody else reads its pipe during the
    tests, and a server that fills it (its request and metric lines) blocks on its next write."""
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)

    threading.Thread(target=read, name="make-run-output", daemon=True).start()
    return lines
