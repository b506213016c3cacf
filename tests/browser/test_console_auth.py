"""The console with auth on (`make run` with MOTORHEAD_AUTH=api-key, keys made by `make key`'s tool): no key or a
wrong one gets a clear message, never a blank page; a good key lists its tenant's sessions and stays out of URLs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect

from devserver.embedded_redis import free_port
from tests.browser.conftest import drain
from tests.make_run import make_run, user_environment
from tests.support import REPO, with_wrong_secret


@dataclass(frozen=True)
class SecureConsole:
    base: str
    key: str  # tenant acme, every scope
    reader: str  # tenant acme, read only: may not list

    @property
    def url(self) -> str:
        return self.base + "/console/"


def make_key(data_dir: Path, tenant: str, scopes: str | None = None) -> str:
    """A key from `make key`'s tool (the last line it prints), on the running server's Redis."""
    command = [sys.executable, "-m", "devserver.keys", "create", "--tenant", tenant]
    if scopes:
        command += ["--scopes", scopes]
    done = subprocess.run(
        command, cwd=REPO, env=user_environment(MOTORHEAD_DATA_DIR=str(data_dir)), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureConsole]:
    port, data_dir = free_port(), tmp_path_factory.mktemp("secure")
    with make_run(data_dir, port, MOTORHEAD_AUTH="api-key") as proc:
        drain(proc)
        served = SecureConsole(
            f"http://127.0.0.1:{port}", make_key(data_dir, "acme"), make_key(data_dir, "acme", "read")
        )
        other = make_key(data_dir, "globex")
        for key, session_id in ((served.key, "acme-chat"), (other, "globex-chat")):
            answer = requests.post(
                f"{served.base}/sessions/{session_id}/memory",
                json={"messages": [{"role": "human", "content": f"hello from {session_id}"}]},
                headers={"Authorization": f"Bearer {key}"},
                timeout=10,
            )
            assert answer.ok, answer.text
        yield served


def test_console_given_auth_on_and_no_key_says_a_key_is_needed(secure: SecureConsole, page: Page) -> None:
    # When the console loads without a key
    page.goto(secure.url)
    # Then it says that a key is needed and how to get one; nothing is listed
    expect(page.locator("#banner")).to_contain_text("This server needs an API key.")
    expect(page.locator("#banner")).to_contain_text("make key")
    expect(page.locator("#session-empty")).to_have_text("Paste an API key to list sessions.")
    expect(page.locator("#session-rows tr")).to_have_count(0)


def test_console_given_a_wrong_key_says_it_was_refused(secure: SecureConsole, page: Page) -> None:
    page.goto(secure.url)
    expect(page.locator("#banner")).to_be_visible()
    # When a wrong key is pasted
    page.fill("#key-input", with_wrong_secret(secure.key, 2))
    page.click("#key-use")
    # Then the page says the key was refused, and shows no session
    expect(page.locator("#banner")).to_contain_text("The key was refused.")
    expect(page.locator("#identity")).to_have_text("key refused")
    expect(page.locator("#session-rows tr")).to_have_count(0)


def test_console_given_a_good_key_lists_only_its_tenants_sessions(secure: SecureConsole, page: Page) -> None:
    requests_seen: list[str] = []
    page.on("request", lambda request: requests_seen.append(request.url))
    page.goto(secure.url)
    # When the tenant's key is pasted (Enter)
    page.fill("#key-input", secure.key)
    page.press("#key-input", "Enter")
    # Then the banner goes, the caller is named, and only the tenant's session is listed
    expect(page.locator("#identity")).to_contain_text("acme")
    expect(page.locator("#banner")).to_be_hidden()
    expect(page.locator("#session-rows tr")).to_have_count(1)
    expect(page.locator('#session-rows tr[data-session="acme-chat"]')).to_have_count(1)
    # And the key is in this tab's sessionStorage, cleared from the field, and in no URL the page asked for
    assert page.evaluate("sessionStorage.getItem('motorhead.console.key')") == secure.key
    assert page.input_value("#key-input") == ""
    page.locator('#session-rows tr[data-session="acme-chat"]').click()
    expect(page.locator("#d-messages li .content")).to_have_text("hello from acme-chat")
    assert requests_seen and not any(secure.key in url for url in requests_seen)
    # And another tenant's session, asked for by its id, is not found
    page.goto(secure.url + "?session=globex-chat")
    expect(page.locator("#detail-error")).to_contain_text('No session "globex-chat"')
    # And "Forget key" forgets it
    page.click("#key-forget")
    expect(page.locator("#banner")).to_contain_text("This server needs an API key.")
    assert page.evaluate("sessionStorage.getItem('motorhead.console.key')") is None


def test_console_given_a_key_without_the_list_scope_says_so(secure: SecureConsole, page: Page) -> None:
    page.goto(secure.url)
    page.fill("#key-input", secure.reader)
    page.click("#key-use")
    # Then the caller shows with its one scope, and the list says why it is empty
    expect(page.locator("#identity")).to_contain_text("read")
    expect(page.locator("#session-empty")).to_contain_text("this key may not do that")


def test_console_given_long_term_memory_off_says_so_never_index_up_to_date(secure: SecureConsole, page: Page) -> None:
    # Given `make run` with long-term memory off (its default): nothing is ever indexed
    page.goto(secure.url)
    page.fill("#key-input", secure.key)
    page.press("#key-input", "Enter")
    # When a session is opened
    page.locator('#session-rows tr[data-session="acme-chat"]').click()
    expect(page.locator("#d-id")).to_have_text("acme-chat")
    # Then its badge says long-term memory is off, not that its index is up to date
    expect(page.locator('[data-flag="index-off"]')).to_have_text("long-term memory off")
    expect(page.locator('[data-flag="index-done"]')).to_have_count(0)
