"""The whole API fuzzed with schemathesis, through the local gateway, from the OpenAPI document the gateway serves.

Why: the hand-written tests check what we thought of; a fuzzer sends what we did not (wrong types, malformed and
non-JSON bodies, numbers past 64 bits, strings past every limit, odd query values, duplicated parameters, methods no
route has, session ids that broke Motorhead) and holds every answer to the README's promises: no 5xx while Redis is
up, every error ``{"error": "..."}`` as JSON, every body as the OpenAPI document describes it, and nothing but
``GET /`` answered without a credential.

Each run sends the same cases (derandomized Hypothesis, schemathesis's deterministic coverage phase, fixed
hand-picked cases), in two passes over every operation: with a valid API key, so requests reach the handlers and
their validation, and with no credential at all. It counts them and insists on at least ``MIN_CASES``.

Why schemathesis's strategies (``APIOperation.as_strategy``, ``BaseSchema.iter_coverage_cases``) under our own
``hypothesis.given`` rather than ``schemathesis.pytest.from_fixture(...).parametrize()``: the document exists only
once a fixture has started the gateway, which needs that lazy loader, and the lazy loader of schemathesis 4.32.5
sets ``request.node._nodeid``, which pytest 9.2 no longer has (AttributeError before any case runs).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeAlias
from urllib.parse import quote, unquote, urlsplit

import hypothesis
import hypothesis.core
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from hypothesis.vendor import pretty
from schemathesis import APIOperation, BaseSchema, Case, CheckContext, CheckFunction, GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from tests.integration.conftest import SecureApi

Operation: TypeAlias = APIOperation[Any, Any, Any, Any]
AnyCase: TypeAlias = Case[Any]

# Every operation of the API: a new route must be added here, or the first test below fails
OPERATIONS = [
    "GET /",
    "GET /keys/current",
    "GET /sessions",
    "GET /sessions/{session_id}",
    "GET /sessions/{session_id}/memory",
    "POST /sessions/{session_id}/memory",
    "DELETE /sessions/{session_id}/memory",
    "POST /sessions/{session_id}/retrieval",
    "POST /users/{user_id}/retrieval",
    "DELETE /users/{user_id}",
]
# The gateway's routing, for telling its own answers (404, 405, 400 for a path that is not UTF-8) from a function's
ROUTES = [
    re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(label.split(" ")[1])) + "$") for label in OPERATIONS
]
ROUTE_OF = dict(zip(OPERATIONS, ROUTES, strict=True))


def routed_path(url: str) -> str:
    """The path as the gateway routes it: one trailing slash ignored, as API Gateway ignores it."""
    path = urlsplit(url).path
    return path[:-1] if len(path) > 1 and path.endswith("/") else path


def routed_elsewhere(case: AnyCase, response: Response) -> bool:
    """An empty path parameter can make a request another route's (``GET /sessions/{id}`` with ``""`` is
    ``GET /sessions/``, which is ``GET /sessions``): its answer is that route's, not this operation's."""
    path = routed_path(response.request.url or "")
    own = ROUTE_OF.get(case.operation.label)
    return own is not None and not own.match(path) and any(route.match(path) for route in ROUTES)


# The statuses this API answers with Redis up, long-term memory off and no rate limit (README, "Errors")
ALLOWED_STATUSES = {200, 400, 401, 403, 404, 405, 409, 413, 422, 429, 503}
MIN_CASES = 1_000
MAX_BODY_BYTES = 1_048_576  # MOTORHEAD_MAX_BODY_BYTES's default
JSON = "application/json"

# Generated cases per operation and generation mode: bounded so the file runs in well under a minute on 2 cores
EXAMPLES = {"api-key": 60, "no credential": 20}
SETTINGS = hypothesis.settings(
    derandomize=True,  # the same cases on every run and every machine: a CI failure reproduces locally
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    print_blob=False,
)
CONFIG = {
    # with-security-parameters off: no generated credential; each pass sends its own (a valid key, or none)
    "generation": {"mode": "all", "deterministic": True, "database": "none", "with-security-parameters": False},
    "phases": {"coverage": {"generate-duplicate-query-parameters": True}},
}

# Session ids that broke Motorhead, or could break a Redis key, a hash tag, a glob, a path, a log line or a terminal
HOSTILE_SESSION_IDS = [
    "",  # no id at all: /sessions//memory routes nowhere
    ".",
    "..",
    "../../etc/passwd",
    "a/b",
    "%",
    "%2F",
    "%ZZ",
    "?q=1#frag",
    "*",
    "mh:*",
    "mh:t:*:messages",
    "{tag}",
    "}{",
    "{",
    "[a-z]",
    "with space",
    " ",
    "\t",
    "\r\n",
    "\x00",
    "\x1b[31mred",
    "' OR 1=1 --",
    "<script>alert(1)</script>",
    "${jndi:ldap://x}",
    "null",
    "\u202e\ufeff",
    "ünï 会话 🧠",
    "é" * 128,  # 256 bytes: the longest id
    "é" * 129,  # 258 bytes: one character too long
    "x" * 257,
    "🧠" * 64,
]
# Path segments sent as they are, not encoded: bad percent-encoding, and bytes that are not UTF-8
RAW_SESSION_SEGMENTS = ["%FF", "%C3", "%ED%A0%80", "%", "%Z", "%%"]
TOO_DEEP = 100_000  # far past Python's recursion limit: a recursive parser or validator would blow up


def encoded(session_id: str) -> str:
    """The id as a client puts it in the URL: percent-encoded, dots too (or "." and ".." would be path steps)."""
    return quote(session_id, safe="").replace(".", "%2E")


@dataclass
class FuzzPass:
    """One pass over every operation, every request carrying ``headers``: it sends cases, holds every answer to
    ``checks`` and counts the cases per operation."""

    name: str
    schema: BaseSchema
    headers: dict[str, str]
    checks: list[CheckFunction]
    ran: Counter[str] = field(default_factory=Counter)

    @classmethod
    def load(cls, base_url: str, name: str, headers: dict[str, str], checks: list[CheckFunction]) -> FuzzPass:
        """The schema as the running gateway serves it, so what is fuzzed is what clients see."""
        config = schemathesis.Config.from_dict(CONFIG)
        schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=config, timeout=10)
        return cls(name=name, schema=schema, headers=headers, checks=[*CHECKS, *checks])

    def operation(self, label: str) -> Operation:
        method, path = label.split(" ", 1)
        return self.schema[path][method]

    def run(self, operation: Operation) -> None:
        """Coverage cases, positive and (where there is something to break) negative random cases, hand-picked."""
        self.coverage(operation)
        self.fuzz(operation, GenerationMode.POSITIVE)
        if len(operation.query) or len(operation.body):  # GET /, GET memory...: no query, no body, a string id
            self.fuzz(operation, GenerationMode.NEGATIVE)
        for case in hand_picked_cases(operation):
            self.send(case)

    def send(self, case: AnyCase) -> None:
        """Send one case and hold its answer to every check; a failure raises with a curl command to replay it."""
        response = case.call(headers=self.headers or None, timeout=30)
        self.ran[case.operation.label] += 1
        case.validate_response(
            response, checks=self.checks, excluded_checks=[response_schema_conformance], headers=self.headers or None
        )

    def coverage(self, operation: Operation) -> None:
        """schemathesis's coverage phase: boundary values, each keyword violated in turn, wrong types, missing and
        duplicated parameters, and the methods the path does not have."""
        generation = self.schema.config.generation_for(operation=operation, phase="coverage")
        modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
        for case in self.schema.iter_coverage_cases(operation, generation_modes=modes, generation_config=generation):
            self.send(case)

    def fuzz(self, operation: Operation, mode: GenerationMode) -> None:
        """Random cases valid for the schema (positive) or violating it (negative: wrong types, out-of-range values,
        random bytes for a body), and in positive mode hostile session ids with generated bodies and queries."""
        strategy = operation.as_strategy(generation_mode=mode)
        if mode is GenerationMode.POSITIVE and "{session_id}" in operation.path:
            strategy = st.one_of(
                strategy,
                st.sampled_from(HOSTILE_SESSION_IDS).flatmap(
                    lambda session_id: operation.as_strategy(path_parameters={"session_id": encoded(session_id)})
                ),
            )

        @hypothesis.settings(SETTINGS, max_examples=EXAMPLES[self.name])
        @hypothesis.given(case=strategy)
        def fuzzed(case: AnyCase) -> None:
            self.send(case)

        fuzzed()


def hand_picked_cases(operation: Operation) -> Iterator[AnyCase]:
    """What a generator rarely produces: every hostile session id, raw bad path segments; bodies over each limit,
    nested past the recursion limit, with NaN, 400-digit numbers, lone surrogates, duplicate keys; odd queries."""
    label = operation.label
    session_ids = [encoded(session_id) for session_id in HOSTILE_SESSION_IDS] + RAW_SESSION_SEGMENTS
    if label == "GET /sessions/{session_id}/memory":
        for session_id in session_ids:
            yield operation.Case(path_parameters={"session_id": session_id})
    if label == "DELETE /sessions/{session_id}/memory":
        for i, session_id in enumerate(session_ids):
            namespace = HOSTILE_SESSION_IDS[-i % len(HOSTILE_SESSION_IDS)]
            yield operation.Case(path_parameters={"session_id": session_id}, query={"namespace": namespace})
    if label == "POST /sessions/{session_id}/memory":
        for session_id in session_ids:
            body: dict[str, Any] = {"messages": [{"role": "Human", "content": unquote(session_id)}], "context": "c"}
            yield operation.Case(path_parameters={"session_id": session_id}, body=body, media_type=JSON)
        ok = '{"messages": [{"role": "Human", "content": "hi"}]}'
        for raw in hostile_bodies(ok=ok, nested=ok[:-1] + ', "context": %s}'):
            yield operation.Case(path_parameters={"session_id": "raw"}, body=raw, media_type=JSON)
        for body in over_the_limits():
            yield operation.Case(path_parameters={"session_id": "huge"}, body=body, media_type=JSON)
    if label == "POST /sessions/{session_id}/retrieval":
        for session_id in session_ids:
            body = {"text": unquote(session_id) or "?", "k": 3}
            yield operation.Case(path_parameters={"session_id": session_id}, body=body, media_type=JSON)
        for raw in hostile_bodies(ok='{"text": "hi", "k": 3}', nested='{"text": "hi", "k": %s}'):
            yield operation.Case(path_parameters={"session_id": "raw"}, body=raw, media_type=JSON)
        for k in (0, -1, 101, 10**400, 1.5, "3", None, True, [3], {"k": 3}):
            body = {"text": "hi", "k": k}
            yield operation.Case(path_parameters={"session_id": "k"}, body=body, media_type=JSON)
        body = {"text": "x" * 8_193}  # over maxLength
        yield operation.Case(path_parameters={"session_id": "long"}, body=body, media_type=JSON)
    if label == "GET /sessions":
        for page, size in [(0, 10), (1, 0), (1, 101), (10**400, 10), (-(10**20), 1), ("1e3", "NaN"), ("", "")]:
            yield operation.Case(query={"page": page, "size": size})
        for namespace in ["n" * 257, "é" * 129, "\x00", "*", "mh:apikey:*", "{x}", "\ufffd"]:
            yield operation.Case(query={"namespace": namespace})


def hostile_bodies(*, ok: str, nested: str) -> Iterator[bytes]:
    """Bytes no JSON encoder writes, around a valid body ``ok`` (``nested`` has one ``%s`` for a value)."""
    yield b""
    yield b"{"
    yield ok.encode()[:-1]  # truncated
    yield ok.encode() + b"}"  # trailing garbage
    yield b"\xff\xfe" + ok.encode()  # not UTF-8
    yield ok.encode("utf-16")
    yield b"a\x00b"
    yield b"null"
    yield b"[]"
    yield b'"a string"'
    yield b"1e999"
    yield ("[" * TOO_DEEP + "]" * TOO_DEEP).encode()
    yield (nested % ("[" * TOO_DEEP + "]" * TOO_DEEP)).encode()
    yield (nested % ('{"a":' * TOO_DEEP + "1" + "}" * TOO_DEEP)).encode()
    yield (nested % "NaN").encode()
    yield (nested % "-Infinity").encode()
    yield (nested % ("9" * 400)).encode()
    yield (nested % '"\\ud800"').encode()  # a lone surrogate: valid JSON, not encodable as UTF-8
    yield (nested % '"\\u0000"').encode()
    yield ok.encode()[:-1] + b', "messages": null, "text": null}'  # duplicate keys: the last one wins


def over_the_limits() -> Iterator[dict[str, Any]]:
    """POST memory bodies over each limit of the README's 413 row (default settings), and at the limits."""
    yield {"messages": [{"role": "Human", "content": "x" * MAX_BODY_BYTES}]}  # the body, over 1 MiB
    yield {"messages": [{"role": "Human", "content": "x" * 65_537}]}  # one message over 64 KiB
    yield {"messages": [{"role": "Human", "content": "é" * 32_769}]}  # 65,538 bytes in 32,769 characters
    yield {"messages": [{"role": "Human", "content": "x" * 65_000}]}  # just under
    yield {"messages": [{"role": "Human", "content": "m"}] * 101}  # more than 100 messages
    yield {"messages": [{"role": "Human", "content": "m"}] * 100}  # exactly 100
    yield {"messages": [], "context": "c" * 65_537}  # a context over 64 KiB
    yield {"messages": [{"role": "r" * 65, "content": "m"}]}  # a role over 64 characters
    yield {"messages": [{"role": "\ud800", "content": "\udfff"}]}  # lone surrogates, escaped by the encoder
    yield {"messages": [{"role": "Human", "content": "m", "extra": [1] * 1_000}], "unknown": {"a": None}}


