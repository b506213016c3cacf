"""`make run`'s server as a user runs it: no REDIS_URL, an embedded Redis whose data survives a restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from devserver.__main__ import port_is_free
from devserver.embedded_redis import free_port
from tests.make_run import make_run, user_environment
from tests.support import REPO


def redis_children(output: str) -> str:
    """The embedded Redis URL the server printed."""
    return next(line.split()[3] for line in output.splitlines() if "embedded Redis" in line)


def test_local_run_given_no_redis_url_serves_and_keeps_data_across_restarts(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/sessions/persist%3A1/memory"
    # Given the local server started with no REDIS_URL
    with make_run(tmp_path, port) as first:
        # When a message is stored and the server is stopped
        assert requests.post(url, json={"messages": [{"role": "Human", "content": "remember me"}]}, timeout=5).ok
    output = first.stdout.read() if first.stdout else ""
    assert first.returncode == 0, output
    redis_url = redis_children(output)
    # Then its embedded Redis stopped with it
    redis_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    with __import__("socket").socket() as probe:
        assert probe.connect_ex(("127.0.0.1", redis_port)) != 0
    # And after a restart on the same data folder, the message is still there
    with make_run(tmp_path, port):
        assert [m["content"] for m in requests.get(url, timeout=5).json()["messages"]] == ["remember me"]


def test_local_run_given_window_overflow_summarizes_in_the_background(tmp_path: Path) -> None:
    # Given the local server (local SQS FIFO queue + the summarizer handler, offline extractive summarizer)
    port = free_port()
    url = f"http://127.0.0.1:{port}/sessions/overflow/memory"
    with make_run(tmp_path, port):
        # When a conversation goes over the default window of 12
        for turn in range(8):
            messages = [
                {"role": "Human", "content": f"Question {turn}: how warm is Bogotá in month number {turn + 1}?"},
                {"role": "AI", "content": f"In month {turn + 1} Bogotá averages {14 + turn % 3} degrees Celsius."},
            ]
            assert requests.post(url, json={"messages": messages}, timeout=5).ok
        # Then, shortly after, GET returns the newest messages and a summary of the older ones that were folded
        deadline = time.monotonic() + 20
        while (memory := requests.get(url, timeout=5).json())["context"] is None:
            assert time.monotonic() < deadline, "no summary within 20 s"
            time.sleep(0.2)
    ids = [m["id"] for m in memory["messages"]]
    assert 6 <= len(ids) < 12 and ids == list(range(16, 16 - len(ids), -1))
    assert "month number 1" in memory["context"]


def test_local_run_given_long_term_memory_on_retrieves_with_the_local_model(tmp_path: Path) -> None:
    # Given the local server with long-term memory on (local ONNX embedder, exact backend on the embedded Redis)
    port = free_port()
    base = f"http://127.0.0.1:{port}/sessions/trip"
    with make_run(tmp_path, port, MOTORHEAD_LONG_TERM_MEMORY="true"):
        messages = [
            {"role": "Human", "content": "How do I dance to electronic music?"},
            {"role": "AI", "content": "Keep your knees loose and move with the beat."},
            {"role": "Human", "content": "My sister is allergic to peanuts."},
        ]
        assert requests.post(f"{base}/memory", json={"messages": messages}, timeout=5).ok
        # When the app asks for what is relevant, until the index job has run (a second or two)
        deadline = time.monotonic() + 30
        while not (hits := requests.post(f"{base}/retrieval", json={"text": "dancing to EDM"}, timeout=10).json()):
            assert time.monotonic() < deadline, "nothing indexed within 30 s"
            time.sleep(0.2)
    # Then the paraphrased message comes first
    assert hits[0]["content"] == "How do I dance to electronic music?"


def test_local_run_given_ctrl_c_in_its_terminal_stops_every_process_without_a_traceback(tmp_path: Path) -> None:
    # Given the local server in a process group of its own (as a terminal's foreground job), its function processes
    # started by a first request
    port = free_port()
    env = user_environment(PORT=str(port), MOTORHEAD_DATA_DIR=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "devserver"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/sessions/x/memory", timeout=2).ok:
                    break
            except (requests.ConnectionError, requests.Timeout):
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        # When Ctrl-C is pressed: SIGINT to the whole foreground process group
        os.killpg(proc.pid, signal.SIGINT)
        output, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    # Then it stops cleanly: exit 0, no traceback from any process, and a port free for a restart at once
    assert proc.returncode == 0, output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert port_is_free(port)


def test_port_is_free_given_only_connections_closing_after_a_stop_says_free() -> None:
    # Given a server that accepted a connection, closed it first (its side waits in TIME_WAIT) and stopped
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        # When it is still listening / Then the port is taken
        assert not port_is_free(port)
        accepted.close()
    time.sleep(0.1)
    client.close()
    # And once it stopped, the closing connection does not make the port look taken
    assert port_is_free(port)
