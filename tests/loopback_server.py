"""A threaded HTTP server on a free loopback port, started and stopped as a context manager: the one lifecycle the
test servers (the JWKS server, the OpenAI stub) share."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self


class LoopbackServer:
    """Serves ``handler`` on 127.0.0.1 from ``__enter__`` to ``__exit__``. ``_stopping`` is set first on exit, so a
    handler that hangs on purpose (waiting on it) is released before the server shuts down."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], *, name: str) -> None:
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name=name, daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])