# --- what a response must be ------------------------------------------------------------------------------------


def header(response: Response, name: str) -> str:
    """A response header's value ("" when absent), whatever the case of its name."""
    return ", ".join(next((values for key, values in response.headers.items() if key.lower() == name), []))


def gateway_answer(case: AnyCase, response: Response) -> int | None:
    """The status the gateway answers without invoking a function (405: a method the path lacks; 400: a path or
    query that is not percent-encoded UTF-8, a "%" starting no escape included; 404: a path no route matches), or
    None when the request reaches a function."""
    url = urlsplit(response.request.url or "")
    path = url.path
    if re.search(r"%(?![0-9A-Fa-f]{2})", url.path + url.query):
        return 400
    routed = routed_path(response.request.url or "")
    if not any(route.match(routed) for route in ROUTES):
        return 404
    method = case.method.upper()
    if not any(route.match(routed) and label.split(" ")[0] == method for label, route in ROUTE_OF.items()):
        return 405  # a path of other routes only (``/sessions/memory`` is ``GET /sessions/{id}``'s)
    if case.method.upper() != case.operation.method.upper():  # schemathesis's "unexpected method" probes
        return 405
    try:
        unquote(path, errors="strict")
    except UnicodeDecodeError:
        return 400
    return None


def status_code_conformance_of_functions(ctx: CheckContext, response: Response, case: AnyCase) -> bool | None:
    """schemathesis's ``status_code_conformance`` on every answer of a function. The gateway's own 404 and 405 are
    in no function's OpenAPI document (as API Gateway's are not): ``status_is_documented`` checks those."""
    if gateway_answer(case, response) is not None or routed_elsewhere(case, response):
        return None
    return status_code_conformance(ctx, response, case)


