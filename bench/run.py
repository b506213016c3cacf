"""Benchmarks, printed as figures and ratios measured side by side in one run (never pass/fail).

1. Cold init per function: in a fresh process each time, import the function's module (``load_function``, as
   Lambda's init phase does) and invoke it once with ``events/<dir>-ok.json``; compared with a fresh process that
   only imports ``fastapi``, ``mangum`` and ``redis`` (the floor). Timed inside the child (``bench/cold_child.py``);
   the modes run interleaved, in a shuffled order each round. 1b. The indexer's and the retrieval function's cold
   start with the local embedder (and with OpenAI's, side by side) from what ``make build`` built, as Lambda runs
   it: see ``bench/cold_embedder.py``.
2. Warm GET: the real ``GetMemoryFunction`` handler against a session of 14 messages and a context, compared with
   a no-op FastAPI app behind Mangum plus one bare redis-py pipeline doing the store's read. Interleaved rounds.
3. Summarizer jobs as the backlog grows, and 4. LLM calls per summarization: see ``bench/summarizer.py``.
5. Retrieval quality (recall@k, MRR), 6. search latency and 7. indexing throughput of long-term memory: see
   ``bench/retrieval.py``.
8. What authentication costs per warm request (none, API key cached or not, JWT, rate limit) and 9. at a cold start:
   see ``bench/auth.py``.
10. What ``make run``'s local gateway costs per request beside the handler it invokes (its process vs. the function's
    worker processes, CPU per request; requests/s, latency and connection errors up to 64 clients), and MCP's
    ``get_memory`` on ``POST /mcp`` beside that GET, warm: see ``bench/gateway.py``.
11. What observability costs on the warm path (logging with the Lambda context, EMF metrics, X-Ray subsegments),
    as a ratio against the same handler without it: see ``bench/observability.py``.

Every Redis server is an ``EmbeddedRedis`` started here, never the machine's own. Run with ``make bench``, or
``PYTHONPATH=layers/shared/python:. .venv/bin/python bench/run.py [--quick] [--only SECTION] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import redis
from fastapi import FastAPI
from mangum import Mangum

from bench import auth as auth_bench
from bench import cold_embedder as cold_embedder_bench
from bench import gateway as gateway_bench
from bench import observability as observability_bench
from bench import retrieval as retrieval_bench
from bench import summarizer as summarizer_bench
from bench.events import EVENTS, PYTHONPATH, SEED_MESSAGES, WINDOW, load_event, seed_event
from bench.harness import interleaved_rounds, percentile, run_child_json, time_calls
from devserver.embedded_redis import EmbeddedRedis
from devserver.lambda_runtime import FakeLambdaContext, LambdaHandler, load_function
from devserver.template import Route, load_routes
from motorhead.adapters.redis_db.keys import Keys
from motorhead.core.values import NO_TENANT, SessionRef

CHILD = Path(__file__).resolve().parent / "cold_child.py"

PASS = "pass (reference)"
FLOOR = "floor: import fastapi, mangum, redis"
HEAVY = ("openai", "boto3", "numpy")

VARIANTS = {
    "a": "(a) GetMemoryFunction handler",
    "b": "(b) no-op Mangum app + bare pipeline",
    "c": "(c) bare redis-py pipeline",
    "d": "(d) no-op Mangum app",
}


@dataclass(frozen=True)
class Settings:
    """How much to measure."""

    cold_rounds: int
    warm_rounds: int
    calls: int
    warmup_calls: int


DEFAULT = Settings(cold_rounds=7, warm_rounds=20, calls=100, warmup_calls=300)
QUICK = Settings(cold_rounds=3, warm_rounds=6, calls=50, warmup_calls=100)


# -- statistics -------------------------------------------------------------------------------------------------


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("nan")


# -- 1. cold init -------------------------------------------------------------------------------------------------


@dataclass
class ColdSample:
    ms: float  # timed inside the child
    import_ms: float | None  # the part of ms spent in load_function (functions only)
    process_ms: float  # spawn to exit, seen from here
    status: int | None
    new_modules: int
    top_level: list[str]
    heavy: dict[str, int]  # modules of each watched package found in sys.modules at the end


@dataclass
class ColdRow:
    name: str
    median_ms: float
    min_ms: float
    max_ms: float
    ratio_to_floor: float
    import_median_ms: float | None
    invoke_median_ms: float | None
    process_median_ms: float
    new_modules: int
    statuses: list[int | None]
    heavy: dict[str, int]
    extra_packages: list[str]
    samples_ms: list[float] = field(repr=False)


def child_command(mode: str, route: Route | None) -> list[str]:
    command = [sys.executable, str(CHILD), mode]
    if route is not None:
        event = EVENTS / f"{route.code_uri.name}-ok.json"
        command += [route.function_id, str(route.code_uri), route.handler, route.method, route.path, str(event)]
    return command


def run_child(command: list[str], env: dict[str, str]) -> ColdSample:
    data, process_ms = run_child_json(command, env, label=" ".join(command[2:4]))
    return ColdSample(
        ms=float(data["ms"]),
        import_ms=None if data["import_ms"] is None else float(data["import_ms"]),
        process_ms=process_ms,
        status=data["status"],
        new_modules=int(data["new_modules"]),
        top_level=list(data["top_level"]),
        heavy={str(k): int(v) for k, v in data["heavy"].items()},
    )


def cold_init(settings: Settings, redis_url: str, progress: Callable[[str], None]) -> list[ColdRow]:
    routes = {route.function_id: route for route in load_routes()}  # one route per function in this template
    commands: dict[str, list[str]] = {PASS: child_command("pass", None), FLOOR: child_command("floor", None)}
    commands |= {function_id: child_command("function", route) for function_id, route in routes.items()}
    env = {**os.environ, "PYTHONPATH": PYTHONPATH, "REDIS_URL": redis_url, "MOTORHEAD_AUTH": "none"}
    names = list(commands)
    for name in names:  # warm-up round, not recorded: bytecode caches, page cache
        run_child(commands[name], env)
    samples: dict[str, list[ColdSample]] = {name: [] for name in names}
    for round_no in range(1, settings.cold_rounds + 1):
        order = random.sample(names, len(names))
        for name in order:
            samples[name].append(run_child(commands[name], env))
        progress(f"cold init: round {round_no}/{settings.cold_rounds}")
    floor_median = statistics.median(s.ms for s in samples[FLOOR])
    floor_packages = set(samples[FLOOR][0].top_level) | set(samples[PASS][0].top_level)
    rows: list[ColdRow] = []
    for name in names:
        runs = samples[name]
        times = [s.ms for s in runs]
        imports = [s.import_ms for s in runs if s.import_ms is not None]
        invokes = [s.ms - s.import_ms for s in runs if s.import_ms is not None]
        extra = {pkg for s in runs for pkg in s.top_level} - floor_packages
        rows.append(
            ColdRow(
                name=name,
                median_ms=statistics.median(times),
                min_ms=min(times),
                max_ms=max(times),
                ratio_to_floor=ratio(statistics.median(times), floor_median),
                import_median_ms=statistics.median(imports) if imports else None,
                invoke_median_ms=statistics.median(invokes) if invokes else None,
                process_median_ms=statistics.median(s.process_ms for s in runs),
                new_modules=round(statistics.median(s.new_modules for s in runs)),
                statuses=sorted({s.status for s in runs}, key=lambda status: status or 0),
                heavy={pkg: max(s.heavy.get(pkg, 0) for s in runs) for pkg in runs[0].heavy},
                extra_packages=sorted(pkg for pkg in extra if pkg not in sys.stdlib_module_names and name != PASS),
                samples_ms=times,
            )
        )
    return rows


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def print_cold(rows: list[ColdRow], settings: Settings) -> None:
    print(f"\n1. Cold init: import + first invoke, fresh process each, {settings.cold_rounds} interleaved rounds")
    print("   (ms timed inside the child; 'process' is spawn-to-exit seen by the parent, interpreter start included)")
    print("   ('import' is load_function, '1st call' the first invocation; 'watched' counts modules of openai, boto3,")
    print("   botocore, numpy, tiktoken left in sys.modules)")
    header = f"   {'':38} {'median':>7} {'min':>7} {'max':>7} {'x floor':>7} {'import':>7} {'1st call':>8}"
    print(header + f" {'process':>7} {'modules':>7}  status  watched")
    for row in rows:
        heavy = ", ".join(f"{pkg}({n})" for pkg, n in row.heavy.items() if n) or "none"
        statuses = ",".join("-" if s is None else str(s) for s in row.statuses)
        print(
            f"   {row.name:38} {row.median_ms:7.1f} {row.min_ms:7.1f} {row.max_ms:7.1f} {row.ratio_to_floor:6.2f}x"
            f" {_ms(row.import_median_ms):>7} {_ms(row.invoke_median_ms):>8} {row.process_median_ms:7.1f}"
            f" {row.new_modules:7d}  {statuses:6}  {heavy}"
        )
    print("   packages imported beyond the floor (not stdlib):")
    for row in rows:
        if row.name not in (PASS, FLOOR):
            print(f"   {row.name:38} {' '.join(row.extra_packages) or '-'}")


# -- 2. warm GET ----------------------------------------------------------------------------------------------------


@dataclass
class WarmVariant:
    label: str
    p50_us: float
    p95_us: float
    mean_us: float
    round_p50_us: list[float] = field(repr=False)


@dataclass
class WarmResult:
    variants: dict[str, WarmVariant]
    ratio_p50: float
    ratio_p95: float
    round_ratio_p50_median: float
    round_ratio_p50_min: float
    round_ratio_p50_max: float
    messages_returned: int
    response_bytes: int


def noop_handler() -> LambdaHandler:
    """The least a FastAPI function behind Mangum can do on this route (a sync route, like the real one)."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    constant: dict[str, Any] = {"messages": [], "context": None, "tokens": 0}

    @app.get("/sessions/{session_id}/memory")
    def noop(session_id: str) -> dict[str, Any]:
        return constant

    handler: LambdaHandler = Mangum(app, lifespan="off")
    return handler


