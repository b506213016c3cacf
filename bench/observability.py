"""Observability benchmark: what the shipped logging, metrics and tracing cost on the warm path, as a ratio against
today's handler without them (figures and ratios measured side by side in one run, never pass/fail).

The real ``GetMemoryFunction`` and ``PostMemoryFunction``, loaded as Lambda's init phase loads them
(``load_function``), invoked through their Lambda handlers with the sample API Gateway events (GET: the session of 14
messages + a context that ``bench/run.py`` seeds, window 12; POST: the sample's two messages, to a session of its
own), ``MOTORHEAD_AUTH=none``, against an ``EmbeddedRedis``. Per route, five variants (ten series) run in one process,
interleaved call by call: one call of each series in turn, in a new order each turn, so that a burst of load elsewhere
on a shared machine falls on every series alike:

- (3) today's handler, the baseline: the same function module loaded a second time, its app without
  ``RequestMetricsMiddleware`` (removed from ``app.user_middleware`` before its first request), invoked through the
  Mangum handler ``lambda_handler`` built (``handler.__wrapped__``: no ``lambda_entry``), the Logger at WARNING;
- (1) the handler as shipped: ``lambda_entry`` (``inject_lambda_context`` with the API Gateway request id as
  correlation id, ``log_metrics``: one EMF line per invocation) and the ``Requests``/``Latency`` middleware; tracing
  off, as on every HTTP function but retrieval (``subsegment`` is a no-op);
- (2) the same with tracing on: ``enable_tracing()`` as the traced functions call it, so each Redis call is a
  ``## redis`` subsegment, serialized and sent over UDP to ``AWS_XRAY_DAEMON_ADDRESS``, a local socket drained by a
  thread here (counted: datagrams and bytes per request); every request sampled (``Sampled=1``). Tracing is switched
  on and off between calls by setting ``observability._tracer`` (the Tracer ``enable_tracing`` made, or None);
- (2') tracing on, the request not sampled (``Sampled=0``): what most requests pay under X-Ray's default sampling
  (the first request each second, then 5 %);
- (1a) where (1)'s cost goes: the copy of (3) inside ``lambda_entry`` (the Lambda context and correlation id in the
  Logger, ``log_metrics`` with nothing to flush), without the request metrics and their EMF line.

The X-Ray SDK and powertools' ``Tracer`` only trace inside Lambda: the process runs with ``LAMBDA_TASK_ROOT`` and
``AWS_LAMBDA_FUNCTION_NAME`` set (so the SDK uses its Lambda context: a facade segment per trace header, each closed
subsegment streamed at once), and before each invocation ``_X_AMZN_TRACE_ID`` gets a new trace header, as Lambda's
runtime sets it (in every variant, outside the timed region). The X-Ray SDK also drops its touch file,
``/tmp/.aws-xray/initialized``. This is why the measurement runs in a child process (``measure``): the Lambda
environment, the SDK's global recorder and its patching of ``http.client``/``requests``/``botocore`` stay there.

Where the output goes: the child's stdout is a file (``PYTHONUNBUFFERED=1``, so each write is a ``write(2)``, as in
Lambda, whose runtime makes stdout unbuffered), so every EMF and log line is really formatted and written, but the
timing does not depend on a terminal (a pty's reader, scrollback, an ssh link) or skip the copy (``/dev/null``). The
bytes each variant wrote are read back from the file afterwards, from the offsets around each of its calls, and split
into EMF lines (``_aws`` key) and log lines.

Timed per call: wall time (``perf_counter_ns``, the Redis round trip included) and the process's CPU time
(``process_time_ns``, every thread: FastAPI runs the sync routes and dependencies in anyio's worker threads, so one
thread's CPU time would miss most of the handler; the draining thread is included, as the X-Ray daemon's CPU is in
Lambda, which runs it in the function's sandbox; Redis, another process, is not).
The machine may be shared: compare the ratios. Run alone with
``PYTHONPATH=layers/shared/python:. .venv/bin/python -m bench.observability [--quick] [--rounds N]``, or as part of
``bench/run.py`` (``make bench ARGS="--only observability"``).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import logging
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mangum import Mangum

from bench.events import PYTHONPATH, REPO, SEED_MESSAGES, WINDOW, load_event, seed_event
from bench.harness import percentile, report
from devserver.embedded_redis import EmbeddedRedis
from devserver.lambda_runtime import FakeLambdaContext, LambdaHandler, load_function, load_module
from devserver.template import load_routes
from motorhead import observability
from motorhead.entrypoints.http.app import RequestMetricsMiddleware
from motorhead.observability import lambda_entry, logger, metrics

FUNCTIONS = {"GET": "GetMemoryFunction", "POST": "PostMemoryFunction"}
POST_SESSION = "bench-observability-post"
TRACE_ENV = "_X_AMZN_TRACE_ID"
CHILD_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class Variant:
    """How one copy of a function runs: its handler, its Logger's level, tracing on or off."""

    key: str
    tag: str
    label: str
    observed: bool = True  # the handler as shipped (lambda_entry + request metrics); else the copy without metrics
    entry: bool = True  # wrapped by lambda_entry
    traced: bool = False
    sampled: bool = True  # the trace header's sampling decision (only matters when traced)