def response_schema_conformance_of_its_route(ctx: CheckContext, response: Response, case: AnyCase) -> bool | None:
    """schemathesis's ``response_schema_conformance``, for an answer of the operation's own route."""
    if routed_elsewhere(case, response):
        return None
    return response_schema_conformance(ctx, response, case)


def status_is_documented(ctx: CheckContext, response: Response, case: AnyCase) -> bool | None:
    """The README's status table, gateway answers included."""
    assert response.status_code in ALLOWED_STATUSES, f"status {response.status_code} is not one of {ALLOWED_STATUSES}"
    return None


def errors_are_json(ctx: CheckContext, response: Response, case: AnyCase) -> bool | None:
    """README: "Every error is JSON: {"error": "..."}", with content-type application/json."""
    if response.status_code < 400:
        return None
    content_type = header(response, "content-type")
    assert content_type == JSON, f"error answered with content-type {content_type!r}: {response.content[:200]!r}"
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"error body is not JSON: {response.content[:200]!r}") from exc
    assert isinstance(body, dict) and set(body) == {"error"}, f"error body is not {{'error': ...}}: {body!r}"
    assert isinstance(body["error"], str) and body["error"], f"empty or non-string error message: {body!r}"
    return None


def ignored_auth_once_per_operation() -> CheckFunction:
    """schemathesis's ``ignored_auth`` on the first success of each operation: it replays that request with no
    credential, then with an invalid one, and fails unless both are refused. Once per operation, as its own runner
    does: on every success it would send five more requests and double the run's time."""
    confirmed: set[str] = set()

    def ignored_auth_once(ctx: CheckContext, response: Response, case: AnyCase) -> bool | None:
        if case.operation.label in confirmed or not 200 <= response.status_code < 300:
            return None
        ignored_auth(ctx, response, case)
        confirmed.add(case.operation.label)
        return None

    return ignored_auth_once