def set_function_environment(redis_url: str) -> None:
    """What the template gives every function; the handlers read it through Settings when first loaded."""
    os.environ["REDIS_URL"] = redis_url
    os.environ["MOTORHEAD_MAX_WINDOW_SIZE"] = str(WINDOW)
    os.environ["MOTORHEAD_AUTH"] = "none"  # the handler's own cost; section 8 measures what auth adds
    from motorhead.composition.access import access_control
    from motorhead.composition.memory import memory_service, shared_connector
    from motorhead.settings import get_settings

    get_settings.cache_clear()
    memory_service.cache_clear()
    shared_connector.cache_clear()
    access_control.cache_clear()


def warm_get(settings: Settings, redis_url: str, progress: Callable[[str], None]) -> WarmResult:
    set_function_environment(redis_url)
    from motorhead.settings import get_settings

    routes = {route.function_id: route for route in load_routes()}
    context = FakeLambdaContext(function_name="GetMemoryFunction")
    _, post = load_function(routes["PostMemoryFunction"])
    _, get = load_function(routes["GetMemoryFunction"])
    event = load_event("get_memory-ok")
    session_id = str(event["pathParameters"]["session_id"])

    posted = post(seed_event(session_id), FakeLambdaContext(function_name="PostMemoryFunction"))
    if posted["statusCode"] != 200:
        raise RuntimeError(f"seeding failed: {posted}")
    first = get(event, context)
    memory = json.loads(first["body"])
    if first["statusCode"] != 200 or len(memory["messages"]) != WINDOW or memory["context"] is None:
        raise RuntimeError(f"unexpected GET response: {first}")

    keys = Keys(get_settings().key_prefix).session(SessionRef(NO_TENANT, session_id))
    client = redis.Redis.from_url(redis_url, decode_responses=True, socket_connect_timeout=1.0, socket_timeout=2.0)
    noop = noop_handler()
    if noop(event, context)["statusCode"] != 200:
        raise RuntimeError("the no-op app did not answer 200")

    def real() -> None:
        get(event, context)

    def bare_pipeline() -> None:
        pipe = client.pipeline(transaction=False)
        pipe.zrevrange(keys.messages, 0, WINDOW - 1)
        pipe.hmget(keys.meta, ["context", "tokens"])
        pipe.execute()

    def noop_app() -> None:
        noop(event, context)

    def baseline() -> None:
        noop(event, context)
        bare_pipeline()

    functions: dict[str, Callable[[], None]] = {"a": real, "b": baseline, "c": bare_pipeline, "d": noop_app}
    for fn in functions.values():
        time_calls(fn, settings.warmup_calls)

    def on_round(round_no: int) -> None:
        if round_no % 5 == 0 or round_no == settings.warm_rounds:
            progress(f"warm GET: round {round_no}/{settings.warm_rounds}")

    samples, round_p50 = interleaved_rounds(
        functions, rounds=settings.warm_rounds, calls=settings.calls, on_round=on_round
    )
    client.close()

    variants = {
        key: WarmVariant(
            label=VARIANTS[key],
            p50_us=percentile(values, 50),
            p95_us=percentile(values, 95),
            mean_us=statistics.fmean(values),
            round_p50_us=round_p50[key],
        )
        for key, values in samples.items()
    }
    per_round = [ratio(a, b) for a, b in zip(round_p50["a"], round_p50["b"], strict=True)]
    return WarmResult(
        variants=variants,
        ratio_p50=ratio(variants["a"].p50_us, variants["b"].p50_us),
        ratio_p95=ratio(variants["a"].p95_us, variants["b"].p95_us),
        round_ratio_p50_median=statistics.median(per_round),
        round_ratio_p50_min=min(per_round),
        round_ratio_p50_max=max(per_round),
        messages_returned=len(memory["messages"]),
        response_bytes=len(first["body"]),
    )


