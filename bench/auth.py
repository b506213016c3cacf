"""Authentication benchmark: what admitting a request costs, per request and at a cold start (figures, never
pass/fail).

Every request of an HTTP function goes through ``AccessControl.admit`` (credential -> caller -> scope -> optional
rate limit) inside the function itself. Measured here, side by side in one run:

1. Warm path: the real ``GetMemoryFunction`` handler, invoked through its Lambda handler with API Gateway events,
   on a session of 14 messages + a context (window 12, seeded as ``bench/run.py``'s warm GET seeds it), under five
   access modes: (a) ``MOTORHEAD_AUTH=none``; (b) ``api-key``, the key in the per-process cache (the normal warm
   case); (c) ``api-key`` with ``MOTORHEAD_API_KEY_CACHE_SECONDS=0`` (the key directory's revision read from
   Redis on every request: the worst case); (d) ``jwt``, an RS256 token from a local ``JwksServer``, the JWKS cache
   warm; (e) ``api-key`` (cached)
   + the per-tenant rate limit (``MOTORHEAD_RATE_LIMIT_RPS`` high enough never to refuse: its script's round trip).
   One copy of the function's module per mode is loaded in this process, each under its own environment with the
   composition singletons forgotten in between (``tests.support.environment``), so each copy has its own settings,
   connector and access control; each copy is checked to authenticate as its mode says before anything is timed.
   The modes run interleaved, in a shuffled order each round. Redis commands per request come from the server's
   ``INFO commandstats`` delta (commands run inside Lua scripts included), round trips from the client's writes.
2. Cold start: ``GetMemoryFunction``'s import + first invoke in a fresh process (``bench/cold_child.py``, as section 1
   of ``bench/run.py``) under ``none``, ``api-key`` and ``jwt``, interleaved rounds; the jwt child's first request
   also fetches the JWKS from the local server (counted on the server, and one fetch timed in this process).
3. Extra Lambda invocations per request: 0 in every mode, by design (no Lambda authorizer): stated, not measured.

Every Redis server is an ``EmbeddedRedis`` started here. Run alone with
``PYTHONPATH=layers/shared/python:. .venv/bin/python bench/auth.py [--quick]``, or as part of ``bench/run.py``
(``--only auth``).
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from unittest import mock

import jwt
import redis
import redis.connection

from bench.events import PYTHONPATH, SEED_MESSAGES, WINDOW, load_event, seed_event
from bench.harness import interleaved_rounds, percentile, run_child_json, standalone_main, time_calls
from bench.summarizer import command_stats, quiet_logger
from devserver.embedded_redis import EmbeddedRedis
from devserver.lambda_runtime import FakeLambdaContext, LambdaHandler, load_function
from devserver.template import Route, load_routes, load_template
from motorhead.composition.access import api_keys
from motorhead.core.auth import ALL_SCOPES
from motorhead.settings import get_settings
from tests.jwks_server import JwksServer, SigningKey, in_seconds, mint, rsa_key
from tests.support import environment

CHILD = Path(__file__).resolve().parent / "cold_child.py"

FUNCTION = "GetMemoryFunction"
TENANT = "bench"
ISSUER, AUDIENCE = "https://issuer.bench/", "motorhead-bench"
NEVER_REFUSES_RPS = "1000000"  # a bucket of a million tokens refilled at a million per second

AUTHORIZER_KEYS = ("Auth", "Authorizer", "Authorizers", "DefaultAuthorizer", "AuthorizerId")
AUTHORIZER_TYPES = ("AWS::ApiGatewayV2::Authorizer", "AWS::ApiGateway::Authorizer")

AuthMethod = Literal["none", "api-key", "jwt"]


@dataclass(frozen=True)
class AuthSettings:
    """How much to measure."""

    warm_rounds: int
    calls: int  # per mode per round
    warmup_calls: int  # per mode, before the rounds
    count_calls: int  # per mode, between two INFO commandstats snapshots
    cold_rounds: int
    jwks_fetches: int  # JWKS fetches timed in this process


DEFAULT = AuthSettings(warm_rounds=30, calls=100, warmup_calls=300, count_calls=200, cold_rounds=9, jwks_fetches=30)
QUICK = AuthSettings(warm_rounds=6, calls=50, warmup_calls=100, count_calls=50, cold_rounds=3, jwks_fetches=10)


@dataclass(frozen=True)
class Mode:
    """One access configuration of the function."""

    key: str
    label: str
    method: AuthMethod
    env: dict[str, str]  # beyond REDIS_URL, the window and MOTORHEAD_AUTH
    rate_limited: bool = False


WARM_MODES = (
    Mode("a", "(a) none", "none", {}),
    Mode("b", "(b) api-key, key cached", "api-key", {}),
    Mode("c", "(c) api-key, cache 0 s", "api-key", {"MOTORHEAD_API_KEY_CACHE_SECONDS": "0"}),
    Mode("d", "(d) jwt RS256, JWKS cached", "jwt", {}),
    Mode("e", "(e) api-key cached + rate limit", "api-key", {"MOTORHEAD_RATE_LIMIT_RPS": NEVER_REFUSES_RPS}, True),
)
COLD_MODES: tuple[AuthMethod, ...] = ("none", "api-key", "jwt")


# -- environments, credentials, events --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    api_key: str
    token: str

    def for_method(self, method: AuthMethod) -> str | None:
        return {"none": None, "api-key": self.api_key, "jwt": self.token}[method]

    def foreign(self, method: AuthMethod) -> str | None:
        """The other scheme's (valid) credential, which this method must refuse."""
        return {"none": None, "api-key": self.token, "jwt": self.api_key}[method]


