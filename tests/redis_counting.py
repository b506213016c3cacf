"""Round trips and commands, counted on a real Redis: how the tests hold each hot route to its budget.

A round trip is one write of a request to a server that the client then waits on: redis-py sends a command, a
pipeline or a script call with one ``send_packed_command`` per connection. Connection set-up and health-check pings
(sent with ``check_health=False``) are not the route's and are not counted. Commands are the server's own count
(``INFO commandstats``), so the commands a Lua script runs are counted too.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.connection import AbstractConnection


@dataclass
class Count:
    round_trips: int = 0
    commands: dict[str, int] = field(default_factory=dict)

    @property
    def total_commands(self) -> int:
        return sum(self.commands.values())


_lock = threading.Lock()
_active: list[Count] = []
_original = AbstractConnection.send_packed_command


def _counting_send(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
    if check_health:
        with _lock:
            for count in _active:
                count.round_trips += 1
    _original(self, command, check_health)  # type: ignore[no-untyped-call]


# Connection set-up and the counting itself: not a route's work
NOT_COUNTED = frozenset({"config|resetstat", "info", "client|setinfo", "hello", "auth", "select", "ping"})


@contextmanager
def counted(ports: Sequence[int]) -> Iterator[Count]:
    """Count the round trips this process makes in the block, and the commands the servers at ``ports`` run
    meanwhile (nothing else may use them; run the route once before, so its connections are open)."""
    admins = [redis.Redis(port=port) for port in ports]
    count = Count()
    try:
        for admin in admins:
            admin.config_resetstat()
        with _lock:
            if not _active:
                AbstractConnection.send_packed_command = _counting_send  # type: ignore[method-assign]
            _active.append(count)
        try:
            yield count
        finally:
            with _lock:
                _active.remove(count)
                if not _active:
                    AbstractConnection.send_packed_command = _original  # type: ignore[method-assign]
        calls: dict[str, int] = {}
        for admin in admins:
            for name, stats in admin.info("commandstats").items():
                command = name.removeprefix("cmdstat_")
                if command not in NOT_COUNTED:
                    calls[command] = calls.get(command, 0) + int(stats["calls"])
        count.commands = calls
    finally:
        for admin in admins:
            admin.close()