VARIANTS = (
    Variant("today", "(3)", "today's handler", observed=False, entry=False),
    Variant("shipped", "(1)", "observability, tracing off"),
    Variant("traced", "(2)", "+ tracing, sampled", traced=True),
    Variant("unsampled", "(2')", "+ tracing, not sampled", traced=True, sampled=False),
    Variant("entry", "(1a)", "lambda_entry only, no request metrics", observed=False),
)
BASELINE = "today"
BY_KEY = {variant.key: variant for variant in VARIANTS}


@dataclass(frozen=True)
class ObservabilitySettings:
    """How much to measure."""

    rounds: int
    calls: int  # per series (route x variant) per round, one call of each series in turn
    warmup_calls: int  # per series, before the rounds
    census_calls: int  # per traced series, to count the datagrams sent


DEFAULT = ObservabilitySettings(rounds=20, calls=100, warmup_calls=300, census_calls=200)
QUICK = ObservabilitySettings(rounds=5, calls=40, warmup_calls=100, census_calls=50)


@dataclass
class Series:
    """One route under one variant."""

    route: str
    variant: str
    tag: str
    label: str
    wall_p50_us: float
    wall_p95_us: float
    wall_mean_us: float
    cpu_p50_us: float
    cpu_p95_us: float
    ratio_wall_p50: float  # to (3), today's handler, same route
    ratio_wall_p95: float
    ratio_cpu_p50: float
    extra_wall_p50_us: float  # p50 minus (3)'s
    extra_cpu_p50_us: float
    round_ratio_wall_p50_median: float
    round_ratio_wall_p50_min: float
    round_ratio_wall_p50_max: float
    round_ratio_cpu_p50_median: float
    round_ratio_cpu_p50_min: float
    round_ratio_cpu_p50_max: float
    emf_lines: float  # per request
    emf_bytes: float
    log_lines: float  # per request, every other line
    log_bytes: float
    datagrams: float  # per request, sent to the X-Ray daemon address
    datagram_bytes: float
    non_200: int  # while timed
    round_p50_us: list[float] = field(repr=False)
    round_cpu_p50_us: list[float] = field(repr=False)


@dataclass
class ObservabilityResult:
    settings: ObservabilitySettings
    series: list[Series]
    stdout_target: str
    messages_returned: int  # by the GET
    response_bytes: int
    emf_example: str
    datagram_example: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ObservabilityResult:
        return cls(
            **{
                **data,
                "settings": ObservabilitySettings(**data["settings"]),
                "series": [Series(**row) for row in data["series"]],
            }
        )

    def find(self, route: str, variant: str) -> Series:
        return next(s for s in self.series if s.route == route and s.variant == variant)


# -- the parent: starts Redis and the measuring child ----------------------------------------------------------------


