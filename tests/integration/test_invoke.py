"""`make invoke FUNCTION=<LogicalId> EVENT=events/<file>.json` as a user runs it (``python -m devserver.invoke`` in
its own process, in an environment holding none of ours): every function of the template on every sample event that
belongs to it, its answer alone on stdout; its errors; and `make env-vars`, the ``--env-vars`` file of ``sam local``.

The invocations of the sample events run once, side by side, on one Redis of the fixtures (``redis_server``), and the
tests check their answers: a few seconds in all rather than one cold start after another.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from devserver.embedded_redis import EmbeddedRedis
from devserver.template import load_function_specs, load_queue_consumers, load_template
from tests.make_run import user_environment
from tests.support import EVENTS, REPO, messages, post_event

PROBE = REPO / "tests" / "fixtures" / "functions" / "probe"
FUNCTIONS = load_function_specs()
# A sample event belongs to the function it is named after: `<code folder>-<case>.json` (events/README.md).
BY_FOLDER = {spec.code_uri.name: function_id for function_id, spec in FUNCTIONS.items()}
SAMPLE_EVENTS = sorted(EVENTS.glob("*.json"))
OK = 200
NO_REDIS = {"REDIS_URL": "redis://127.0.0.1:1/0"}  # for what needs no Redis: none is started for it
NO_FAILURES: dict[str, Any] = {"batchItemFailures": []}
# What each sample event gets with the template's defaults as `make run` resolves them (events/README.md): an HTTP
# status, or a queue consumer's whole answer. Hostile session ids are valid ids (decoded once, kept apart): 200.
EXPECTED: dict[str, int | dict[str, Any]] = {
    "health-ok": OK,
    "current_key-ok": OK,
    "list_sessions-ok": OK,
    "list_sessions-namespace": OK,
    "list_sessions-page-zero": 422,
    "list_sessions-size-too-large": 422,
    "list_sessions-page-not-a-number": 422,
    "get_memory-ok": OK,
    "get_memory-hostile-id": OK,
    "get_session-ok": OK,  # session-42's stats, or exists: false before any post
    "console-ok": OK,  # the page (text/html)
    "console-hostile-file": 404,  # no such file: the name reaches no filesystem
    "post_memory-ok": OK,
    "post_memory-with-context": OK,
    "post_memory-base64": OK,
    "post_memory-hostile-id": OK,
    "post_memory-namespace": OK,
    "post_memory-empty-messages": OK,
    "post_memory-malformed-json": 400,
    "post_memory-not-an-object": 400,
    "post_memory-missing-messages": 422,
    "post_memory-wrong-types": 422,
    "post_memory-empty-role": 422,
    "retrieval-ok": 400,  # long-term memory is off by default (the template's LongTermMemory)
    "user_retrieval-ok": 400,  # the same
    "mcp-ok": OK,  # tools/list: every tool, long-term memory on or off
    "mcp-get-memory": OK,  # tools/call: session-42's memory, GET's JSON
    "post_memory-user": OK,
    "list_sessions-user": OK,
    "delete_user-ok": OK,
    "delete_memory-ok": OK,
    "delete_memory-namespace": OK,
    "delete_memory-hostile-id": OK,
    "summarizer-job": NO_FAILURES,
    "summarizer-redelivery": NO_FAILURES,
    "summarizer-mixed-batch": NO_FAILURES,
    "indexer-job": NO_FAILURES,
    "admin-list-keys": {"ok": True, "keys": []},  # what `make keys` sends the admin function (no HTTP route)
}


@dataclass(frozen=True)
class Case:
    """One invocation: a function, an event file, and the user's extra environment."""

    function_id: str
    event: Path
    expected: int | dict[str, Any]
    env: tuple[tuple[str, str], ...] = ()

    @property
    def id(self) -> str:
        extra = "".join(f"+{name}={value}" for name, value in self.env)
        return f"{self.function_id}:{self.event.stem}{extra}"