def function_env(redis_url: str, method: AuthMethod, jwks_url: str, extra: dict[str, str]) -> dict[str, str | None]:
    """The environment one copy of the function is loaded under: every other ``MOTORHEAD_*`` variable unset."""
    values: dict[str, str | None] = {name: None for name in os.environ if name.startswith("MOTORHEAD_")}
    values |= {"REDIS_URL": redis_url, "MOTORHEAD_MAX_WINDOW_SIZE": str(WINDOW), "MOTORHEAD_AUTH": method}
    if method == "jwt":
        values |= {
            "MOTORHEAD_JWT_ISSUER": ISSUER,
            "MOTORHEAD_JWT_AUDIENCE": AUDIENCE,
            "MOTORHEAD_JWT_JWKS_URL": jwks_url,
        }
    return values | extra


def with_credential(event: dict[str, Any], secret: str | None) -> dict[str, Any]:
    """The event with ``Authorization: Bearer <secret>`` (an API key or a JWT), or without any credential."""
    changed = copy.deepcopy(event)
    changed["headers"].pop("authorization", None)
    if secret is not None:
        changed["headers"]["authorization"] = f"Bearer {secret}"
    return changed


def new_api_key(redis_url: str) -> str:
    """An API key of ``TENANT`` with every scope, stored in Redis as ``make key`` stores it."""
    with environment(**function_env(redis_url, "api-key", "", {})):
        key, _ = api_keys(get_settings()).create(TENANT, scopes=ALL_SCOPES, label="bench")
    return key


def new_token(signing_key: SigningKey) -> str:
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "bench",
        "exp": in_seconds(3600),
        "tenant": TENANT,
        "scope": "motorhead:read motorhead:write",
    }
    return mint(claims, key=signing_key)


def routes() -> dict[str, Route]:
    return {route.function_id: route for route in load_routes()}


def authorizers_in_template() -> int:
    """Lambda/JWT authorizers declared anywhere in template.yaml (an ``Auth`` block, an ``Authorizer(s)`` key, an
    ``AWS::ApiGatewayV2::Authorizer`` resource): each would be work outside the function on some requests."""
    found = 0

    def walk(node: Any) -> None:
        nonlocal found
        if isinstance(node, dict):
            for name, value in node.items():
                if name in AUTHORIZER_KEYS or (name == "Type" and value in AUTHORIZER_TYPES):
                    found += 1
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(load_template())
    return found


# -- 1. warm path --------------------------------------------------------------------------------------------------


@dataclass
class Loaded:
    """One copy of the function, loaded under its mode's environment."""

    mode: Mode
    handler: LambdaHandler
    event: dict[str, Any]