def child_env(redis_url: str) -> dict[str, str]:
    """What the template and Lambda give the function (the X-Ray daemon address is the child's own socket)."""
    dropped = ("MOTORHEAD_", "POWERTOOLS_", "AWS_XRAY_", "_X_AMZN_", "AWS_LAMBDA_", "LAMBDA_")
    env = {name: value for name, value in os.environ.items() if not name.startswith(dropped)}
    return env | {
        "PYTHONPATH": PYTHONPATH,
        "PYTHONUNBUFFERED": "1",  # Lambda's runtime makes stdout unbuffered: a write(2) per write
        "REDIS_URL": redis_url,
        "MOTORHEAD_MAX_WINDOW_SIZE": str(WINDOW),
        "MOTORHEAD_AUTH": "none",  # the handler's own cost; bench/auth.py measures what auth adds
        "POWERTOOLS_SERVICE_NAME": "motorhead",  # template.yaml's Globals
        "POWERTOOLS_METRICS_NAMESPACE": "Motorhead",
        "POWERTOOLS_LOG_LEVEL": "INFO",  # the template's default LogLevel
        "LAMBDA_TASK_ROOT": str(REPO / "functions" / "get_memory"),  # inside Lambda, for X-Ray and the Tracer
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTIONS["GET"],
    }


def benchmark(settings: ObservabilitySettings, progress: Callable[[str], None]) -> ObservabilityResult:
    with EmbeddedRedis() as server, tempfile.TemporaryDirectory(prefix="bench-observability-") as folder:
        stdout_path = Path(folder) / "stdout.log"
        result_path = Path(folder) / "result.json"
        command = [sys.executable, "-m", "bench.observability", "measure", f"--stdout-path={stdout_path}"]
        command += [f"--result={result_path}", f"--rounds={settings.rounds}"]
        command += [f"--calls={settings.calls}", f"--warmup-calls={settings.warmup_calls}"]
        command += [f"--census-calls={settings.census_calls}"]
        progress("observability: measuring in a child process")
        with stdout_path.open("wb") as stdout:
            done = subprocess.run(
                command, cwd=REPO, env=child_env(server.url), stdout=stdout, check=False, timeout=CHILD_TIMEOUT_S
            )
        if done.returncode != 0 or not result_path.exists():
            tail = stdout_path.read_text(encoding="utf-8", errors="replace")[-2000:]
            raise RuntimeError(f"the observability child failed ({done.returncode}); its stdout ends with:\n{tail}")
        return ObservabilityResult.from_json(json.loads(result_path.read_text(encoding="utf-8")))


# -- the child: the five variants of each route, interleaved call by call -------------------------------------------


class Daemon:
    """A stand-in for the X-Ray daemon: a UDP socket on localhost, drained by a thread that counts what arrives."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.socket.bind(("127.0.0.1", 0))
        self.address = "{}:{}".format(*self.socket.getsockname())
        self.datagrams = 0
        self.bytes = 0
        self.example = b""
        self._thread = threading.Thread(target=self._drain, name="xray-daemon", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            try:
                data = self.socket.recv(65536)
            except OSError:  # closed
                return
            if not self.example:
                self.example = data
            self.datagrams += 1
            self.bytes += len(data)

    def settled(self, quiet_s: float = 0.05, limit_s: float = 5.0) -> tuple[int, int]:
        """The counts once nothing has arrived for ``quiet_s`` (everything sent so far has been read)."""
        deadline = time.monotonic() + limit_s
        seen = -1
        while self.datagrams != seen and time.monotonic() < deadline:
            seen = self.datagrams
            time.sleep(quiet_s)
        return self.datagrams, self.bytes

    def close(self) -> None:
        self.socket.close()


def trace_header(sampled: bool) -> str:
    """A new trace header, as Lambda's runtime sets ``_X_AMZN_TRACE_ID`` before each invocation."""
    return f"Root=1-{int(time.time()):08x}-{os.urandom(12).hex()};Parent={os.urandom(8).hex()};Sampled={int(sampled)}"


def post_event() -> dict[str, Any]:
    """The sample POST (two messages), to a session of its own: the GET's session stays as seeded."""
    event = copy.deepcopy(load_event("post_memory-ok"))
    path = f"/sessions/{POST_SESSION}/memory"
    event["pathParameters"] = {"session_id": POST_SESSION}
    event["rawPath"] = path
    event["requestContext"]["http"]["path"] = path
    return event


@dataclass
class Handlers:
    """One route's handlers: the function as shipped, and a second copy of its module, without request metrics,
    called without ``lambda_entry`` (today's handler, the baseline) or within it."""

    shipped: LambdaHandler
    today: LambdaHandler  # the copy's Mangum handler
    entry: LambdaHandler  # the copy's Mangum handler in lambda_entry