def sample_cases() -> list[Case]:
    cases = [
        Case(BY_FOLDER[path.stem.split("-")[0]], path, EXPECTED[path.stem])
        for path in SAMPLE_EVENTS
        if path.stem.split("-")[0] in BY_FOLDER and path.stem in EXPECTED
    ]
    # retrieval with long-term memory on, as a user turns it on (the user's environment wins, as under `make run`)
    retrieval = EVENTS / "retrieval-ok.json"
    cases.append(Case("RetrievalFunction", retrieval, OK, (("MOTORHEAD_LONG_TERM_MEMORY", "true"),)))
    return cases


CASES = sample_cases()


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def invoke(function_id: str, event: Path | str, *, env: dict[str, str], template: Path | None = None) -> Run:
    """``python -m devserver.invoke`` as `make invoke` runs it, from the repository's root, in ``env`` and none of
    our own settings."""
    command = [sys.executable, "-m", "devserver.invoke", function_id, "--event", str(event)]
    if template is not None:
        command += ["--template", str(template)]
    began = time.monotonic()
    done = subprocess.run(
        command, cwd=REPO, env=user_environment(**env), capture_output=True, text=True, timeout=90, check=False
    )
    return Run(done.returncode, done.stdout, done.stderr, time.monotonic() - began)


def answer(run: Run) -> Any:
    """The JSON answer: stdout holds it alone, on one line; the logs went to stderr."""
    assert run.returncode == 0, run.stderr
    assert run.stdout.endswith("\n") and run.stdout.count("\n") == 1, run.stdout
    return json.loads(run.stdout)