@dataclass
class WarmMode:
    key: str
    label: str
    method: str
    p50_us: float
    p95_us: float
    mean_us: float
    ratio_p50: float  # to (a)
    ratio_p95: float
    extra_p50_us: float  # p50 minus (a)'s
    round_ratio_p50_median: float
    round_ratio_p50_min: float
    round_ratio_p50_max: float
    redis_commands: float  # per request, server side, commands run inside Lua scripts included
    round_trips: float  # per request: client writes (a pipeline or a script call is one)
    by_command: dict[str, float]  # per request
    status_without_credential: int
    status_foreign_credential: int | None  # the other scheme's valid credential (None for (a))
    round_p50_us: list[float] = field(repr=False)


@dataclass
class WarmAuthResult:
    modes: list[WarmMode]
    messages_returned: int
    response_bytes: int
    non_200_while_timed: int
    jwks_fetches_before_timing: int
    jwks_fetches_while_timed: int


def load_mode(mode: Mode, redis_url: str, jwks_url: str, credentials: Credentials) -> Loaded:
    """Load a copy of the function (and, to seed its tenant's session, of PostMemoryFunction) under the mode's
    environment; ``environment`` forgets the composition singletons on the way in and out."""
    by_id = routes()
    event = with_credential(load_event("get_memory-ok"), credentials.for_method(mode.method))
    with environment(**function_env(redis_url, mode.method, jwks_url, mode.env)):
        module, handler = load_function(by_id[FUNCTION])
        if mode.key in ("a", "b"):  # (a) seeds the tenant-less session, (b) the tenant's: (b)-(e) read the latter
            _, post = load_function(by_id["PostMemoryFunction"])
            session_id = str(event["pathParameters"]["session_id"])
            seeding = with_credential(seed_event(session_id), credentials.for_method(mode.method))
            posted = post(seeding, FakeLambdaContext(function_name="PostMemoryFunction"))
            if posted["statusCode"] != 200:
                raise RuntimeError(f"seeding {mode.label} failed: {posted}")
    access = module.app.state.access
    if access.authenticator.method != mode.method or (access.rate_limiter is not None) != mode.rate_limited:
        raise RuntimeError(f"{mode.label}: the copy was wired as {access.authenticator.method}, {access.rate_limiter}")
    return Loaded(mode=mode, handler=handler, event=event)


def check_mode(loaded: Loaded, credentials: Credentials) -> tuple[int, int | None, dict[str, Any]]:
    """The copy authenticates as its mode says: 200 with its credential (the window and the context back), 401
    without one (200 for (a)), 401 with the other scheme's valid credential. Returns the two refusals' statuses."""
    context = FakeLambdaContext(function_name=FUNCTION)
    mode = loaded.mode
    answer = loaded.handler(loaded.event, context)
    memory = json.loads(answer["body"])
    if answer["statusCode"] != 200 or len(memory["messages"]) != WINDOW or memory["context"] is None:
        raise RuntimeError(f"{mode.label}: unexpected GET response {answer}")
    with quiet_logger():  # refusals log a line each
        bare = loaded.handler(with_credential(loaded.event, None), context)["statusCode"]
        foreign_secret = credentials.foreign(mode.method)
        foreign = None
        if foreign_secret is not None:
            foreign = loaded.handler(with_credential(loaded.event, foreign_secret), context)["statusCode"]
    if bare != (200 if mode.method == "none" else 401) or foreign not in (None, 401):
        raise RuntimeError(f"{mode.label}: without credential {bare}, with the other scheme's credential {foreign}")
    return bare, foreign, answer


@contextmanager
def counted_round_trips(into: Counter[str]) -> Iterator[None]:
    """Count the client's writes to Redis: one per command, pipeline or script call (one round trip each)."""
    send: Callable[..., None] = redis.connection.AbstractConnection.send_packed_command

    def counting(self: redis.connection.AbstractConnection, command: Any, check_health: bool = True) -> None:
        into["writes"] += 1
        send(self, command, check_health)

    with mock.patch.object(redis.connection.AbstractConnection, "send_packed_command", counting):
        yield


def redis_costs(calls: Callable[[], None], observer: redis.Redis, n: int) -> tuple[Counter[str], int]:
    """Server commands (commandstats delta) and client round trips of ``n`` requests."""
    writes: Counter[str] = Counter()
    before, _ = command_stats(observer)
    with counted_round_trips(writes):
        for _ in range(n):
            calls()
    after, _ = command_stats(observer)
    after["info"] -= 1  # the observer's first INFO
    return +(after - before), writes["writes"]