def load_route(function_id: str) -> Handlers:
    """The function as Lambda loads it, and a second copy of its module whose app has no request metrics, invoked
    through the Mangum handler inside ``lambda_entry``."""
    route = next(r for r in load_routes() if r.function_id == function_id)
    _, shipped = load_function(route)
    module_name = route.handler.rpartition(".")[0]
    copy_ = load_module(route.code_uri, module_name, f"fn_{function_id}_without_observability")
    app = copy_.app
    if app.middleware_stack is not None:
        raise RuntimeError(f"{function_id}: the copy's middleware stack is built already")
    kept = [m for m in app.user_middleware if m.cls is not RequestMetricsMiddleware]
    if len(kept) != len(app.user_middleware) - 1:
        raise RuntimeError(f"{function_id}: no single RequestMetricsMiddleware in {app.user_middleware}")
    app.user_middleware[:] = kept
    mangum = getattr(copy_.handler, "__wrapped__", None)  # lambda_entry wraps it with functools.wraps
    if not isinstance(mangum, Mangum) or mangum.app is not app:
        raise RuntimeError(f"{function_id}: the handler does not wrap the app's Mangum handler: {mangum!r}")
    return Handlers(shipped=shipped, today=mangum, entry=lambda_entry(mangum, http=True))


@dataclass
class Timed:
    wall_us: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)
    round_p50_us: list[float] = field(default_factory=list)
    round_cpu_p50_us: list[float] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)  # stdout offsets around each timed call
    non_200: int = 0

    def add_round(self, one: Timed) -> None:
        self.wall_us += one.wall_us
        self.cpu_us += one.cpu_us
        self.round_p50_us.append(percentile(one.wall_us, 50))
        self.round_cpu_p50_us.append(percentile(one.cpu_us, 50))
        self.spans += one.spans
        self.non_200 += one.non_200


def datagrams_of(
    key: tuple[str, str], calls: int, timed_call: Callable[[tuple[str, str], Timed], None], daemon: Daemon
) -> tuple[float, float]:
    """Datagrams and bytes per request that ``calls`` calls of one series send to the daemon address."""
    before = daemon.settled()
    for _ in range(calls):
        timed_call(key, Timed())
    after = daemon.settled()
    return (after[0] - before[0]) / calls, (after[1] - before[1]) / calls


def stdout_offset() -> int:
    sys.stdout.flush()
    return os.lseek(sys.stdout.fileno(), 0, os.SEEK_CUR)


def measure(args: argparse.Namespace) -> int:
    settings = ObservabilitySettings(
        rounds=args.rounds, calls=args.calls, warmup_calls=args.warmup_calls, census_calls=args.census_calls
    )
    if "aws_xray_sdk.core" in sys.modules:
        raise RuntimeError("the X-Ray SDK is loaded before its daemon address is set")
    daemon = Daemon()
    os.environ["AWS_XRAY_DAEMON_ADDRESS"] = daemon.address  # read once, when enable_tracing loads the SDK
    loop = asyncio.new_event_loop()  # Mangum calls asyncio.get_event_loop(): one loop for the run
    asyncio.set_event_loop(loop)
    try:
        result = run_variants(settings, daemon, Path(args.stdout_path))
    finally:
        asyncio.set_event_loop(None)
        loop.close()
        daemon.close()
    Path(args.result).write_text(json.dumps(asdict(result), indent=2) + "\n", encoding="utf-8")
    return 0