def print_warm(result: WarmResult, settings: Settings) -> None:
    total = settings.warm_rounds * settings.calls
    print(
        f"\n2. Warm GET /sessions/{{id}}/memory, in process: {settings.warm_rounds} interleaved rounds x "
        f"{settings.calls} calls ({total} per variant, after {settings.warmup_calls} warm-up calls)"
    )
    print(f"   the session: {SEED_MESSAGES} messages + a context; the handler returns {result.messages_returned}")
    print(f"   ({result.response_bytes} bytes of JSON)")
    print(f"   {'':40} {'p50 us':>9} {'p95 us':>9} {'mean us':>9}")
    for variant in result.variants.values():
        print(f"   {variant.label:40} {variant.p50_us:9.0f} {variant.p95_us:9.0f} {variant.mean_us:9.0f}")
    print(f"   (a)/(b): p50 {result.ratio_p50:.2f}x, p95 {result.ratio_p95:.2f}x")
    print(
        f"   (a)/(b) at p50 round by round: median {result.round_ratio_p50_median:.2f}x, "
        f"range {result.round_ratio_p50_min:.2f}x-{result.round_ratio_p50_max:.2f}x"
    )


# -- report ---------------------------------------------------------------------------------------------------------


def environment_facts() -> dict[str, Any]:
    cpus = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(terse=True),
        "cpu_count": cpus,
        "cpus_usable": usable,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "packages": {name: version(name) for name in ("fastapi", "mangum", "pydantic", "redis")},
    }


