"""The chat-web page in a real browser (Playwright driving Debian's Chromium), against `make run` through the page's
own server, as its README says: a turn round-trips through the memory server, hostile text stays text, the history
comes back on reload."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import BrowserContext

from devserver.embedded_redis import free_port
from tests.integration.test_examples import OFFLINE, Server, chat_web, example_environment
from tests.make_run import make_run

HOSTILE = '<img src=x onerror="window.pwned = 1">I live in Lisbon'


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    """`make run` as it starts by default, and `python examples/chat-web/server.py` in front of it."""
    port = free_port()
    with make_run(tmp_path_factory.mktemp("make-run"), port):
        server = Server(f"http://127.0.0.1:{port}")
        with chat_web(example_environment(server)) as url:
            yield server, url


def test_page_given_two_turns_round_trips_them_through_the_memory_and_renders_text_as_text(
    web: tuple[Server, str], context: BrowserContext
) -> None:
    # The conftest's browser (`context`): without Chromium this fails in CI and skips elsewhere, as every browser test
    server, url = web
    page = context.new_page()
    problems: list[str] = []
    refused: list[tuple[int, str]] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("response", lambda r: refused.append((r.status, r.url.removeprefix(url))) if r.status >= 400 else None)
    # Given the page, opened on a session
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]")
    badge = page.text_content("#responder")
    page.fill("#session", "browser-1")
    page.click("#settings button[type=submit]")
    # When two messages are sent, the first one hostile markup
    page.fill("#text", HOSTILE)
    page.press("#text", "Enter")
    page.wait_for_selector("#messages li.ai >> nth=0")
    page.fill("#text", "Where do I live?")
    page.press("#text", "Enter")
    page.wait_for_selector("#messages li.ai >> nth=1")
    answers = page.locator("#messages li.ai .content").all_text_contents()
    images = page.locator("#messages img").count()
    pwned = page.evaluate("window.pwned")
    window_label = page.text_content("#window")
    # And the page is opened again
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_selector("#messages li >> nth=3")
    reloaded = page.locator("#messages li .content").all_text_contents()
    # Then the offline responder answered from the memory, and said so
    assert badge == "offline responder (no model configured)"
    assert all(answer.startswith(OFFLINE) for answer in answers) and len(answers) == 2
    assert f"Earlier you said “{HOSTILE}”" in answers[1]
    assert window_label == "2 messages"  # what GET returned before the second turn
    # And the markup stayed text: no element made of it, no script run, no error (nor a content-policy violation)
    assert images == 0 and pwned is None
    assert [problem for problem in problems if not problem.startswith("Failed to load resource")] == []
    # And the one refusal was long-term memory being off (asked once: the page then stops asking)
    assert refused == [(400, "/api/memory/sessions/browser-1/retrieval")]
    # And the server holds both turns, which the reloaded page showed again
    conversation = [HOSTILE, answers[0], "Where do I live?", answers[1]]
    assert server.window("browser-1") == list(zip(["Human", "AI"] * 2, conversation, strict=True))
    assert reloaded == conversation