def key_is_always_accepted(ctx: CheckContext, response: Response, case: AnyCase) -> bool | None:
    """With a valid key holding every scope, no input may make the API forget who is calling; and retrieval, with
    long-term memory off, never succeeds."""
    assert response.status_code not in (401, 403), f"a valid key was refused: {response.content[:200]!r}"
    if case.operation.label == "POST /sessions/{session_id}/retrieval":
        assert response.status_code != 200, "retrieval answered 200 with long-term memory off"
    return None


def everything_but_health_needs_a_credential(ctx: CheckContext, response: Response, case: AnyCase) -> bool | None:
    """Security: without a credential, every request a function receives is refused with 401 and a challenge,
    whatever its input (a malformed or oversized body included: access is decided before the body is read), except
    ``GET /`` (public). What the gateway answers itself (404, 405, 400) never reaches a function."""
    expected = gateway_answer(case, response)
    if expected is None:
        expected = 200 if case.operation.label == "GET /" else 401
    assert response.status_code == expected, f"expected {expected}, got {response.status_code}: {response.content!r}"
    if expected == 401:
        assert "Bearer" in header(response, "www-authenticate"), "401 without a WWW-Authenticate challenge"
    return None


CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance_of_functions,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    unsupported_method,
    allow_header_conformance,
    status_is_documented,
    errors_are_json,
]