def run_variants(settings: ObservabilitySettings, daemon: Daemon, stdout_path: Path) -> ObservabilityResult:
    def progress(message: str) -> None:
        print(f"   .. {message}", file=sys.stderr, flush=True)

    handlers = {route: load_route(function_id) for route, function_id in FUNCTIONS.items()}
    contexts = {route: FakeLambdaContext(function_name=function_id) for route, function_id in FUNCTIONS.items()}
    events = {"GET": load_event("get_memory-ok"), "POST": post_event()}
    os.environ[TRACE_ENV] = trace_header(True)
    seeded = handlers["POST"].shipped(seed_event(str(events["GET"]["pathParameters"]["session_id"])), contexts["POST"])
    if seeded["statusCode"] != 200:
        raise RuntimeError(f"seeding failed: {seeded}")

    if not observability.enable_tracing():
        raise RuntimeError("enable_tracing() did not turn tracing on")
    tracer = observability._tracer
    if tracer is None or tracer._config.get("disabled"):
        raise RuntimeError("powertools' Tracer disabled itself: the process does not look like Lambda to it")
    shipped_level = logger.log_level

    def switch(variant: Variant) -> None:
        """The process as ``variant`` runs: tracing on or off (what ``enable_tracing`` left, or nothing), the Logger
        at its level."""
        observability._tracer = tracer if variant.traced else None
        logger.setLevel(shipped_level if variant.entry else logging.WARNING)

    keys = [(route, variant.key) for route in FUNCTIONS for variant in VARIANTS]

    def invoker(route: str, key: str) -> Callable[[], int]:
        variant, copies = BY_KEY[key], handlers[route]
        handler = copies.shipped if variant.observed else copies.entry if variant.entry else copies.today
        event, context = events[route], contexts[route]

        def call() -> int:
            return int(handler(event, context)["statusCode"])

        return call

    invokers = {key: invoker(*key) for key in keys}
    answer = handlers["GET"].shipped(events["GET"], contexts["GET"])
    memory = json.loads(answer["body"])
    if answer["statusCode"] != 200 or len(memory["messages"]) != WINDOW or memory["context"] is None:
        raise RuntimeError(f"unexpected GET response: {answer}")

    wall_clock, cpu_clock, environ = time.perf_counter_ns, time.process_time_ns, os.environ

    def timed_call(key: tuple[str, str], into: Timed) -> None:
        """One invocation of one series, timed; what it wrote to stdout is found later from the offsets."""
        variant = BY_KEY[key[1]]
        switch(variant)
        environ[TRACE_ENV] = trace_header(variant.sampled)  # the runtime's job, before the handler runs
        start_offset = stdout_offset()
        wall_start, cpu_start = wall_clock(), cpu_clock()
        status = invokers[key]()
        cpu_end, wall_end = cpu_clock(), wall_clock()
        into.spans.append((start_offset, stdout_offset()))
        into.wall_us.append((wall_end - wall_start) / 1000)
        into.cpu_us.append((cpu_end - cpu_start) / 1000)
        into.non_200 += status != 200
        if not variant.observed and metrics.metric_set:
            raise RuntimeError(f"{variant.label} ({key[0]}) left metrics behind: {metrics.metric_set}")

    def rotations(count: int, into: dict[tuple[str, str], Timed]) -> None:
        """``count`` calls of every series, one call of each in turn, in a new order each turn."""
        for _ in range(count):
            for key in random.sample(keys, len(keys)):
                timed_call(key, into[key])

    try:
        warmup = {key: Timed() for key in keys}
        rotations(settings.warmup_calls, warmup)
        if any(one.non_200 for one in warmup.values()):
            raise RuntimeError(f"warm-up calls did not answer 200: { {k: t.non_200 for k, t in warmup.items()} }")
        progress(f"observability: warm-up done ({settings.warmup_calls} calls per series)")
        timed = {key: Timed() for key in keys}
        for round_no in range(1, settings.rounds + 1):
            this_round = {key: Timed() for key in keys}
            rotations(settings.calls, this_round)
            for key, one in this_round.items():
                timed[key].add_round(one)
            if round_no % 5 == 0 or round_no == settings.rounds:
                progress(f"observability: round {round_no}/{settings.rounds}")
        sent = {key: datagrams_of(key, settings.census_calls, timed_call, daemon) for key in keys}
    finally:
        observability._tracer = tracer
        logger.setLevel(shipped_level)

    written = stdout_path.read_bytes()
    emf_example = ""
    rows: list[Series] = []
    for route, variant in keys:
        one = timed[(route, variant)]
        base = timed[(route, BASELINE)]
        n = len(one.wall_us)
        lines = StdoutLines()
        for start, end in one.spans:
            lines.add(written[start:end])
        emf_example = emf_example or lines.emf_example
        wall_p50, base_wall_p50 = percentile(one.wall_us, 50), percentile(base.wall_us, 50)
        cpu_p50, base_cpu_p50 = percentile(one.cpu_us, 50), percentile(base.cpu_us, 50)
        per_round = [x / b for x, b in zip(one.round_p50_us, base.round_p50_us, strict=True)]
        per_round_cpu = [x / b for x, b in zip(one.round_cpu_p50_us, base.round_cpu_p50_us, strict=True)]
        rows.append(
            Series(
                route=route,
                variant=variant,
                tag=BY_KEY[variant].tag,
                label=BY_KEY[variant].label,
                wall_p50_us=wall_p50,
                wall_p95_us=percentile(one.wall_us, 95),
                wall_mean_us=statistics.fmean(one.wall_us),
                cpu_p50_us=cpu_p50,
                cpu_p95_us=percentile(one.cpu_us, 95),
                ratio_wall_p50=wall_p50 / base_wall_p50,
                ratio_wall_p95=percentile(one.wall_us, 95) / percentile(base.wall_us, 95),
                ratio_cpu_p50=cpu_p50 / base_cpu_p50,
                extra_wall_p50_us=wall_p50 - base_wall_p50,
                extra_cpu_p50_us=cpu_p50 - base_cpu_p50,
                round_ratio_wall_p50_median=statistics.median(per_round),
                round_ratio_wall_p50_min=min(per_round),
                round_ratio_wall_p50_max=max(per_round),
                round_ratio_cpu_p50_median=statistics.median(per_round_cpu),
                round_ratio_cpu_p50_min=min(per_round_cpu),
                round_ratio_cpu_p50_max=max(per_round_cpu),
                emf_lines=lines.emf_lines / n,
                emf_bytes=lines.emf_bytes / n,
                log_lines=lines.log_lines / n,
                log_bytes=lines.log_bytes / n,
                datagrams=sent[(route, variant)][0],
                datagram_bytes=sent[(route, variant)][1],
                non_200=one.non_200,
                round_p50_us=one.round_p50_us,
                round_cpu_p50_us=one.round_cpu_p50_us,
            )
        )
    return ObservabilityResult(
        settings=settings,
        series=rows,
        stdout_target=f"a file (PYTHONUNBUFFERED=1), {len(written)} bytes written in all",
        messages_returned=len(memory["messages"]),
        response_bytes=len(answer["body"]),
        emf_example=emf_example,
        datagram_example=daemon.example.decode("utf-8", errors="replace"),
    )