def print_header(facts: dict[str, Any], settings: Settings, redis_version: str, quick: bool) -> None:
    print("Motorhead Serverless benchmarks" + (" (--quick)" if quick else ""))
    print(
        f"{facts['date']}  Python {facts['python']} ({facts['implementation']}, {facts['platform']})  "
        f"CPUs {facts['cpu_count']} (usable {facts['cpus_usable']})  load {facts['load_average']}"
    )
    packages = "  ".join(f"{name} {v}" for name, v in facts["packages"].items())
    print(f"{packages}  redis-server {redis_version} (embedded)")
    print("Figures and ratios measured side by side in this run, on a possibly noisy machine: compare ratios.")


def summary_lines(
    facts: dict[str, Any],
    cold: list[ColdRow] | None,
    warm: WarmResult | None,
    summarizing: summarizer_bench.SummarizerResult | None,
    retrieving: retrieval_bench.RetrievalResult | None,
    authenticating: auth_bench.AuthResult | None,
    settings: Settings,
    gatewaying: gateway_bench.GatewayResult | None = None,
    observing: observability_bench.ObservabilityResult | None = None,
    cold_ltm: cold_embedder_bench.ColdLtmResult | None = None,
) -> list[str]:
    lines = [f"Benchmarks ({facts['date'][:10]}, Python {facts['python']}, {facts['cpu_count']} CPUs; `make bench`)"]
    if cold is not None:
        lines += cold_summary_lines(cold, settings)
    if cold_ltm is not None:
        lines += cold_embedder_bench.summary_lines(cold_ltm)
    if warm is not None:
        lines += warm_summary_lines(warm, settings)
    if summarizing is not None:
        lines += summarizer_bench.summary_lines(summarizing)
    if retrieving is not None:
        lines += retrieval_bench.summary_lines(retrieving)
    if authenticating is not None:
        lines += auth_bench.summary_lines(authenticating)
    if gatewaying is not None:
        lines += gateway_bench.summary_lines(gatewaying)
    if observing is not None:
        lines += observability_bench.summary_lines(observing)
    return lines