@pytest.fixture(scope="module")
def runs(redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Every case invoked once on the fixtures' Redis (emptied first), three at a time."""
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    data_dir = str(tmp_path_factory.mktemp("invoke"))  # never `make run`'s .data, should REDIS_URL be ignored
    env = {"REDIS_URL": redis_server.url, "MOTORHEAD_DATA_DIR": data_dir}
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {
            case.id: pool.submit(invoke, case.function_id, case.event, env={**env, **dict(case.env)}) for case in CASES
        }
        return {key: future.result() for key, future in futures.items()}


def test_sample_events_given_their_names_each_belongs_to_a_function_and_has_an_expected_answer() -> None:
    # Given every sample event / Then it is named after a function of the template, and this test knows its answer
    orphans = [path.name for path in SAMPLE_EVENTS if path.stem.split("-")[0] not in BY_FOLDER]
    assert orphans == [], "name each event <function's code folder>-<case>.json"
    unknown = [path.name for path in SAMPLE_EVENTS if path.stem not in EXPECTED]
    assert unknown == [], "add the event's expected answer to EXPECTED (and its row to events/README.md)"
    # And every function of the template has one at least, so every function is invoked below
    assert {case.function_id for case in CASES} == set(FUNCTIONS)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_invoke_given_a_sample_event_prints_the_handlers_answer_alone_on_stdout(
    case: Case, runs: dict[str, Run]
) -> None:
    # Given a function of the template and a sample event of it / When `make invoke` runs them
    run = runs[case.id]
    response = answer(run)
    # Then stdout is the handler's answer, as API Gateway or the SQS event source would get it
    if isinstance(case.expected, int):
        assert response["statusCode"] == case.expected, response
        if case.event.stem == "console-ok":  # the console's page: HTML, the one answer that is not JSON
            assert response["headers"]["content-type"] == "text/html; charset=utf-8"
        else:
            assert isinstance(json.loads(response["body"]), dict | list)
            assert response["headers"]["content-type"] == "application/json"
    else:
        assert response == case.expected
    # And the logs went to stderr: the runtime's, and the function's own (powertools' JSON lines, EMF metrics)
    assert f"motorhead: {case.function_id} on REDIS_URL" in run.stderr
    assert '"service":"motorhead"' in run.stderr or case.function_id == "AdminFunction"


def test_invoke_given_the_post_function_sends_its_jobs_to_local_queues_and_says_so(
    redis_server: EmbeddedRedis, redis_client: redis.Redis, tmp_path: Path
) -> None:
    # Given an empty Redis and a post of 3 messages past a window of 2 (the user's MOTORHEAD_MAX_WINDOW_SIZE wins, as
    # under `make run`)
    env = {"REDIS_URL": redis_server.url, "MOTORHEAD_DATA_DIR": str(tmp_path), "MOTORHEAD_MAX_WINDOW_SIZE": "2"}
    event = event_file(tmp_path, post_event("session-42", {"messages": messages(3)}))
    run = invoke("PostMemoryFunction", event, env=env)
    # When it runs / Then it answers, its summary job went to the template's SummaryQueue, made locally
    assert answer(run)["statusCode"] == OK
    assert "job(s) sent to SummaryQueue" in run.stderr, run.stderr


def test_invoke_given_no_redis_url_uses_the_embedded_redis_on_its_data_folder(tmp_path: Path) -> None:
    # Given no REDIS_URL, and `make run`'s data folder moved to a temporary one
    env = {"MOTORHEAD_DATA_DIR": str(tmp_path)}
    # When a message is stored by one invocation and read by the next
    assert answer(invoke("PostMemoryFunction", EVENTS / "post_memory-ok.json", env=env))["statusCode"] == OK
    read = invoke("GetMemoryFunction", EVENTS / "get_memory-ok.json", env=env)
    # Then the second finds it: the embedded Redis kept it in the data folder, as `make run`'s does
    messages = json.loads(answer(read)["body"])["messages"]
    stored = json.loads(json.loads((EVENTS / "post_memory-ok.json").read_text(encoding="utf-8"))["body"])["messages"]
    assert [m["content"] for m in reversed(messages)] == [m["content"] for m in stored]
    assert f"(data in {tmp_path / 'redis'})" in read.stderr
    assert any((tmp_path / "redis").iterdir())


@pytest.mark.parametrize(
    ("function_id", "event", "message"),
    [
        ("NoSuchFunction", "events/health-ok.json", "motorhead: unknown function 'NoSuchFunction': template.yaml has "),
        ("", "events/health-ok.json", "motorhead: give a function: make invoke FUNCTION="),
        ("HealthFunction", "events/no-such-event.json", "motorhead: no event file events/no-such-event.json"),
        ("HealthFunction", "", "motorhead: give an event file: make invoke FUNCTION="),
        ("HealthFunction", "events/README.md", "motorhead: events/README.md is not JSON"),
    ],
    ids=["unknown-function", "no-function", "missing-event", "no-event", "not-json"],
)
def test_invoke_given_a_wrong_function_or_event_says_so_in_one_line_and_exits_2(
    function_id: str, event: str, message: str
) -> None:
    # Given a function the template does not have, or an event file that is missing or not JSON / When invoked
    run = invoke(function_id, event, env=NO_REDIS)
    # Then it exits 2 with one line on stderr that says what is wrong, and prints nothing on stdout
    assert (run.returncode, run.stdout) == (2, ""), run.stderr
    assert run.stderr.startswith(message) and run.stderr.count("\n") == 1, run.stderr


def probe_template(folder: Path, *, code_uri: Path = PROBE, timeout: int = 1) -> Path:
    """A template of one function, the local runtime's probe: it reports its environment, sleeps or raises."""
    template = folder / "template.yaml"
    template.write_text(
        "Globals:\n  Function:\n    Timeout: 10\n    Environment:\n      Variables:\n        FROM_GLOBALS: g\n"
        "Resources:\n  ProbeFunction:\n    Type: AWS::Serverless::Function\n    Properties:\n"
        f"      CodeUri: {code_uri}\n      Handler: app.handler\n      Timeout: {timeout}\n      MemorySize: 256\n"
        "      Environment:\n        Variables:\n          OWN: o\n",
        encoding="utf-8",
    )
    return template


def event_file(folder: Path, event: dict[str, Any]) -> Path:
    path = folder / "event.json"
    path.write_text(json.dumps(event), encoding="utf-8")
    return path


def test_invoke_given_a_function_runs_it_with_its_templates_environment_memory_and_timeout(tmp_path: Path) -> None:
    # Given a function whose template gives it variables (Globals and its own), 256 MB and a 1 s timeout
    template = probe_template(tmp_path, timeout=1)
    event = event_file(tmp_path, {"variables": ["FROM_GLOBALS", "OWN", "REDIS_URL"]})
    # When it is invoked
    response = answer(invoke("ProbeFunction", event, template=template, env=NO_REDIS))
    # Then it ran in a process of its own with the template's environment (no REDIS_URL: it declares none), its
    # memory size and a deadline of its timeout
    assert response["environment"] == {"FROM_GLOBALS": "g", "OWN": "o", "REDIS_URL": None}
    assert response["memory_limit_in_mb"] == 256 and 0 < response["remaining_ms"] <= 1000
    assert response["function_name"] == "ProbeFunction"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"fail": True}, "motorhead: ProbeFunction failed: RuntimeError: asked to fail"),
        ({"sleep": 30}, "motorhead: ProbeFunction failed: ProbeFunction timed out after 1 seconds (its Timeout)"),
    ],
    ids=["raises", "times-out"],
)
def test_invoke_given_a_handler_that_raises_or_runs_past_its_timeout_fails_saying_why(
    tmp_path: Path, event: dict[str, Any], message: str
) -> None:
    # Given a function with a 1 s timeout, and an event that makes it raise or sleep 30 s / When invoked
    run = invoke("ProbeFunction", event_file(tmp_path, event), template=probe_template(tmp_path), env=NO_REDIS)
    # Then it exits 1 (killed at its timeout, not 30 s later), with the reason last on stderr and nothing on stdout
    assert (run.returncode, run.stdout) == (1, ""), run.stderr
    assert run.stderr.rstrip("\n").splitlines()[-1] == message, run.stderr
    assert run.seconds < 15