def warm_path(
    settings: AuthSettings,
    server: EmbeddedRedis,
    jwks: JwksServer,
    credentials: Credentials,
    progress: Callable[[str], None],
) -> WarmAuthResult:
    loaded = {mode.key: load_mode(mode, server.url, jwks.url, credentials) for mode in WARM_MODES}
    checks = {key: check_mode(copy_, credentials) for key, copy_ in loaded.items()}
    first = checks["a"][2]
    context = FakeLambdaContext(function_name=FUNCTION)
    failures: Counter[str] = Counter()

    def invoker(one: Loaded) -> Callable[[], None]:
        handler, event, key = one.handler, one.event, one.mode.key

        def call() -> None:
            if handler(event, context)["statusCode"] != 200:
                failures[key] += 1

        return call

    functions = {key: invoker(one) for key, one in loaded.items()}
    for fn in functions.values():
        time_calls(fn, settings.warmup_calls)
    fetches_before = jwks.fetches

    def on_round(round_no: int) -> None:
        if round_no % 10 == 0 or round_no == settings.warm_rounds:
            progress(f"auth warm path: round {round_no}/{settings.warm_rounds}")

    samples, round_p50 = interleaved_rounds(
        functions, rounds=settings.warm_rounds, calls=settings.calls, on_round=on_round
    )
    fetches_while_timed = jwks.fetches - fetches_before

    with server.client(decode_responses=True) as observer:
        costs = {key: redis_costs(fn, observer, settings.count_calls) for key, fn in functions.items()}
    check_redis_costs(costs, settings.count_calls)

    base = samples["a"]
    base_p50, base_p95 = percentile(base, 50), percentile(base, 95)
    modes: list[WarmMode] = []
    for mode in WARM_MODES:
        values = samples[mode.key]
        p50, p95 = percentile(values, 50), percentile(values, 95)
        per_round = [x / a for x, a in zip(round_p50[mode.key], round_p50["a"], strict=True)]
        commands, writes = costs[mode.key]
        n = settings.count_calls
        modes.append(
            WarmMode(
                key=mode.key,
                label=mode.label,
                method=mode.method,
                p50_us=p50,
                p95_us=p95,
                mean_us=statistics.fmean(values),
                ratio_p50=p50 / base_p50,
                ratio_p95=p95 / base_p95,
                extra_p50_us=p50 - base_p50,
                round_ratio_p50_median=statistics.median(per_round),
                round_ratio_p50_min=min(per_round),
                round_ratio_p50_max=max(per_round),
                redis_commands=commands.total() / n,
                round_trips=writes / n,
                by_command={name: calls / n for name, calls in sorted(commands.items())},
                status_without_credential=checks[mode.key][0],
                status_foreign_credential=checks[mode.key][1],
                round_p50_us=round_p50[mode.key],
            )
        )
    return WarmAuthResult(
        modes=modes,
        messages_returned=len(json.loads(first["body"])["messages"]),
        response_bytes=len(first["body"]),
        non_200_while_timed=failures.total(),
        jwks_fetches_before_timing=fetches_before,
        jwks_fetches_while_timed=fetches_while_timed,
    )


def check_redis_costs(costs: dict[str, tuple[Counter[str], int]], n: int) -> None:
    """What each mode's Redis traffic must show if the copy is wired as its mode says: a ``GET`` per request in (c)
    (the key directory's revision, read on every request; the directory itself is loaded once: nothing changes while
    timed) and in (e) (the rate bucket's, inside the rate limit's script, which the GET's own pipeline carries), and
    that script in (e) only."""
    gets = {key: commands["get"] / n for key, (commands, _) in costs.items()}
    scripts = {key: (commands["evalsha"] + commands["eval"]) / n for key, (commands, _) in costs.items()}
    # (b) and (e) read the revision once a second: rounded, that is 0 per request
    expected_gets = {"a": 0, "b": 0, "c": 1, "d": 0, "e": 1}
    expected_scripts = {"a": 0, "b": 0, "c": 0, "d": 0, "e": 1}
    rounded_gets = {key: round(value) for key, value in gets.items()}
    if rounded_gets != expected_gets or gets["c"] != 1 or scripts != expected_scripts:
        raise RuntimeError(f"unexpected Redis traffic: GET per request {gets}, scripts {scripts}")


