"""docs/images/console.png, the console's picture in the README: `make run` (long-term memory on, a fresh data folder,
a window of 8) seeded with a sample conversation longer than the window, so that the summarizer (the offline one: no
model, 0 tokens) folds its oldest messages into the summary the picture shows; the console opened on it with a
search done, captured by Debian's Chromium.

    .venv/bin/python scripts/console_screenshot.py [--out docs/images/console.png] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from playwright.sync_api import expect, sync_playwright

REPO = Path(__file__).resolve().parent.parent
WINDOW = 8  # fewer than the conversation's 11 messages: the summarizer folds the oldest
CONVERSATION = [
    ("human", "Hi! We're planning a trip to Lisbon with my sister Ana in May."),
    ("ai", "Lovely. How many nights, and do you prefer a hotel near the river or up in Alfama?"),
    ("human", "Five nights. Somewhere quiet in Alfama, we like walking."),
    ("ai", "Alfama is steep but charming; I'll look for places near Miradouro de Santa Luzia."),
    ("human", "Ana is allergic to peanuts, so restaurants need to be careful about that."),
    ("ai", "Noted: peanut-free kitchens only. Portuguese food rarely uses peanuts, which helps."),
    ("human", "We'd also love to hear fado one evening, not a tourist trap."),
    ("ai", "Try a small tasca in Mouraria on a weeknight; they start late, around 21:30."),
    ("human", "What about a day trip? Sintra or Cascais?"),
    ("ai", "Sintra for palaces and forest, Cascais for the sea. Go to Sintra early on a weekday."),
    ("human", "Sintra then. Can you remind me what Ana can't eat when we book dinner there?"),
]
OTHER_SESSIONS = [
    ("support-4411", "support", "My invoice for March shows the wrong VAT number."),
    ("support-4412", "support", "The mobile app logs me out every few minutes."),
    ("onboarding-ana", "", "Welcome aboard! Let's set up your travel preferences."),
    ("recipes-weekly", "", "Ideas for a quick dinner without nuts?"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def post(base: str, session_id: str, messages: list[tuple[str, str]], **query: str) -> None:
    body = {"messages": [{"role": role, "content": content} for role, content in messages]}
    requests.post(f"{base}/sessions/{session_id}/memory", params=query, json=body, timeout=30).raise_for_status()


def wait_settled(base: str, session_id: str) -> None:
    """Until the session is indexed and its summary written by the summarizer, with nothing pending."""
    deadline = time.monotonic() + 120
    while True:
        stats = requests.get(f"{base}/sessions/{session_id}", timeout=30).json()
        if stats["has_summary"] and not stats["summary_pending"] and not stats["index_pending"]:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"{session_id} was not indexed and summarized within 120 s: {stats}")
        time.sleep(0.3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images" / "console.png")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data_dir:
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith(("MOTORHEAD_", "AWS_"))}
        env.update(
            PORT=str(port),
            MOTORHEAD_DATA_DIR=data_dir,
            MOTORHEAD_LONG_TERM_MEMORY="true",
            MOTORHEAD_MAX_WINDOW_SIZE=str(WINDOW),
            PYTHONPATH=f"{REPO}/layers/shared/python:{REPO}",
        )
        server = subprocess.Popen(
            [sys.executable, "-m", "devserver"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        assert server.stdout is not None
        output = server.stdout
        threading.Thread(target=lambda: [None for _ in output], daemon=True).start()  # keep its pipe flowing
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    requests.get(base + "/", timeout=5)
                    break
                except requests.RequestException:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("make run did not come up") from None
                    time.sleep(0.2)
            for session_id, namespace, text in OTHER_SESSIONS:
                post(base, session_id, [("human", text)], **({"namespace": namespace} if namespace else {}))
            for start in range(0, len(CONVERSATION), 2):  # a conversation over several POSTs, as a chat app writes
                post(base, "lisbon-trip", CONVERSATION[start : start + 2], user_id="ana")
                time.sleep(0.4)
            wait_settled(base, "lisbon-trip")  # indexed, and summarized by the summarizer (no client's context)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1440, "height": 1180}, device_scale_factor=1)
                page.set_default_timeout(30_000)
                page.goto(f"{base}/console/?session=lisbon-trip")
                expect(page.locator("#d-id")).to_have_text("lisbon-trip", timeout=30_000)
                page.fill("#q-text", "what is Ana allergic to?")
                page.click("#q-go")
                expect(page.locator("#q-rows tr").first).to_be_visible(timeout=30_000)
                expect(page.locator("#session-rows td.num").first).not_to_have_text("…", timeout=30_000)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out), full_page=True)
                browser.close()
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