def cold_summary_lines(cold: list[ColdRow], settings: Settings) -> list[str]:
    by_name = {row.name: row for row in cold}
    functions = [row for row in cold if row.name not in (PASS, FLOOR)]
    heaviest = max(functions, key=lambda row: row.median_ms)
    lightest = min(functions, key=lambda row: row.median_ms)
    watched: dict[str, int] = {}
    for row in functions:
        for pkg, count in row.heavy.items():
            if count:
                watched[pkg] = max(watched.get(pkg, 0), count)
    heavy_loaded = ", ".join(f"{pkg} ({n} module{'s' if n > 1 else ''})" for pkg, n in sorted(watched.items()))
    lines = [
        f"Cold init (import + first invoke, median of {settings.cold_rounds} fresh processes, ratio to a process "
        f"importing only fastapi+mangum+redis = {by_name[FLOOR].median_ms:.0f} ms):",
    ]
    lines += [
        f"  {row.name:22} {row.median_ms:6.0f} ms  {row.ratio_to_floor:.2f}x floor"
        for row in sorted(functions, key=lambda row: row.median_ms)
    ]
    lines += [
        f"  heaviest {heaviest.name}, lightest {lightest.name} ({heaviest.median_ms - lightest.median_ms:.0f} ms"
        " apart)",
        f"  {'/'.join(HEAVY)} imported at cold start: {'yes' if any(pkg in HEAVY for pkg in watched) else 'none'};"
        f" watched packages loaded: {heavy_loaded or 'none'}",
    ]
    return lines