# -- 2. cold start -------------------------------------------------------------------------------------------------


@dataclass
class ColdAuthRow:
    method: str
    median_ms: float
    min_ms: float
    max_ms: float
    ratio_to_none: float
    import_median_ms: float
    invoke_median_ms: float  # the first invocation
    process_median_ms: float  # spawn to exit, seen from here
    statuses: list[int]
    jwks_fetches_per_start: float
    extra_packages: list[str]  # imported beyond what MOTORHEAD_AUTH=none imports (not stdlib)
    samples_ms: list[float] = field(repr=False)


@dataclass
class ColdAuthResult:
    rows: list[ColdAuthRow]
    jwks_fetch_ms_median: float  # one JWKS fetch + key parsing, timed in this (warm) process
    jwks_fetch_ms_min: float


@dataclass
class ColdSample:
    ms: float
    import_ms: float
    process_ms: float
    status: int
    jwks_fetches: int
    top_level: list[str]  # the packages the child imported in the timed region


def child_env(redis_url: str, method: AuthMethod, jwks_url: str) -> dict[str, str]:
    base = {name: value for name, value in os.environ.items() if not name.startswith("MOTORHEAD_")}
    values = function_env(redis_url, method, jwks_url, {})
    return {**base, "PYTHONPATH": PYTHONPATH} | {name: value for name, value in values.items() if value is not None}


def run_child(command: list[str], env: dict[str, str], jwks: JwksServer) -> ColdSample:
    fetches = jwks.fetches
    data, process_ms = run_child_json(command, env, label="cold child")
    return ColdSample(
        ms=float(data["ms"]),
        import_ms=float(data["import_ms"]),
        process_ms=process_ms,
        status=int(data["status"]),
        jwks_fetches=jwks.fetches - fetches,
        top_level=list(data["top_level"]),
    )


def time_jwks_fetch(url: str, kid: str, times: int) -> list[float]:
    """A new ``PyJWKClient`` fetching the set and building the key, as the first request of a jwt process does."""
    samples: list[float] = []
    for _ in range(times):
        start = time.perf_counter()
        jwt.PyJWKClient(url, cache_jwk_set=True, lifespan=300).get_signing_key(kid)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def cold_start(
    settings: AuthSettings,
    server: EmbeddedRedis,
    jwks: JwksServer,
    credentials: Credentials,
    kid: str,
    progress: Callable[[str], None],
) -> ColdAuthResult:
    route = routes()[FUNCTION]
    get_event = load_event("get_memory-ok")
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as folder:
        commands: dict[str, list[str]] = {}
        envs: dict[str, dict[str, str]] = {}
        for method in COLD_MODES:
            event_file = Path(folder) / f"get_memory-{method}.json"
            event_file.write_text(json.dumps(with_credential(get_event, credentials.for_method(method))), "utf-8")
            commands[method] = [sys.executable, str(CHILD), "function", route.function_id, str(route.code_uri)]
            commands[method] += [route.handler, route.method, route.path, str(event_file)]
            envs[method] = child_env(server.url, method, jwks.url)
        for method in COLD_MODES:  # warm-up round, not recorded: bytecode caches, page cache
            run_child(commands[method], envs[method], jwks)
        samples: dict[str, list[ColdSample]] = {method: [] for method in COLD_MODES}
        for round_no in range(1, settings.cold_rounds + 1):
            for method in random.sample(COLD_MODES, len(COLD_MODES)):
                samples[method].append(run_child(commands[method], envs[method], jwks))
            progress(f"auth cold start: round {round_no}/{settings.cold_rounds}")
    none_median = statistics.median(s.ms for s in samples["none"])
    none_packages = {pkg for s in samples["none"] for pkg in s.top_level}
    rows = []
    for method in COLD_MODES:
        runs = samples[method]
        times = [s.ms for s in runs]
        rows.append(
            ColdAuthRow(
                method=method,
                median_ms=statistics.median(times),
                min_ms=min(times),
                max_ms=max(times),
                ratio_to_none=statistics.median(times) / none_median,
                import_median_ms=statistics.median(s.import_ms for s in runs),
                invoke_median_ms=statistics.median(s.ms - s.import_ms for s in runs),
                process_median_ms=statistics.median(s.process_ms for s in runs),
                statuses=sorted({s.status for s in runs}),
                jwks_fetches_per_start=statistics.fmean(s.jwks_fetches for s in runs),
                extra_packages=sorted(
                    {pkg for s in runs for pkg in s.top_level} - none_packages - set(sys.stdlib_module_names)
                ),
                samples_ms=times,
            )
        )
    if any(row.statuses != [200] for row in rows):
        raise RuntimeError(f"a cold start did not answer 200: {[(row.method, row.statuses) for row in rows]}")
    fetch_ms = time_jwks_fetch(jwks.url, kid, settings.jwks_fetches)
    return ColdAuthResult(rows=rows, jwks_fetch_ms_median=statistics.median(fetch_ms), jwks_fetch_ms_min=min(fetch_ms))