def test_invoke_given_a_function_whose_init_fails_exits_1_saying_so(tmp_path: Path) -> None:
    # Given a function whose code is not there (its init, the import, fails)
    template = probe_template(tmp_path, code_uri=tmp_path / "missing")
    run = invoke("ProbeFunction", event_file(tmp_path, {}), template=template, env=NO_REDIS)
    # Then it exits 1, the import's traceback and the reason on stderr
    assert (run.returncode, run.stdout) == (1, ""), run.stderr
    assert run.stderr.rstrip("\n").splitlines()[-1] == (
        "motorhead: ProbeFunction failed: ProbeFunction did not start (its init failed: see the log above)"
    )


# -- make env-vars: sam local's --env-vars file ------------------------------------------------------------------


def declared_variables(function_id: str) -> set[str]:
    """The variables the template declares for a function (Globals and its own): all that SAM lets a file set."""
    template = load_template()
    globals_env = (template.get("Globals", {}).get("Function", {}).get("Environment") or {}).get("Variables", {})
    own = (template["Resources"][function_id]["Properties"].get("Environment") or {}).get("Variables", {})
    return set(globals_env) | set(own)


def test_env_vars_given_a_local_redis_points_every_function_of_the_template_at_it(tmp_path: Path) -> None:
    # Given a Redis the containers can reach / When `make env-vars` writes SAM's --env-vars file
    out = tmp_path / "env.json"
    done = subprocess.run(
        [sys.executable, "-m", "devserver.sam_env", "--redis-url", "redis://host.docker.internal:6380/0", "--out", out],
        cwd=REPO,
        env=user_environment(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    env_vars = json.loads(out.read_text(encoding="utf-8"))
    # Then it has every function of the template, by logical id, and only variables each declares (SAM sets no other)
    assert set(env_vars) == set(FUNCTIONS)
    producers = {c.url_env for c in load_queue_consumers() if c.url_env}
    for function_id, variables in env_vars.items():
        declared = declared_variables(function_id)
        assert set(variables) <= declared, function_id
        # And each that uses Redis is on the given one, with `make run`'s auth, and sends no job (no queues there)
        if "REDIS_URL" in declared:
            assert variables["REDIS_URL"] == "redis://host.docker.internal:6380/0", function_id
        assert variables["MOTORHEAD_AUTH"] == "none"
        assert all(variables[name] == "" for name in producers & declared), function_id
    assert env_vars["PostMemoryFunction"]["MOTORHEAD_SUMMARY_QUEUE_URL"] == ""
