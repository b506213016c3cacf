"""A TCP proxy in front of a Redis that can lose one reply on purpose, for tests of what a client's retry does.

A reply lost on a live server (a connection reset by a NAT or a load balancer, a network blip) is the one fault in
which the server did the work and the client cannot know it: redis-py sees a dropped connection and sends the
command again. ``ReplyDroppingProxy.lose_next_reply(marker, meanwhile)`` arms the proxy: the next command whose
bytes hold ``marker`` goes through to Redis, and when its reply comes back the proxy runs ``meanwhile`` (whatever
else should happen on the server before the client retries), then closes that connection instead of passing the
reply on. Every other connection and command is passed through untouched.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from types import TracebackType

_CHUNK = 1 << 16


class ReplyDroppingProxy:
    """Listens on 127.0.0.1 (a free port) and forwards to ``upstream_port`` on 127.0.0.1."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._lock = threading.Lock()
        self._armed: tuple[bytes, Callable[[], None]] | None = None
        self._sockets: list[socket.socket] = []
        self._closed = threading.Event()
        self.replies_lost = 0
        self._thread = threading.Thread(target=self._accept, name="reply-dropping-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self._listener.getsockname()[1]}/0"

    def lose_next_reply(self, marker: bytes, meanwhile: Callable[[], None]) -> None:
        """Lose the reply to the next command containing ``marker`` (case-insensitive), running ``meanwhile`` first."""
        with self._lock:
            self._armed = (marker.upper(), meanwhile)

    def __enter__(self) -> ReplyDroppingProxy:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self._thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._upstream_port))
            with self._lock:
                self._sockets += [client, upstream]
            doomed: list[Callable[[], None]] = []  # set when this connection's next reply is to be lost
            threading.Thread(target=self._requests, args=(client, upstream, doomed), daemon=True).start()
            threading.Thread(target=self._replies, args=(upstream, client, doomed), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket, doomed: list[Callable[[], None]]) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(_CHUNK):
                with self._lock:
                    if self._armed is not None and self._armed[0] in data.upper():
                        doomed.append(self._armed[1])  # before forwarding: the reply cannot come back first
                        self._armed = None
                upstream.sendall(data)
        self._close(client, upstream)

    def _replies(self, upstream: socket.socket, client: socket.socket, doomed: list[Callable[[], None]]) -> None:
        with contextlib.suppress(OSError):
            while data := upstream.recv(_CHUNK):
                if doomed:
                    doomed.pop()()
                    self.replies_lost += 1
                    break
                client.sendall(data)
        self._close(client, upstream)

    @staticmethod
    def _close(*sockets: socket.socket) -> None:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