# -- report ---------------------------------------------------------------------------------------------------------


@dataclass
class AuthResult:
    settings: AuthSettings
    warm: WarmAuthResult
    cold: ColdAuthResult
    extra_invocations_per_request: int  # a design fact: access control runs inside each function
    authorizers_in_template: int


def benchmark(settings: AuthSettings, progress: Callable[[str], None]) -> AuthResult:
    signing_key = rsa_key("bench-rs256")
    with EmbeddedRedis() as server, JwksServer(signing_key) as jwks:
        credentials = Credentials(api_key=new_api_key(server.url), token=new_token(signing_key))
        loop = asyncio.new_event_loop()  # Mangum calls asyncio.get_event_loop(): one loop for the section
        asyncio.set_event_loop(loop)
        try:
            warm = warm_path(settings, server, jwks, credentials, progress)
        finally:
            asyncio.set_event_loop(None)
            loop.close()
        cold = cold_start(settings, server, jwks, credentials, signing_key.kid, progress)
    return AuthResult(
        settings=settings,
        warm=warm,
        cold=cold,
        extra_invocations_per_request=0,
        authorizers_in_template=authorizers_in_template(),
    )


def _round_trips(count: float) -> str:
    return f"{count:g} round trip{'' if count == 1 else 's'}"


def _commands(mode: WarmMode) -> str:
    return " ".join(f"{name} {calls:g}" for name, calls in mode.by_command.items()) or "-"


def _invocations_line(result: AuthResult) -> str:
    checked = (
        "template.yaml declares no authorizer"
        if result.authorizers_in_template == 0
        else f"WARNING: template.yaml declares {result.authorizers_in_template} authorizer setting(s)"
    )
    return (
        f"extra Lambda invocations per request: {result.extra_invocations_per_request} in every mode (a design fact,"
        f" not a measurement: AccessControl.admit runs inside each function; {checked})"
    )


def print_warm(result: AuthResult, number: int) -> None:
    warm, settings = result.warm, result.settings
    total = settings.warm_rounds * settings.calls
    print(
        f"\n{number}. Authentication, warm path: {FUNCTION}'s Lambda handler, one copy per mode in this process; "
        f"{settings.warm_rounds} interleaved rounds x {settings.calls} calls ({total} per mode, after "
        f"{settings.warmup_calls} warm-up calls)"
    )
    print(
        f"   the session: {SEED_MESSAGES} messages + a context, {warm.messages_returned} returned"
        f" ({warm.response_bytes} bytes); credentials as 'Authorization: Bearer'; tenant '{TENANT}' ((a): none)"
    )
    print("   each copy checked first: 200 with its credential, 401 without (200 in (a)), 401 with the other scheme's")
    print(
        f"   Redis: commands per request from INFO commandstats over {settings.count_calls} requests per mode (Lua's"
        " included); round trips = client writes (a pipeline or a script call is one)"
    )
    header = f"   {'':32} {'p50 us':>8} {'p95 us':>8} {'mean us':>8} {'x(a) p50':>8} {'x(a) p95':>8} {'+p50 us':>8}"
    print(header + f" {'redis cmds':>10} {'round trips':>11}  no cred")
    for mode in warm.modes:
        print(
            f"   {mode.label:32} {mode.p50_us:8.0f} {mode.p95_us:8.0f} {mode.mean_us:8.0f} {mode.ratio_p50:7.2f}x"
            f" {mode.ratio_p95:7.2f}x {mode.extra_p50_us:+8.0f} {mode.redis_commands:10g} {mode.round_trips:11g}"
            f"  {mode.status_without_credential}"
        )
    print(
        "   x(a) at p50 round by round: "
        + "; ".join(
            f"({mode.key}) {mode.round_ratio_p50_median:.2f}x"
            f" ({mode.round_ratio_p50_min:.2f}-{mode.round_ratio_p50_max:.2f})"
            for mode in warm.modes
            if mode.key != "a"
        )
    )
    print("   Redis commands per request:")
    for mode in warm.modes:
        print(f"   {mode.label:32} {_commands(mode)}")
    print(
        f"   JWKS fetches by (d): {warm.jwks_fetches_before_timing} before timing (its first request), "
        f"{warm.jwks_fetches_while_timed} during the timed calls; non-200 answers while timed:"
        f" {warm.non_200_while_timed}"
    )
    print(f"   {_invocations_line(result)}")