@dataclass
class StdoutLines:
    """Lines written to stdout, split into EMF lines (a JSON object with ``_aws``) and every other line."""

    emf_lines: int = 0
    emf_bytes: int = 0
    log_lines: int = 0
    log_bytes: int = 0
    emf_example: str = ""

    def add(self, chunk: bytes) -> None:
        for line in chunk.splitlines(keepends=True):
            try:
                is_emf = "_aws" in json.loads(line)
            except (ValueError, TypeError):
                is_emf = False
            if is_emf:
                self.emf_lines += 1
                self.emf_bytes += len(line)
                self.emf_example = self.emf_example or line.decode("utf-8").rstrip("\n")
            else:
                self.log_lines += 1
                self.log_bytes += len(line)


# -- report ---------------------------------------------------------------------------------------------------------


def _name(series: Series) -> str:
    return f"{series.route} {series.tag} {series.label}"


def _spread(median: float, low: float, high: float) -> str:
    return f"{median:.2f}x ({low:.2f}-{high:.2f})"


def print_result(result: ObservabilityResult, number: int) -> None:
    settings = result.settings
    total = settings.rounds * settings.calls
    print(
        f"\n{number}. Observability on the warm path: {', '.join(FUNCTIONS.values())} through their Lambda handlers,"
        f" {settings.rounds} rounds x {settings.calls} calls per series, interleaved call by call ({total} per series,"
        f" after {settings.warmup_calls} warm-up calls), one child process"
    )
    print(
        f"   GET: {SEED_MESSAGES} messages + a context, {result.messages_returned} returned ({result.response_bytes}"
        f" bytes); POST: the sample's 2 messages; MOTORHEAD_AUTH=none; stdout: {result.stdout_target}"
    )
    print("   (3) = the same app without RequestMetricsMiddleware, Mangum without lambda_entry, Logger at WARNING;")
    print("   wall includes the Redis round trip; CPU is the process's, all threads (the daemon's drain thread too)")
    header = f"   {'':46} {'wall p50':>8} {'p95':>6} {'x(3)':>6} {'+us':>5} {'CPU p50':>8} {'x(3)':>6} {'+us':>5}"
    print(header + f" {'EMF B/req':>9} {'log B/req':>9} {'UDP B/req':>9}")
    for s in result.series:
        print(
            f"   {_name(s):46} {s.wall_p50_us:8.0f} {s.wall_p95_us:6.0f} {s.ratio_wall_p50:5.2f}x"
            f" {s.extra_wall_p50_us:+5.0f} {s.cpu_p50_us:8.0f} {s.ratio_cpu_p50:5.2f}x {s.extra_cpu_p50_us:+5.0f}"
            f" {s.emf_bytes:9.0f} {s.log_bytes:9.0f} {s.datagram_bytes:9.0f}"
        )
    print(f"   x(3) at p50 round by round ({settings.calls} calls each): median (range), wall and CPU")
    for s in result.series:
        if s.variant != BASELINE:
            wall = _spread(s.round_ratio_wall_p50_median, s.round_ratio_wall_p50_min, s.round_ratio_wall_p50_max)
            cpu = _spread(s.round_ratio_cpu_p50_median, s.round_ratio_cpu_p50_min, s.round_ratio_cpu_p50_max)
            print(f"   {_name(s):46} wall {wall}, CPU {cpu}")
    print("   written per request: stdout lines (EMF, other) and datagrams to the X-Ray daemon address")
    for s in result.series:
        print(
            f"   {_name(s):46} EMF {s.emf_lines:g} ({s.emf_bytes:.0f} B), log"
            f" {s.log_lines:g} ({s.log_bytes:.0f} B), X-Ray {s.datagrams:g} ({s.datagram_bytes:.0f} B)"
        )
    print(f"   non-200 answers while timed: {sum(s.non_200 for s in result.series)}")
    print(f"   an EMF line: {result.emf_example}")
    print(f"   a datagram:  {result.datagram_example.replace(chr(10), ' | ')}")