# --- tests ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def hypothesis_printer_restored() -> Iterator[None]:
    """schemathesis, on first use, swaps Hypothesis's example printer process-wide for one that prints nothing (its
    own speed-up), which would leave every later property test's failure without its example ("Failing test case:
    test_x(n=,)"). Hypothesis's own printer is put back when the fuzzing is done."""
    yield
    hypothesis.core.RepresentationPrinter = pretty.RepresentationPrinter  # type: ignore[attr-defined]


def test_openapi_given_the_running_gateway_lists_exactly_the_operations_fuzzed(secure: SecureApi) -> None:
    # Given the document the running gateway serves / When its operations are listed
    results = list(FuzzPass.load(secure.base_url, "no credential", {}, []).schema.get_all_operations())
    # Then each is valid and they are exactly the ones fuzzed: a new route cannot slip past the fuzzer
    assert all(isinstance(result, Ok) for result in results), results
    assert sorted(result.ok().label for result in results if isinstance(result, Ok)) == sorted(OPERATIONS)


@pytest.mark.usefixtures("hypothesis_printer_restored")
def test_fuzzing_given_every_operation_with_a_key_and_without_answers_no_5xx_and_only_json_errors(
    secure: SecureApi, subtests: pytest.Subtests
) -> None:
    """Both passes in one test, so that one count covers them: at least ``MIN_CASES`` cases, every operation
    reached in each pass. A failing operation is a failed subtest; the others still run."""
    # Given the served schema twice: requests with a valid key of every scope, and requests with no credential
    key = secure.key("fuzz")
    passes = [
        FuzzPass.load(
            secure.base_url,
            "api-key",
            {"Authorization": f"Bearer {key}"},
            [ignored_auth_once_per_operation(), key_is_always_accepted],
        ),
        FuzzPass.load(secure.base_url, "no credential", {}, [everything_but_health_needs_a_credential]),
    ]
    # When every operation gets its coverage cases, positive and negative random cases, and the hand-picked ones
    for fuzz in passes:
        for label in OPERATIONS:
            with subtests.test(msg=f"{fuzz.name}: {label}"):
                fuzz.run(fuzz.operation(label))
    # Then every answer passed every check (a failure fails its subtest, with a curl command to replay it)...
    ran = {fuzz.name: dict(fuzz.ran) for fuzz in passes}
    assert all(fuzz.ran[label] > 0 for fuzz in passes for label in OPERATIONS), ran
    # ...and the passes sent at least MIN_CASES cases
    total = sum(sum(fuzz.ran.values()) for fuzz in passes)
    assert total >= MIN_CASES, f"only {total} cases ran: {ran}"
    print(f"\nfuzzing sent {total} cases: {ran}")


@pytest.mark.parametrize("path", ["/sessions/s/memory", "/sessions/s/retrieval"])
def test_post_given_no_credential_and_a_body_that_is_not_json_answers_401(secure: SecureApi, path: str) -> None:
    """The fuzzer's finding (FastAPI parsed the body before the credential was checked), fixed: access is decided
    before the body is read."""
    for body in (b"\x00", b"[" * TOO_DEEP + b"]" * TOO_DEEP):
        # Given no credential and a body that does not decode as JSON
        # When it is posted
        response = requests.post(secure.base_url + path, data=body, headers={"content-type": JSON}, timeout=10)
        # Then the credential is asked for first, as with any other body
        assert response.status_code == 401, (body[:8], response.text)
        assert "Bearer" in response.headers["www-authenticate"]