def print_cold(result: AuthResult, number: int) -> None:
    cold, settings = result.cold, result.settings
    print(
        f"\n{number}. Authentication, cold start: {FUNCTION} import + first invoke (with its credential), fresh process"
        f" each, {settings.cold_rounds} interleaved rounds"
    )
    print("   (ms timed inside the child, bench/cold_child.py; 'process' is spawn-to-exit seen from here; '1st call'")
    print("   includes connecting to Redis, and the key's read for api-key, the JWKS fetch for jwt)")
    header = f"   {'MOTORHEAD_AUTH':16} {'median':>7} {'min':>7} {'max':>7} {'x none':>7} {'import':>7} {'1st call':>8}"
    print(header + f" {'process':>7}  status  JWKS fetches   packages beyond none's")
    for row in cold.rows:
        print(
            f"   {row.method:16} {row.median_ms:7.1f} {row.min_ms:7.1f} {row.max_ms:7.1f} {row.ratio_to_none:6.2f}x"
            f" {row.import_median_ms:7.1f} {row.invoke_median_ms:8.1f} {row.process_median_ms:7.1f}"
            f"  {','.join(str(s) for s in row.statuses):6}  {row.jwks_fetches_per_start:g} per start  "
            f" {' '.join(row.extra_packages) or '-'}"
        )
    print(
        f"   jwt's first request fetches the JWKS from the local server (above: fetches per start); one fetch + key"
        f" parsing timed in this warm process: median {cold.jwks_fetch_ms_median:.2f} ms, min"
        f" {cold.jwks_fetch_ms_min:.2f} ms ({settings.jwks_fetches} fetches; a real IdP adds its network latency)"
    )


def print_result(result: AuthResult, first_number: int) -> None:
    print_warm(result, first_number)
    print_cold(result, first_number + 1)


def summary_lines(result: AuthResult) -> list[str]:
    warm, cold, settings = result.warm, result.cold, result.settings
    lines = [
        f"Authentication, warm GET ({FUNCTION} handler, {settings.warm_rounds}x{settings.calls} interleaved calls "
        "per mode; p50 / p95, ratio to no auth, Redis commands and round trips per request):"
    ]
    lines += [
        f"  {mode.label:32} {mode.p50_us:6.0f} / {mode.p95_us:6.0f} us  {mode.ratio_p50:.2f}x / {mode.ratio_p95:.2f}x"
        f"  {mode.redis_commands:g} Redis cmds, {_round_trips(mode.round_trips)}"
        for mode in warm.modes
    ]
    by_method = {row.method: row for row in cold.rows}
    lines.append(
        f"Authentication, cold start ({FUNCTION} import + first invoke, median of {settings.cold_rounds}): "
        + ", ".join(f"{row.method} {row.median_ms:.0f} ms ({row.ratio_to_none:.2f}x)" for row in cold.rows)
        + f"; jwt's first request fetches the JWKS once ({by_method['jwt'].jwks_fetches_per_start:g} per start,"
        f" ~{cold.jwks_fetch_ms_median:.1f} ms locally)"
    )
    lines.append(
        f"  extra Lambda invocations per request: {result.extra_invocations_per_request} (auth runs inside each"
        " function; no Lambda authorizer)"
    )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    return standalone_main(
        argv, lambda quick, progress: benchmark(QUICK if quick else DEFAULT, progress), print_result, summary_lines
    )


if __name__ == "__main__":
    sys.exit(main())