def summary_lines(result: ObservabilityResult) -> list[str]:
    settings = result.settings
    lines = [
        f"Observability, warm path (Lambda handlers, {settings.rounds}x{settings.calls} calls per series, interleaved"
        " call by call; wall / CPU p50, ratio to today's handler: no lambda_entry, request metrics or INFO logging):"
    ]
    for route in FUNCTIONS:
        base = result.find(route, BASELINE)
        parts = [f"{route:4} (3) today {base.wall_p50_us:4.0f} / {base.cpu_p50_us:4.0f} us"]
        parts += [
            f"{s.tag} {s.ratio_wall_p50:.2f}x / {s.ratio_cpu_p50:.2f}x"
            for s in (result.find(route, variant.key) for variant in VARIANTS if variant.key != BASELINE)
        ]
        lines.append("  " + "; ".join(parts))
    for route in FUNCTIONS:
        shipped, traced = result.find(route, "shipped"), result.find(route, "traced")
        lines.append(
            f"  {route:4} per request: {shipped.emf_lines:g} EMF line ({shipped.emf_bytes:.0f} B),"
            f" {shipped.log_lines:g} log lines ({shipped.log_bytes:.0f} B); traced: {traced.datagrams:g} X-Ray"
            f" datagram(s) ({traced.datagram_bytes:.0f} B)"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    modes = parser.add_subparsers(dest="mode")
    run = modes.add_parser("run", help="the benchmark (the default)")
    run.add_argument("--quick", action="store_true", help="fewer rounds and calls")
    run.add_argument("--rounds", type=int, help="override the number of rounds")
    run.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    child = modes.add_parser("measure", help="internal: the measuring process (its stdout is the log file)")
    child.add_argument("--stdout-path", required=True)
    child.add_argument("--result", required=True)
    child.add_argument("--rounds", type=int, required=True)
    child.add_argument("--calls", type=int, required=True)
    child.add_argument("--warmup-calls", type=int, required=True)
    child.add_argument("--census-calls", type=int, required=True)
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] not in {"run", "measure"}:
        arguments.insert(0, "run")
    args = parser.parse_args(arguments)
    if args.mode == "measure":
        return measure(args)

    settings = QUICK if args.quick else DEFAULT
    if args.rounds:
        settings = ObservabilitySettings(args.rounds, settings.calls, settings.warmup_calls, settings.census_calls)

    def print_with_load(result: ObservabilityResult, number: int) -> None:
        print(f"load average {[round(x, 2) for x in os.getloadavg()]}, CPUs {os.cpu_count()}")
        print_result(result, number)

    return report(lambda progress: benchmark(settings, progress), print_with_load, summary_lines, json_path=args.json)


if __name__ == "__main__":
    sys.exit(main())
