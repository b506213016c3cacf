"""The console in a real browser, against `make run` with auth off and long-term memory on (the local model): one
server for the module, seeded once through the public API; each test opens the page in a fresh browser context."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from playwright.sync_api import Page, expect

from devserver.embedded_redis import free_port
from tests.browser.conftest import drain
from tests.make_run import make_run

XSS = '<img src=x onerror="window.__xss = 1"><script>window.__xss = 2</script>'
TRIP = [
    ("human", "We are planning a trip to Lisbon in May."),
    ("ai", "Lovely. Do you want a hotel near the river?"),
    ("human", "My sister Ana is allergic to peanuts, so restaurants matter."),
    ("ai", "Noted: I will look for peanut-free restaurants."),
    ("human", "We also want to hear fado one evening."),
]
FILLER = [f"chat-{n:02d}" for n in range(1, 17)]  # 16 sessions, + trip and xss: 18 in the default namespace
SCRATCH = "scratch"  # where tests that add or delete sessions put them: the default listing stays 18


@dataclass(frozen=True)
class Console:
    base: str  # the API, e.g. http://127.0.0.1:PORT

    @property
    def url(self) -> str:
        return self.base + "/console/"

    def post(self, session_id: str, messages: list[tuple[str, str]], **query: str) -> None:
        body = {"messages": [{"role": role, "content": content} for role, content in messages]}
        url = f"{self.base}/sessions/{quote(session_id, safe='')}/memory"
        assert requests.post(url, params=query, json=body, timeout=10).ok

    def stats(self, session_id: str) -> dict[str, object]:
        answer = requests.get(f"{self.base}/sessions/{quote(session_id, safe='')}", timeout=10)
        assert answer.ok, answer.text
        found: dict[str, object] = answer.json()
        return found

    def wait_indexed(self, session_id: str) -> None:
        deadline = time.monotonic() + 60
        while self.stats(session_id)["index_pending"]:
            assert time.monotonic() < deadline, "not indexed within 60 s"
            time.sleep(0.2)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    port = free_port()
    with make_run(tmp_path_factory.mktemp("console"), port, MOTORHEAD_LONG_TERM_MEMORY="true") as proc:
        drain(proc)
        served = Console(f"http://127.0.0.1:{port}")
        for session_id in FILLER:
            served.post(session_id, [("human", f"hello from {session_id}")])
        served.post("support-1", [("human", "my invoice is wrong")], namespace="support", user_id="ana")
        served.post("support-2", [("human", "the app crashes")], namespace="support")
        served.post("trip", TRIP, user_id="ana")
        requests.post(
            f"{served.base}/sessions/trip/memory", json={"messages": [], "context": "Ana plans Lisbon."}, timeout=10
        ).raise_for_status()
        served.post("xss", [("human", XSS)])
        for session_id in ("trip", "xss", "support-1"):
            served.wait_indexed(session_id)
        yield served


def test_console_given_the_page_loads_lists_the_first_page_of_sessions(console: Console, page: Page) -> None:
    # Given the server with auth off / When the console loads
    page.goto(console.url)
    # Then it says no key is needed and lists 15 of the 18 sessions, with their counts filled in
    expect(page.locator("#identity")).to_contain_text("auth off")
    rows = page.locator("#session-rows tr")
    expect(rows).to_have_count(15)
    expect(page.locator("#session-total")).to_have_text("18 in all")
    expect(page.locator("#page-info")).to_have_text("1–15 of 18")
    first = page.locator('#session-rows tr[data-session="chat-01"] td')
    expect(first.nth(1)).to_have_text("1")
    expect(first.nth(3)).to_contain_text("ago")
    expect(page.locator("#banner")).to_be_hidden()


def test_console_given_next_page_shows_the_rest(console: Console, page: Page) -> None:
    page.goto(console.url)
    expect(page.locator("#session-rows tr")).to_have_count(15)
    # When the next page is asked for
    page.click("#page-next")
    # Then the last three sessions show and there is no further page
    expect(page.locator("#session-rows tr")).to_have_count(3)
    expect(page.locator("#page-info")).to_have_text("16–18 of 18")
    expect(page.locator("#page-next")).to_be_disabled()
    expect(page.locator('#session-rows tr[data-session="xss"]')).to_have_count(1)


def test_console_given_namespace_and_user_filters_lists_only_those_sessions(console: Console, page: Page) -> None:
    page.goto(console.url)
    expect(page.locator("#session-rows tr")).to_have_count(15)
    # When filtered by the namespace, then by the user
    page.fill("#filter-namespace", "support")
    page.click("#filter-apply")
    expect(page.locator("#session-rows tr")).to_have_count(2)
    page.fill("#filter-namespace", "")
    page.fill("#filter-user", "ana")
    page.press("#filter-user", "Enter")
    # Then only the sessions listed there show
    sessions = page.locator("#session-rows tr")
    expect(page.locator('#session-rows tr[data-session="trip"]')).to_have_count(1)
    expect(sessions).to_have_count(2)
    assert set(sessions.evaluate_all("rows => rows.map(r => r.dataset.session)")) == {"support-1", "trip"}


def test_console_given_a_session_opened_shows_window_newest_first_summary_stats_and_chart(
    console: Console, page: Page
) -> None:
    page.goto(console.url)
    expect(page.locator("#session-rows tr")).to_have_count(15)
    # When a session of the list's second page is clicked
    page.click("#page-next")
    page.locator('#session-rows tr[data-session="trip"]').click()
    # Then its window shows newest first, with its summary, its numbers and its flags
    expect(page.locator("#d-id")).to_have_text("trip")
    messages = page.locator("#d-messages li")
    expect(messages).to_have_count(len(TRIP))
    expect(messages.first.locator(".content")).to_have_text(TRIP[-1][1])
    expect(messages.last.locator(".content")).to_have_text(TRIP[0][1])
    expect(page.locator("#d-context")).to_have_text("Ana plans Lisbon.")
    expect(page.locator('[data-stat="messages"] .value')).to_have_text(str(len(TRIP)))
    expect(page.locator('[data-stat="tokens"] .value')).to_have_text("0")
    # And 0 tokens beside a summary is explained (no model wrote it: here a client's context), never "used by" it
    expect(page.locator('[data-stat="tokens"] .sub')).to_have_text(
        "no model wrote the summary (offline summarizer, or a client's context)"
    )
    expect(page.locator('[data-flag="summary-done"]')).to_be_visible()
    expect(page.locator('[data-flag="index-done"]')).to_be_visible()
    expect(page.locator('[data-flag="index-off"]')).to_have_count(0)
    expect(page.locator("#d-badges")).to_contain_text("user ana")
    # And the chart draws one point per message of the window
    chart = page.locator('#d-chart svg[data-chart="activity"]')
    expect(chart).to_have_attribute("data-points", str(len(TRIP)))
    expect(chart.locator("circle")).to_have_count(len(TRIP))
    # And the page's URL names the session, never a key
    assert page.url.endswith("/console/?session=trip")


def test_console_given_a_deep_link_opens_that_session(console: Console, page: Page) -> None:
    # Given an id that needs encoding / When the console is opened on ?session=<id>
    console.post("a/b c?&#", [("human", "an awkward id")], namespace=SCRATCH)
    page.goto(console.url + "?session=" + quote("a/b c?&#", safe=""))
    # Then that session is open
    expect(page.locator("#d-id")).to_have_text("a/b c?&#")
    expect(page.locator("#d-messages li .content")).to_have_text("an awkward id")


def test_console_given_a_deep_link_to_no_session_says_so(console: Console, page: Page) -> None:
    page.goto(console.url + "?session=never-written")
    expect(page.locator("#detail-error")).to_contain_text('No session "never-written"')
    expect(page.locator("#detail-body")).to_be_hidden()


def test_console_given_message_content_is_html_shows_it_as_text(console: Console, page: Page) -> None:
    # Given a message whose content is markup that runs script if rendered as HTML
    page.goto(console.url + "?session=xss")
    content = page.locator("#d-messages li .content")
    # Then the page shows the markup as text, and no element of it exists, and no script of it ran
    expect(content).to_have_text(XSS)
    assert page.locator("#d-messages img, #d-messages script").count() == 0
    assert page.evaluate("window.__xss") is None


def test_console_given_a_message_appended_shows_it_first(console: Console, page: Page) -> None:
    console.post("append-me", [("human", "first")], namespace=SCRATCH)
    page.goto(console.url + "?session=append-me")
    expect(page.locator("#d-messages li")).to_have_count(1)
    # When a message is appended from the page
    page.select_option("#append-role", "ai")
    page.fill("#append-content", "second, from the console")
    page.click("#append-send")
    # Then it is the newest of the window, and the API has it, still under the session's namespace
    expect(page.locator("#d-messages li")).to_have_count(2)
    expect(page.locator("#d-messages li").first.locator(".content")).to_have_text("second, from the console")
    expect(page.locator("#d-messages li").first.locator(".role")).to_have_text("ai")
    assert console.stats("append-me")["total_messages"] == 2
    assert console.stats("append-me")["namespaces"] == [SCRATCH]


def test_console_given_a_search_ranks_the_hits_with_the_parts_of_their_scores(console: Console, page: Page) -> None:
    page.goto(console.url + "?session=trip")
    expect(page.locator("#d-id")).to_have_text("trip")
    # When the session's memory is searched
    page.fill("#q-text", "peanut allergy")
    page.click("#q-go")
    # Then the message about it comes first, with its score and the parts the fusion added up
    rows = page.locator("#q-rows tr")
    expect(rows.first).to_be_visible()
    first = rows.first.locator("td")
    expect(first.nth(8)).to_contain_text("allergic to peanuts")
    score, vector, keyword, speaker, lift = (float(first.nth(i).inner_text()) for i in range(1, 6))
    assert keyword > 0 and vector > 0
    assert abs(vector + keyword + speaker + lift - score) < 0.01
    # And the chart draws one bar per hit, its parts as segments
    chart = page.locator('#q-chart svg[data-chart="scores"]')
    expect(chart).to_have_attribute("data-bars", str(rows.count()))
    assert chart.locator("rect").count() >= rows.count()


def test_console_given_a_search_with_one_candidate_says_there_is_no_fusion(console: Console, page: Page) -> None:
    # Given a session of one message: a search has that one candidate, and nothing to fuse it against
    console.post("lone", [("human", "The violin lesson is on Tuesday.")], namespace=SCRATCH)
    console.wait_indexed("lone")
    page.goto(console.url + "?session=lone")
    expect(page.locator("#d-id")).to_have_text("lone")
    # When it is searched
    page.fill("#q-text", "violin lesson")
    page.click("#q-go")
    # Then its row says so in place of a row of 0.000 terms, and keeps its raw cosine and BM25
    row = page.locator("#q-rows tr")
    expect(row).to_have_count(1)
    expect(row.locator("td[data-lone]")).to_have_text("only candidate: no fusion")
    cells = row.locator("td")
    expect(cells.nth(1)).to_have_text("—")
    assert float(cells.nth(3).inner_text()) > 0 and float(cells.nth(4).inner_text()) > 0  # cosine, BM25
    expect(cells.nth(5)).to_contain_text("violin lesson")
    # And no chart of zero-length bars: a note instead
    expect(page.locator('#q-chart [data-chart="lone"]')).to_contain_text("One candidate")
    expect(page.locator('#q-chart svg[data-chart="scores"]')).to_have_count(0)


def test_console_given_a_search_of_the_user_spans_its_sessions(console: Console, page: Page) -> None:
    page.goto(console.url + "?session=trip")
    expect(page.locator("#d-id")).to_have_text("trip")
    # When the user's sessions are searched
    page.select_option("#q-scope", "user")
    page.fill("#q-text", "invoice")
    page.press("#q-text", "Enter")
    # Then the hit of the user's other session comes first, named with its session
    first = page.locator("#q-rows tr").first.locator("td")
    expect(first.nth(8)).to_contain_text("my invoice is wrong")
    expect(first.nth(8)).to_contain_text("session support-1")


def test_console_given_delete_asks_first_then_forgets_the_session(console: Console, page: Page) -> None:
    console.post("doomed", [("human", "delete me")], namespace=SCRATCH)
    page.goto(console.url + "?session=doomed")
    expect(page.locator("#d-id")).to_have_text("doomed")
    # When delete is clicked, then cancelled: nothing is deleted
    page.click("#d-delete")
    expect(page.locator("#confirm-delete")).to_be_visible()
    expect(page.locator("#confirm-id")).to_have_text("doomed")
    page.click("#confirm-cancel")
    expect(page.locator("#confirm-delete")).to_be_hidden()
    assert console.stats("doomed")["messages"] == 1
    # When it is clicked and confirmed
    page.click("#d-delete")
    page.click("#confirm-ok")
    # Then the session is gone, from the page, its URL and the API
    expect(page.locator("#detail-empty")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/console/$"))
    assert console.stats("doomed")["exists"] is False


def test_console_given_any_file_answers_with_a_strict_policy(console: Console) -> None:
    # Given the page and its assets / Then each has its type, a CSP that runs only its own script, and nosniff
    for name, kind in (("", "text/html"), ("console.js", "text/javascript"), ("console.css", "text/css")):
        answer = requests.get(console.url + name, timeout=10)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(kind)
        assert "script-src 'self'" in answer.headers["content-security-policy"]
        assert "unsafe-inline" not in answer.headers["content-security-policy"]
        assert answer.headers["x-content-type-options"] == "nosniff"
    html = requests.get(console.url, timeout=10).text
    assert "<script>" not in html and "style=" not in html and "http" not in html.replace("http-equiv", "")


def test_console_given_redirect_and_mounted_twin_serve_the_page(console: Console, page: Page) -> None:
    # Given /console without its slash, and the /motorhead mount n8n uses
    answer = requests.get(console.base + "/console", allow_redirects=False, timeout=10)
    assert answer.status_code == 308 and answer.headers["location"] == "console/"
    # When the mounted page is opened / Then it calls the API under the same mount and works
    page.goto(console.base + "/motorhead/console")
    expect(page).to_have_url(console.base + "/motorhead/console/")
    expect(page.locator("#session-rows tr")).to_have_count(15)


def test_console_given_the_screenshot_script_output_exists_it_is_a_png() -> None:
    # The README's picture (docs/images/console.png), made by scripts/console_screenshot.py: present and a PNG
    image = Path(__file__).resolve().parents[2] / "docs" / "images" / "console.png"
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