def warm_summary_lines(warm: WarmResult, settings: Settings) -> list[str]:
    return [
        f"Warm GET (session of {SEED_MESSAGES} messages + context, window {WINDOW}; "
        f"{settings.warm_rounds}x{settings.calls} interleaved calls):",
        f"  handler p50 {warm.variants['a'].p50_us:.0f} us / p95 {warm.variants['a'].p95_us:.0f} us; "
        f"no-op Mangum app + bare redis pipeline p50 {warm.variants['b'].p50_us:.0f} us / "
        f"p95 {warm.variants['b'].p95_us:.0f} us",
        f"  ratio handler/baseline: p50 {warm.ratio_p50:.2f}x, p95 {warm.ratio_p95:.2f}x "
        f"(per-round p50 ratio {warm.round_ratio_p50_min:.2f}-{warm.round_ratio_p50_max:.2f}x)",
    ]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a rough figure in a few seconds)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument(
        "--only",
        choices=("cold", "cold-ltm", "warm", "summarizer", "retrieval", "auth", "gateway", "observability", "all"),
        default="all",
        help="run one section: cold init (with cold-ltm: long-term memory's, from the build), warm GET, the "
        "summarizer jobs and LLM calls, long-term memory's "
        "retrieval quality, latency and indexing, what authentication costs, what the local gateway costs beside "
        "the handler, or what observability costs on the warm path (default: all)",
    )
    parser.add_argument("--cold-rounds", type=int, help="override the number of cold-init rounds (auth's too)")
    parser.add_argument("--warm-rounds", type=int, help="override the number of warm GET rounds (auth's too)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = QUICK if args.quick else DEFAULT
    settings = Settings(
        cold_rounds=max(1, args.cold_rounds or settings.cold_rounds),
        warm_rounds=max(1, args.warm_rounds or settings.warm_rounds),
        calls=settings.calls,
        warmup_calls=settings.warmup_calls,
    )
    facts = environment_facts()
    started = time.perf_counter()

    def progress(message: str) -> None:
        print(f"   .. {message} ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)

    every = {"cold", "cold-ltm", "warm", "summarizer", "retrieval", "auth", "gateway", "observability"}
    sections = every if args.only == "all" else {args.only} | ({"cold-ltm"} if args.only == "cold" else set())
    cold: list[ColdRow] | None = None
    cold_ltm: cold_embedder_bench.ColdLtmResult | None = None
    warm: WarmResult | None = None
    summarizing: summarizer_bench.SummarizerResult | None = None
    summarizer_settings = summarizer_bench.QUICK if args.quick else summarizer_bench.DEFAULT
    retrieving: retrieval_bench.RetrievalResult | None = None
    retrieval_settings = retrieval_bench.QUICK if args.quick else retrieval_bench.DEFAULT
    authenticating: auth_bench.AuthResult | None = None
    gatewaying: gateway_bench.GatewayResult | None = None
    observing: observability_bench.ObservabilityResult | None = None
    auth_settings = auth_bench.QUICK if args.quick else auth_bench.DEFAULT
    auth_settings = dataclasses.replace(
        auth_settings,
        cold_rounds=max(1, args.cold_rounds or auth_settings.cold_rounds),
        warm_rounds=max(1, args.warm_rounds or auth_settings.warm_rounds),
    )

    with EmbeddedRedis() as cold_server:
        with cold_server.client(decode_responses=True) as info_client:
            redis_version = str(info_client.info("server")["redis_version"])
        print_header(facts, settings, redis_version, args.quick)
        if "cold" in sections:
            cold = cold_init(settings, cold_server.url, progress)
    if cold is not None:
        print_cold(cold, settings)
    if "cold-ltm" in sections:
        cold_ltm_settings = cold_embedder_bench.QUICK if args.quick else cold_embedder_bench.DEFAULT
        cold_ltm = cold_embedder_bench.benchmark(cold_ltm_settings, progress)
        cold_embedder_bench.print_result(cold_ltm, "1b")

    if "warm" in sections:
        with EmbeddedRedis() as warm_server:
            loop = asyncio.new_event_loop()  # Mangum calls asyncio.get_event_loop(): one loop for the whole run
            asyncio.set_event_loop(loop)
            try:
                warm = warm_get(settings, warm_server.url, progress)
            finally:
                asyncio.set_event_loop(None)
                loop.close()
        print_warm(warm, settings)

    if "summarizer" in sections:
        summarizing = summarizer_bench.benchmark(summarizer_settings, progress)
        summarizer_bench.print_result(summarizing, 3)

    if "retrieval" in sections:
        retrieving = retrieval_bench.benchmark(retrieval_settings, progress)
        retrieval_bench.print_result(retrieving, 5)

    if "auth" in sections:
        authenticating = auth_bench.benchmark(auth_settings, progress)
        auth_bench.print_result(authenticating, 8)

    if "gateway" in sections:
        gatewaying = gateway_bench.benchmark(gateway_bench.QUICK if args.quick else gateway_bench.DEFAULT, progress)
        gateway_bench.print_result(gatewaying, 10)

    if "observability" in sections:
        observing = observability_bench.benchmark(
            observability_bench.QUICK if args.quick else observability_bench.DEFAULT, progress
        )
        observability_bench.print_result(observing, 11)

    lines = summary_lines(
        facts, cold, warm, summarizing, retrieving, authenticating, settings, gatewaying, observing, cold_ltm
    )
    print("\nSummary (paste into the README):\n")
    print("```text")
    print("\n".join(lines))
    print("```")
    print(f"\n(done in {time.perf_counter() - started:.0f} s)")

    if args.json is not None:
        results = {
            "environment": {**facts, "redis_server": redis_version},
            "settings": asdict(settings),
            "cold_init": None if cold is None else [asdict(row) for row in cold],
            "cold_ltm": None if cold_ltm is None else asdict(cold_ltm),
            "warm_get": None if warm is None else asdict(warm),
            "summarizer": None if summarizing is None else asdict(summarizing),
            "retrieval": None if retrieving is None else asdict(retrieving),
            "auth": None if authenticating is None else asdict(authenticating),
            "gateway": None if gatewaying is None else asdict(gatewaying),
            "observability": None if observing is None else asdict(observing),
            "summary": lines,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
