"""Redis down or silent: a fast 503 JSON error, never a hang."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from devserver.embedded_redis import free_port
from tests.support import body, cold_start, load_event, post_event


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never answers (a blackholed Redis)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


@pytest.mark.parametrize("function_id", ["GetMemoryFunction", "PostMemoryFunction", "DeleteMemoryFunction"])
def test_request_given_redis_refuses_connections_returns_503_json(function_id: str) -> None:
    # Given a REDIS_URL where nothing listens
    event_name = {"GetMemoryFunction": "get_memory-ok", "PostMemoryFunction": "post_memory-ok"}.get(
        function_id, "delete_memory-ok"
    )
    with cold_start(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0") as api:
        # When a request arrives
        response = api.invoke(function_id, load_event(event_name))
    # Then it gets a 503 with a JSON error
    assert response["statusCode"] == 503
    assert "redis unavailable" in body(response)["error"]


def test_get_given_redis_never_answers_returns_503_within_the_bounded_timeouts(silent_server: int) -> None:
    # Given a Redis that accepts but never answers, and a 0.3 s socket timeout
    with cold_start(
        REDIS_URL=f"redis://127.0.0.1:{silent_server}/0",
        MOTORHEAD_REDIS_MODE="standalone",
        MOTORHEAD_REDIS_SOCKET_TIMEOUT="0.3",
    ) as api:
        started = time.monotonic()
        # When a request arrives
        response = api.invoke("GetMemoryFunction", load_event("get_memory-ok"))
        elapsed = time.monotonic() - started
    # Then it ends in 503 instead of hanging (one retry: well under the 10 s Lambda timeout)
    assert response["statusCode"] == 503
    assert elapsed < 5


def test_retrieval_given_redis_down_imports_fine_and_answers_503_json() -> None:
    # Given long-term memory on, the auto backend, and no Redis at all (a cold start must not need it)
    with cold_start(
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        MOTORHEAD_LONG_TERM_MEMORY="true",
        MOTORHEAD_EMBEDDER="local",
        MOTORHEAD_VECTOR_BACKEND="auto",
    ) as api:
        event = post_event("s", {"text": "anything"})
        event["routeKey"] = event["requestContext"]["routeKey"] = "POST /sessions/{session_id}/retrieval"
        event["rawPath"] = event["requestContext"]["http"]["path"] = "/sessions/s/retrieval"
        response = api.invoke("RetrievalFunction", event)
    assert response["statusCode"] == 503 and "redis unavailable" in body(response)["error"]
