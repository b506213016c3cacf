"""Local gateway benchmark: what ``make run``'s gateway costs per request beside the handler it invokes (figures and
ratios measured side by side in one run, never pass/fail).

``make run`` answers each HTTP request in two processes: the gateway (``devserver/server.py``: HTTP parsing, the API
Gateway event, the access log, the JSON line to the function's worker and back) and one of the function's own worker
processes (``devserver/worker.py``: the Lambda handler, and its own share of the pipe protocol). Measured here:

- the real stack, built as ``devserver/__main__.py`` builds it (``function_runtimes``, ``IsolatedFunction``,
  ``LocalGateway``, its access log on), in a child process of its own (``serve``), against an ``EmbeddedRedis``, with
  ``MOTORHEAD_AUTH=none``; a session seeded through the gateway (14 messages + a context, window 12);
- driven by a separate load-generator process (``client``: raw sockets in N threads, far less work per request than
  the gateway's), for a fixed number of ``GET /sessions/{id}/memory`` per phase: 1 and 16 clients with keep-alive
  (16 also with the access log off, to show what it costs), then 64 clients with keep-alive and with a new
  connection per request (the listen backlog: every connection error is counted, by kind);
- CPU time (user + sys, from ``/proc/<pid>/stat``) over each phase, per request, of the gateway process, of the
  function's worker processes, of the Redis server and of the load generator; and, of the workers' time, the part
  inside the handler (``cpu_ms`` in each answer: ``LocalFunction.handler_cpu_s``). Two ratios: gateway / workers,
  and the stricter (gateway + the workers' own part: reading the event, writing the answer) / the handler alone;
  requests/s and p50 / p95 latency.

Then MCP beside REST, warm, through the same gateway: ``get_memory`` of the same session as a ``tools/call`` on
``POST /mcp`` (``McpFunction``: stateless, JSON response, protocol 2025-06-18, no ``initialize``) and ``GET
/sessions/{id}/memory``, one client with keep-alive, interleaved rounds of each after a warm-up of each; its answer
checked to be GET's JSON first. Latency p50 / p95 / p99 seen by the client.

Phases run in order, ``rounds`` times, after a warm-up (which also starts the function's 4 worker processes); CPU is
summed over the rounds, and the first ratio is also given round by round. The machine may be shared: compare the
ratios. Run alone with ``PYTHONPATH=layers/shared/python:. .venv/bin/python bench/gateway.py [--quick]``, or as part
of ``bench/run.py`` (``make bench ARGS="--only gateway"``).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any, TypedDict

from bench.harness import percentile, report, stop_process

REPO = Path(__file__).resolve().parent.parent
PYTHONPATH = f"{REPO / 'layers' / 'shared' / 'python'}:{REPO}"

FUNCTION = "GetMemoryFunction"
SESSION = "bench-gateway"
PATH = f"/sessions/{SESSION}/memory"
MCP_PATH = "/mcp"
MCP_CALL = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {"name": "get_memory", "arguments": {"session_id": SESSION}},
}
MCP_HEADERS = {
    "content-type": "application/json",
    "accept": "application/json, text/event-stream",
    "mcp-protocol-version": "2025-06-18",
}
WINDOW = 12  # the template's default MaxWindowSize
SEED_MESSAGES = 14
CLIENT_TIMEOUT_S = 30.0
ANSWER_TIMEOUT_S = 60.0  # the gateway's start (and every later answer of it)
TICKS_PER_S = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Phase:
    """One load: how many concurrent clients, and whether each keeps its connection."""

    clients: int
    keep_alive: bool
    requests: int
    access_log: bool = True  # off: what the gateway costs without its access log

    @property
    def label(self) -> str:
        connection = "keep-alive" if self.keep_alive else "new connection each"
        quiet = "" if self.access_log else ", no access log"
        return f"{self.clients} client{'' if self.clients == 1 else 's'}, {connection}{quiet}"


@dataclass(frozen=True)
class GatewaySettings:
    """How much to measure."""

    rounds: int
    warmup_requests: int
    phases: tuple[Phase, ...]
    mcp_rounds: int = 6  # MCP beside REST: interleaved rounds of each
    mcp_calls: int = 100  # calls of each per round (one client, keep-alive)
    mcp_warmup: int = 50  # calls of each before the first round


def _phases(scale: int) -> tuple[Phase, ...]:
    return (
        Phase(1, True, 4 * scale),
        Phase(16, True, 15 * scale),
        Phase(16, True, 15 * scale, access_log=False),
        Phase(64, True, 15 * scale),
        Phase(64, False, 15 * scale),
    )


DEFAULT = GatewaySettings(rounds=3, warmup_requests=600, phases=_phases(100))
QUICK = GatewaySettings(rounds=1, warmup_requests=300, phases=_phases(40), mcp_rounds=2, mcp_calls=50)


# -- the gateway, in a process of its own ---------------------------------------------------------------------------


def serve(redis_url: str, ready_fd: int) -> int:
    """``make run``'s gateway and functions, as ``devserver/__main__.py`` builds them, on a free port (written to
    ``ready_fd`` as one JSON line). Then each line on stdin is a command, answered on ``ready_fd``: ``stats`` (the CPU
    time each function's handlers report, ``LocalFunction.handler_cpu_s``), ``access-log on|off``. SIGTERM, or stdin
    closed, stops it and its workers."""
    from devserver.local_stack import base_environment, function_runtimes
    from devserver.server import IsolatedFunction, LocalGateway, merged_openapi
    from devserver.template import load_routes

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")  # as devserver/__main__.py
    runtimes = function_runtimes(
        redis_url=redis_url, queues={}, user={"MOTORHEAD_AUTH": "none"}, base=base_environment()
    )
    functions = [IsolatedFunction(route, runtimes[route.function_id]) for route in load_routes()]
    openapi = partial(merged_openapi, functions, title="bench", version="0")
    gateway = LocalGateway(("127.0.0.1", 0), functions, openapi)
    answers = os.fdopen(ready_fd, "w", encoding="utf-8")

    def answer(payload: object) -> None:
        answers.write(json.dumps(payload) + "\n")
        answers.flush()

    def commands() -> None:
        for line in sys.stdin:
            command = line.split()
            if command == ["stats"]:
                answer({function_id: runtime.handler_cpu_s for function_id, runtime in runtimes.items()})
            elif command[:1] == ["access-log"]:
                logging.getLogger("devserver").setLevel(logging.INFO if command[1:] == ["on"] else logging.WARNING)
                answer({"access_log": command[1:]})
        gateway.shutdown()  # stdin closed: the benchmark is gone

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=gateway.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    answer({"port": gateway.server_address[1]})
    threading.Thread(target=commands, daemon=True).start()
    try:
        gateway.serve_forever()
    finally:
        gateway.server_close()
        for runtime in runtimes.values():
            runtime.close()
    return 0


class GatewayProcess:
    """The gateway child (``serve``): its port, its pid, its commands, and its log (the access log and the functions'
    own output, in ``log_path``)."""

    def __init__(self, redis_url: str, log_path: Path) -> None:
        answers_read, answers_write = os.pipe()
        self._log = log_path.open("wb")
        env = {**os.environ, "PYTHONPATH": PYTHONPATH}
        env.pop("MOTORHEAD_AUTH", None)
        command = [
            sys.executable,
            "-m",
            "bench.gateway",
            "serve",
            f"--redis-url={redis_url}",
            f"--ready-fd={answers_write}",
        ]
        self.process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            pass_fds=(answers_write,),
        )
        os.close(answers_write)
        self._answers = os.fdopen(answers_read, "r", encoding="utf-8")
        try:
            self.port = int(self._answer()["port"])
        except (RuntimeError, KeyError):
            self.stop()
            raise RuntimeError(f"the gateway did not start: see {log_path}") from None

    @property
    def pid(self) -> int:
        return self.process.pid

    def _answer(self) -> dict[str, Any]:
        ready, _, _ = select.select([self._answers], [], [], ANSWER_TIMEOUT_S)  # one line per command: none buffered
        line = self._answers.readline() if ready else ""  # empty at EOF too: the child died
        if not line:
            raise RuntimeError("the gateway process is gone, or does not answer")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def command(self, text: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(text.encode() + b"\n")
        self.process.stdin.flush()
        return self._answer()

    def handler_cpu_s(self) -> dict[str, float]:
        """The CPU time each function's handlers took so far, as its workers report it."""
        return {name: float(seconds) for name, seconds in self.command("stats").items()}

    def stop(self) -> None:
        stop_process(self.process)
        if self.process.stdin is not None:
            self.process.stdin.close()
        self._answers.close()
        self._log.close()


# -- CPU time from /proc ----------------------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    """``/proc/<pid>/stat`` after the command name (which may hold spaces): field 3 (state) is index 0."""
    return Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rpartition(")")[2].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process, all its threads (ended ones included)."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S


def worker_pids(parent: int) -> dict[int, str]:
    """The function worker processes of ``parent``, with their function's id."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int(_stat_fields(int(entry.name))[1]) != parent:
                continue
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):  # gone meanwhile
            continue
        for argument in arguments:
            if argument.startswith(b"--function-id="):
                found[int(entry.name)] = argument.partition(b"=")[2].decode()
    return found


@dataclass
class CpuSnapshot:
    """CPU seconds so far: the gateway process, each worker process, the handlers (as the workers report them),
    Redis."""

    gateway: float
    workers: dict[int, tuple[str, float]]  # pid -> (function id, seconds)
    handlers: dict[str, float]  # function id -> seconds
    redis: float

    @classmethod
    def take(cls, gateway: GatewayProcess, redis_pid: int) -> CpuSnapshot:
        workers = {}
        for pid, function_id in worker_pids(gateway.pid).items():
            with contextlib.suppress(OSError):
                workers[pid] = (function_id, cpu_seconds(pid))
        return cls(
            gateway=cpu_seconds(gateway.pid),
            workers=workers,
            handlers=gateway.handler_cpu_s(),
            redis=cpu_seconds(redis_pid),
        )

    def workers_since(self, before: CpuSnapshot, function_id: str) -> float:
        """CPU seconds ``function_id``'s worker processes spent since ``before`` (one started since counts whole)."""
        return sum(
            seconds - before.workers.get(pid, (name, 0.0))[1]
            for pid, (name, seconds) in self.workers.items()
            if name == function_id
        )


# -- the load generator, in a process of its own ----------------------------------------------------------------------


class LoadOutcome(TypedDict):
    elapsed_s: float
    cpu_s: float  # the load generator's own
    latencies_us: list[float]  # of the answered requests
    statuses: dict[str, int]
    errors: dict[str, int]  # connection errors by kind ("reset", "refused", "closed early", ...)


class GatewayClosed(ConnectionError):
    """The gateway closed a connection before its answer was complete."""


ERROR_KINDS: dict[type[BaseException], str] = {
    ConnectionResetError: "reset",
    ConnectionRefusedError: "refused",
    BrokenPipeError: "broken pipe",
    GatewayClosed: "closed early",
    TimeoutError: "timeout",
}


def _exchange(sock: socket.socket, request: bytes, pending: bytes) -> tuple[int, bool, bytes]:
    """Send one request and read its response: (status, whether the gateway closes, bytes past the response)."""
    sock.sendall(request)
    buffer = pending
    while (end := buffer.find(b"\r\n\r\n")) < 0:
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise GatewayClosed
        buffer += chunk
    lines = buffer[:end].decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, closes = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection":
            closes = value.strip().lower() == "close"
    body_end = end + 4 + length
    while len(buffer) < body_end:
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise GatewayClosed
        buffer += chunk
    return status, closes, buffer[body_end:]


def load(port: int, path: str, clients: int, total: int, keep_alive: bool, *, mcp: bool = False) -> LoadOutcome:
    """``total`` GETs of ``path`` from ``clients`` threads that start together (so that ``clients`` connections
    arrive at once), each keeping its connection for the next request, or opening a new one for each. Raw sockets:
    far less work per request than the gateway's, so that the load generator is not what limits the rate. With
    ``mcp``, each request is instead ``get_memory``'s ``tools/call`` POSTed to ``path``."""
    close = "" if keep_alive else "Connection: close\r\n"
    if mcp:
        body = json.dumps(MCP_CALL).encode()
        headers = "".join(f"{name}: {value}\r\n" for name, value in MCP_HEADERS.items())
        request = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: bench-gateway\r\n{headers}"
            f"Content-Length: {len(body)}\r\n{close}\r\n"
        ).encode() + body
    else:
        request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: bench-gateway\r\nAccept: */*\r\n{close}\r\n"
        ).encode()
    return load_requests(port, [request], clients, total, keep_alive=keep_alive)


def load_requests(
    port: int, requests: Sequence[bytes], clients: int, total: int, *, keep_alive: bool = True
) -> LoadOutcome:
    """``total`` requests (raw HTTP/1.1 bytes, ``requests`` in turn) from ``clients`` threads started together, as
    ``load`` sends them."""
    tickets = itertools.count()  # next() on it is atomic under the GIL
    start = threading.Barrier(clients + 1)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    lock = threading.Lock()

    def client(taken: list[float]) -> None:
        sock: socket.socket | None = None
        pending = b""
        start.wait()
        while (ticket := next(tickets)) < total:
            began = time.perf_counter()
            try:
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT_S)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    pending = b""
                status, closes, pending = _exchange(sock, requests[ticket % len(requests)], pending)
            except (OSError, ValueError, IndexError) as error:  # a reset, a refusal, a close, a timeout, garbage
                with lock:
                    errors[ERROR_KINDS.get(type(error), type(error).__name__)] += 1
                if sock is not None:
                    sock.close()
                sock = None
                continue
            taken.append((time.perf_counter() - began) * 1e6)
            with lock:
                statuses[str(status)] += 1
            if closes or not keep_alive:
                sock.close()
                sock = None
        if sock is not None:
            sock.close()

    threads = [threading.Thread(target=client, args=(taken,), daemon=True) for taken in latencies]
    for thread in threads:
        thread.start()
    cpu_before = time.process_time()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return LoadOutcome(
        elapsed_s=time.perf_counter() - began,
        cpu_s=time.process_time() - cpu_before,
        latencies_us=[round(value, 1) for taken in latencies for value in taken],
        statuses=dict(statuses),
        errors=dict(errors),
    )


def run_load(port: int, phase: Phase, *, mcp: bool = False) -> LoadOutcome:
    """The load generator as a child process, so that its CPU time is neither the gateway's nor ours."""
    command = (
        [
            sys.executable,
            "-m",
            "bench.gateway",
            "client",
            f"--port={port}",
            f"--path={MCP_PATH if mcp else PATH}",
            f"--clients={phase.clients}",
            f"--requests={phase.requests}",
        ]
        + ([] if phase.keep_alive else ["--close"])
        + (["--mcp"] if mcp else [])
    )
    done = subprocess.run(
        command, cwd=REPO, env={**os.environ, "PYTHONPATH": PYTHONPATH}, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the load generator failed ({done.returncode}):\n{done.stderr[-2000:]}")
    outcome: LoadOutcome = json.loads(done.stdout.strip().splitlines()[-1])
    return outcome


# -- the benchmark ----------------------------------------------------------------------------------------------------


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("nan")


@dataclass
class PhaseResult:
    label: str
    clients: int
    keep_alive: bool
    access_log: bool
    requests: int  # answered, over all rounds
    statuses: dict[str, int]
    errors: dict[str, int]  # connection errors by kind; resets are "reset"
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    gateway_us: float  # CPU per request of the gateway process
    worker_us: float  # CPU per request of the function's worker processes
    handler_us: float  # the part of worker_us inside the handler, as the workers report it
    ratio: float  # gateway / worker
    ratio_to_handler: float  # (gateway + the workers' own part: reading the event, writing the answer) / handler
    redis_us: float
    client_us: float
    round_ratios: list[float]  # gateway / worker, round by round
    workers: int  # the function's worker processes at the end


@dataclass
class McpBeside:
    """``get_memory`` over ``POST /mcp`` beside ``GET /sessions/{id}/memory``, warm, one client: latency in ms."""

    calls: int  # of each, over all rounds
    rest_p50_ms: float
    rest_p95_ms: float
    rest_p99_ms: float
    mcp_p50_ms: float
    mcp_p95_ms: float
    mcp_p99_ms: float
    round_p50_ms: list[tuple[float, float]]  # (REST, MCP) round by round
    errors: dict[str, int]  # connection errors and non-200 answers, of both


@dataclass
class GatewayResult:
    settings: GatewaySettings
    phases: list[PhaseResult]
    response_bytes: int
    messages_returned: int
    access_log_lines: int  # lines of the gateway's log naming the path: one per request with the access log on
    requests_logged: int  # GETs sent with the access log on
    listen_backlog: int
    somaxconn: int | None
    mcp: McpBeside | None = None


def _http(
    port: int, method: str, path: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT_S)
    try:
        payload = None if body is None else json.dumps(body).encode()
        sent = headers or ({} if payload is None else {"content-type": "application/json"})
        connection.request(method, path, body=payload, headers=sent)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def seed(port: int) -> tuple[int, int]:
    """The session: more messages than the window, and a context, POSTed through the gateway; then one GET checked.
    Returns (messages returned, response bytes)."""
    payload = {
        "messages": [
            {"role": "Human" if i % 2 == 0 else "AI", "content": f"message {i}: " + "lorem ipsum dolor sit amet " * 4}
            for i in range(SEED_MESSAGES)
        ],
        "context": "The user likes electronic music and asked about DJs from Colombia.",
    }
    status, body = _http(port, "POST", PATH, payload)
    if status != 200:
        raise RuntimeError(f"seeding failed: {status} {body[:500]!r}")
    status, body = _http(port, "GET", PATH)
    memory = json.loads(body)
    if status != 200 or len(memory["messages"]) != WINDOW or memory["context"] is None:
        raise RuntimeError(f"unexpected GET response: {status} {body[:500]!r}")
    return len(memory["messages"]), len(body)


def mcp_beside_rest(port: int, settings: GatewaySettings, progress: Callable[[str], None]) -> McpBeside:
    """``get_memory`` over MCP and GET over REST, the same session through the same gateway, interleaved rounds."""
    status, body = _http(port, "POST", MCP_PATH, MCP_CALL, headers=MCP_HEADERS)
    answer = json.loads(body) if status == 200 else {}
    _, rest_body = _http(port, "GET", PATH)
    if answer.get("result", {}).get("structuredContent") != json.loads(rest_body):
        raise RuntimeError(f"get_memory over MCP is not GET's JSON: {status} {body[:500]!r}")
    kinds = (False, True)  # REST, then MCP, in each round
    for mcp in kinds:
        run_load(port, Phase(1, True, settings.mcp_warmup), mcp=mcp)
    latencies: dict[bool, list[float]] = {mcp: [] for mcp in kinds}
    rounds: list[tuple[float, float]] = []
    errors: Counter[str] = Counter()
    for round_no in range(1, settings.mcp_rounds + 1):
        p50 = []
        for mcp in kinds:
            outcome = run_load(port, Phase(1, True, settings.mcp_calls), mcp=mcp)
            latencies[mcp] += outcome["latencies_us"]
            p50.append(round(percentile(outcome["latencies_us"], 50) / 1000, 3))
            errors.update({f"{'mcp' if mcp else 'rest'} {kind}": n for kind, n in outcome["errors"].items()})
            errors.update({f"{'mcp' if mcp else 'rest'} {s}": n for s, n in outcome["statuses"].items() if s != "200"})
        rounds.append((p50[0], p50[1]))
        progress(f"gateway: MCP beside REST, round {round_no}/{settings.mcp_rounds}")

    def ms(mcp: bool, q: float) -> float:
        return percentile(latencies[mcp], q) / 1000

    return McpBeside(
        calls=len(latencies[True]),
        rest_p50_ms=ms(False, 50),
        rest_p95_ms=ms(False, 95),
        rest_p99_ms=ms(False, 99),
        mcp_p50_ms=ms(True, 50),
        mcp_p95_ms=ms(True, 95),
        mcp_p99_ms=ms(True, 99),
        round_p50_ms=rounds,
        errors=dict(errors),
    )


def _somaxconn() -> int | None:
    try:
        return int(Path("/proc/sys/net/core/somaxconn").read_text(encoding="ascii"))
    except (OSError, ValueError):
        return None


@dataclass
class _Tally:
    """One phase's sums over the rounds."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    gateway_s: float = 0.0
    worker_s: float = 0.0
    handler_s: float = 0.0
    redis_s: float = 0.0
    client_s: float = 0.0
    round_ratios: list[float] = field(default_factory=list)
    workers: int = 0

    def add(self, outcome: LoadOutcome, before: CpuSnapshot, after: CpuSnapshot) -> None:
        gateway_s = after.gateway - before.gateway
        worker_s = after.workers_since(before, FUNCTION)
        self.latencies += outcome["latencies_us"]
        self.statuses.update(outcome["statuses"])
        self.errors.update(outcome["errors"])
        self.elapsed_s += outcome["elapsed_s"]
        self.client_s += outcome["cpu_s"]
        self.gateway_s += gateway_s
        self.worker_s += worker_s
        self.handler_s += after.handlers.get(FUNCTION, 0.0) - before.handlers.get(FUNCTION, 0.0)
        self.redis_s += after.redis - before.redis
        self.round_ratios.append(round(_ratio(gateway_s, worker_s), 3))
        self.workers = sum(1 for name, _ in after.workers.values() if name == FUNCTION)

    def result(self, phase: Phase) -> PhaseResult:
        answered = len(self.latencies)

        def per_request_us(seconds: float) -> float:
            return _ratio(seconds, answered) * 1e6

        return PhaseResult(
            label=phase.label,
            clients=phase.clients,
            keep_alive=phase.keep_alive,
            access_log=phase.access_log,
            requests=answered,
            statuses=dict(self.statuses),
            errors=dict(self.errors),
            requests_per_s=_ratio(answered, self.elapsed_s),
            p50_ms=percentile(self.latencies, 50) / 1000,
            p95_ms=percentile(self.latencies, 95) / 1000,
            gateway_us=per_request_us(self.gateway_s),
            worker_us=per_request_us(self.worker_s),
            handler_us=per_request_us(self.handler_s),
            ratio=_ratio(self.gateway_s, self.worker_s),
            ratio_to_handler=_ratio(self.gateway_s + self.worker_s - self.handler_s, self.handler_s),
            redis_us=per_request_us(self.redis_s),
            client_us=per_request_us(self.client_s),
            round_ratios=self.round_ratios,
            workers=self.workers,
        )


def benchmark(settings: GatewaySettings, progress: Callable[[str], None]) -> GatewayResult:
    from devserver.embedded_redis import EmbeddedRedis
    from devserver.server import LocalGateway

    tallies = [_Tally() for _ in settings.phases]
    with EmbeddedRedis() as redis_server, tempfile.TemporaryDirectory(prefix="bench-gateway-") as work:
        if redis_server.pid is None:
            raise RuntimeError("the embedded Redis is not running")
        log_path = Path(work) / "gateway.log"
        gateway = GatewayProcess(redis_server.url, log_path)
        try:
            messages, response_bytes = seed(gateway.port)
            warmup = run_load(gateway.port, Phase(16, True, settings.warmup_requests))
            if warmup["errors"]:
                raise RuntimeError(f"connection errors while warming up: {warmup['errors']}")
            progress(f"gateway: warm ({settings.warmup_requests} requests)")
            for round_no in range(1, settings.rounds + 1):
                for phase, tally in zip(settings.phases, tallies, strict=True):
                    gateway.command(f"access-log {'on' if phase.access_log else 'off'}")
                    before = CpuSnapshot.take(gateway, redis_server.pid)
                    outcome = run_load(gateway.port, phase)
                    tally.add(outcome, before, CpuSnapshot.take(gateway, redis_server.pid))
                progress(f"gateway: round {round_no}/{settings.rounds}")
            beside = mcp_beside_rest(gateway.port, settings, progress) if settings.mcp_rounds else None
        finally:
            gateway.stop()
        logged = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    logged_phases = sum(phase.requests for phase in settings.phases if phase.access_log)
    return GatewayResult(
        settings=settings,
        phases=[tally.result(phase) for phase, tally in zip(settings.phases, tallies, strict=True)],
        response_bytes=response_bytes,
        messages_returned=messages,
        access_log_lines=sum(1 for line in logged if f'"GET {PATH} HTTP/1.1"' in line),
        requests_logged=1 + settings.warmup_requests + settings.rounds * logged_phases,  # the GETs
        listen_backlog=LocalGateway.request_queue_size,
        somaxconn=_somaxconn(),
        mcp=beside,
    )


# -- report -----------------------------------------------------------------------------------------------------------


def _errors(phase: PhaseResult) -> str:
    errors = ", ".join(f"{kind} {count}" for kind, count in sorted(phase.errors.items())) or "0"
    other = sum(count for status, count in phase.statuses.items() if status != "200")
    return errors + (f" (+{other} non-200)" if other else "")


def print_result(result: GatewayResult, number: int) -> None:
    settings = result.settings
    print(
        f"\n{number}. Local gateway, make run's stack (the gateway process + {FUNCTION}'s worker processes): GET"
        f" {PATH}, {settings.rounds} round{'s' if settings.rounds > 1 else ''} of the phases below after"
        f" {settings.warmup_requests} warm-up requests"
    )
    print(
        f"   the session: {SEED_MESSAGES} messages + a context, {result.messages_returned} returned"
        f" ({result.response_bytes} bytes); MOTORHEAD_AUTH=none; access log: {result.access_log_lines} lines of GET for"
        f" the {result.requests_logged} sent with it on"
    )
    print(
        "   CPU per request (user+sys, /proc) of the gateway process, of the function's workers ('worker') and, of"
        " that, inside the handler ('handler', as the workers report it); the load generator is a separate process"
    )
    print(
        "   gw/worker: gateway / worker; (gw+rt)/handler: the gateway and the workers' own part (reading the event,"
        f" writing the answer) / the handler. Listen backlog {result.listen_backlog} (somaxconn {result.somaxconn})"
    )
    header = f"   {'':40} {'requests':>8} {'req/s':>6} {'p50 ms':>7} {'p95 ms':>7} {'gateway':>8} {'worker':>8}"
    print(header + f" {'handler':>8} {'gw/worker':>9} {'(gw+rt)/handler':>15} {'redis':>6} {'client':>6}  errors")
    for phase in result.phases:
        print(
            f"   {phase.label:40} {phase.requests:8d} {phase.requests_per_s:6.0f} {phase.p50_ms:7.2f}"
            f" {phase.p95_ms:7.2f} {phase.gateway_us:6.0f}us {phase.worker_us:6.0f}us {phase.handler_us:6.0f}us"
            f" {phase.ratio:8.2f}x {phase.ratio_to_handler:14.2f}x {phase.redis_us:4.0f}us {phase.client_us:4.0f}us"
            f"  {_errors(phase)}"
        )
    print(
        "   gw/worker round by round: "
        + "; ".join(f"{p.label}: {' '.join(f'{r:.2f}' for r in p.round_ratios)}" for p in result.phases)
    )
    if result.mcp is not None:
        print(
            f"   MCP beside REST, warm, one client, keep-alive: {settings.mcp_rounds} interleaved rounds of"
            f" {settings.mcp_calls} calls of each after {settings.mcp_warmup} of each ({result.mcp.calls} in all)"
        )
        print(f"   {'':40} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}")
        print(_beside_line(f"GET {PATH}", result.mcp.rest_p50_ms, result.mcp.rest_p95_ms, result.mcp.rest_p99_ms))
        print(_beside_line("get_memory, tools/call on POST /mcp", result.mcp.mcp_p50_ms, result.mcp.mcp_p95_ms,
                           result.mcp.mcp_p99_ms))  # fmt: skip
        rounds = " ".join(f"{rest:.2f}/{mcp:.2f}" for rest, mcp in result.mcp.round_p50_ms)
        errors = ", ".join(f"{kind} {n}" for kind, n in sorted(result.mcp.errors.items())) or "none"
        print(f"   p50 REST/MCP round by round: {rounds}; errors: {errors}")


def _beside_line(label: str, p50: float, p95: float, p99: float) -> str:
    return f"   {label:40} {p50:7.2f} {p95:7.2f} {p99:7.2f}"


def summary_lines(result: GatewayResult) -> list[str]:
    lines = [
        f"Local gateway (make run: gateway process + {FUNCTION} workers; GET of {SEED_MESSAGES} messages + context;"
        " CPU per request, user+sys; load from a separate process):"
    ]
    lines += [
        f"  {phase.label:40} gateway {phase.gateway_us:4.0f} us, worker {phase.worker_us:4.0f} us (handler"
        f" {phase.handler_us:4.0f}): {phase.ratio:.2f}x worker, {phase.ratio_to_handler:.2f}x handler;"
        f" {phase.requests_per_s:4.0f} req/s, p50 {phase.p50_ms:.1f} ms, p95 {phase.p95_ms:.1f} ms; connection"
        f" errors {_errors(phase)}"
        for phase in result.phases
    ]
    if result.mcp is not None:
        beside = result.mcp
        lines.append(
            f"  MCP beside REST, warm, one client ({beside.calls} calls of each): get_memory on POST /mcp p50"
            f" {beside.mcp_p50_ms:.2f} ms, p99 {beside.mcp_p99_ms:.2f} ms; GET p50 {beside.rest_p50_ms:.2f} ms, p99"
            f" {beside.rest_p99_ms:.2f} ms"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    modes = parser.add_subparsers(dest="mode")
    run = modes.add_parser("run", help="the benchmark (the default)")
    run.add_argument("--quick", action="store_true", help="fewer requests, one round")
    run.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    served = modes.add_parser("serve", help="internal: the gateway process")
    served.add_argument("--redis-url", required=True)
    served.add_argument("--ready-fd", type=int, required=True)
    loader = modes.add_parser("client", help="internal: the load generator")
    loader.add_argument("--port", type=int, required=True)
    loader.add_argument("--path", required=True)
    loader.add_argument("--clients", type=int, required=True)
    loader.add_argument("--requests", type=int, required=True)
    loader.add_argument("--close", action="store_true", help="a new connection per request")
    loader.add_argument("--mcp", action="store_true", help="get_memory's tools/call POSTed to --path instead")
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] not in {"run", "serve", "client"}:
        arguments.insert(0, "run")
    args = parser.parse_args(arguments)

    if args.mode == "serve":
        return serve(args.redis_url, args.ready_fd)
    if args.mode == "client":
        outcome = load(args.port, args.path, args.clients, args.requests, keep_alive=not args.close, mcp=args.mcp)
        print(json.dumps(outcome))
        return 0
    return report(
        lambda progress: benchmark(QUICK if args.quick else DEFAULT, progress),
        print_result,
        summary_lines,
        json_path=args.json,
    )


if __name__ == "__main__":
    sys.exit(main())
