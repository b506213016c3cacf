"""Every failure is a generic JSON error with the right status, and the detail only in the log: Redis's error replies
mapped in ``mapped_errors`` (built by redis-py's own parser, no network), the HTTP table, its headers, and the bodies
of a real app, which never hold an error's detail."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient
from redis import exceptions as redis_errors
from redis._parsers.base import BaseParser
from redis.client import Pipeline

from motorhead.adapters.redis_db.connector import PasswordUnavailableError, mapped_errors, reply_code
from motorhead.entrypoints.http.app import create_app
from motorhead.entrypoints.http.errors import headers_for, message_for, status_for
from motorhead.errors import (
    AuthenticationError,
    AuthUnavailableError,
    ConfigError,
    EmbeddingError,
    EmbeddingUnavailableError,
    ForbiddenError,
    InvalidInputError,
    JobIncompleteError,
    MotorheadError,
    PayloadTooLargeError,
    RateLimitedError,
    SecretUnavailableError,
    StoreDegradedError,
    StoreUnavailableError,
    SummarizerError,
)
from motorhead.settings import Settings

CHALLENGE = 'Bearer realm="motorhead"'
SECRET_LOOKING = "sk-live-0123456789abcdef at https://10.0.0.7:6379 secret prod/openai-key"
# redis-py's own code (untyped): the parser that turns an error reply into an exception, the pipeline's annotation
PARSE_ERROR: Callable[[str], BaseException] = BaseParser.parse_error
ANNOTATE: Callable[[Any, BaseException, int, Sequence[str]], None] = Pipeline.annotate_exception
E = TypeVar("E", bound=redis_errors.RedisError)


def reply(text: str) -> redis_errors.RedisError:
    """The exception redis-py raises for this error reply (``-<text>`` on the wire), made by its own parser."""
    error = PARSE_ERROR(text)
    assert isinstance(error, redis_errors.RedisError)
    return error


def pipelined(error: E) -> E:
    """``error`` as redis-py raises it for the first command of a pipeline: a reply error's message prefixed with
    the command, by redis-py's own code (LOADING, a ConnectionError to it, is raised as it is)."""
    if isinstance(error, redis_errors.ResponseError):
        ANNOTATE(None, error, 1, ("ZRANGE", "mh:{ab12}:messages", "0", "9"))
    return error


def response_error(text: str) -> redis_errors.ResponseError:
    error = reply(text)
    assert isinstance(error, redis_errors.ResponseError)
    return error


def mapped(error: BaseException) -> BaseException:
    """What leaves ``mapped_errors`` when ``error`` is raised inside it."""
    with pytest.raises(BaseException) as raised, mapped_errors():
        raise error
    return raised.value


# --- Redis: a server state that passes is a 503 ---------------------------------------------------------------------
SERVER_STATES = [
    ("OOM command not allowed when used memory > 'maxmemory'.", "OOM"),
    ("READONLY You can't write against a read only replica.", "READONLY"),
    ("LOADING Redis is loading the dataset in memory", "LOADING"),
    ("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.", "MASTERDOWN"),
    ("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.", "BUSY"),
    ("NOREPLICAS Not enough good replicas to write.", "NOREPLICAS"),
    ("MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk.", "MISCONF"),
    ("CLUSTERDOWN The cluster is down", "CLUSTERDOWN"),
    ("TRYAGAIN Multiple keys request during rehashing of slot", "TRYAGAIN"),
    ("MOVED 3999 127.0.0.1:6381", "MOVED"),
    ("ASK 3999 127.0.0.1:6381", "ASK"),
]
STATE_IDS = [code for _, code in SERVER_STATES]


@pytest.mark.parametrize(("text", "code"), SERVER_STATES, ids=STATE_IDS)
def test_mapped_errors_given_a_passing_server_state_raises_store_degraded_with_a_fixed_message(
    text: str, code: str
) -> None:
    # Given the error reply of a Redis that refuses the command for now / When it is raised inside mapped_errors
    error = reply(text)
    raised = mapped(error)

    # Then it is a StoreDegradedError (a StoreUnavailableError: a 503), its message fixed, the reply in its detail
    assert isinstance(raised, StoreDegradedError) and isinstance(raised, StoreUnavailableError)
    assert str(raised) == "redis unavailable"
    assert raised.detail is not None and f" {code}:" in raised.detail
    assert raised.__cause__ is error


@pytest.mark.parametrize(("text", "code"), SERVER_STATES, ids=STATE_IDS)
def test_mapped_errors_given_a_passing_state_in_a_pipeline_raises_store_degraded(text: str, code: str) -> None:
    # Given the same reply to a pipelined command (redis-py prefixes it with the command and its arguments)
    raised = mapped(pipelined(reply(text)))

    # Then it maps the same, and the detail holds the reply without the command (user data)
    assert isinstance(raised, StoreDegradedError)
    assert raised.detail is not None and f" {code}:" in raised.detail
    assert "ZRANGE" not in raised.detail and "mh:{ab12}" not in raised.detail


@pytest.mark.parametrize(
    "text",
    [
        "WRONGTYPE Operation against a key holding the wrong kind of value",
        "ERR user_script:1: Script attempted to access nonexistent global variable 'x'",
        "NOPERM User default has no permissions to run the 'eval' command",
        "BUSYKEY Target key name already exists.",
        "ERR the reply mentions OOM, BUSY and READONLY, but not first",
    ],
    ids=["wrongtype", "lua-bug", "noperm", "busykey-is-not-busy", "codes-past-the-first-word"],
)
def test_mapped_errors_given_another_reply_error_raises_it_unchanged(text: str) -> None:
    # Given a reply error that is a bug of ours, not a passing state (only the first word is a code)
    error = reply(text)

    # When it is raised inside mapped_errors / Then it leaves as it is (the HTTP layer answers a generic 500)
    assert mapped(error) is error
    assert mapped(pipelined(reply(text))).__class__ is type(error)


@pytest.mark.parametrize(
    "error",
    [
        redis_errors.ConnectionError("Error 111 connecting to 10.0.0.7:6379. Connection refused."),
        redis_errors.TimeoutError("Timeout reading from 10.0.0.7:6379"),
        redis_errors.AuthenticationError("invalid username-password pair or user is disabled."),
        redis_errors.RedisClusterException(
            "Redis Cluster cannot be connected. Please provide at least one reachable node"
        ),
    ],
    ids=["refused", "timeout", "wrong-password", "no-cluster-node"],
)
def test_mapped_errors_given_an_unreachable_redis_raises_store_unavailable_naming_no_host(error: Exception) -> None:
    # Given Redis unreachable, silent, refusing the password, or a cluster no node of which answers
    if isinstance(error, redis_errors.RedisClusterException):
        error.__cause__ = redis_errors.ConnectionError("Error 111 connecting to 10.0.0.7:6379.")

    # When it is raised inside mapped_errors
    raised = mapped(error)

    # Then it is a StoreUnavailableError, not a degraded one, whose message names no host; the detail says what failed
    assert type(raised) is StoreUnavailableError
    assert str(raised) == "redis unavailable"
    assert raised.detail is not None and "Error" in raised.detail


@pytest.mark.parametrize(
    "error",
    [redis_errors.ClusterError("TTL exhausted."), redis_errors.SlotNotCoveredError('Slot "12" not covered')],
    ids=["moved-ask-storm", "slot-not-covered"],
)
def test_mapped_errors_given_a_cluster_client_giving_up_raises_store_degraded(error: Exception) -> None:
    # Given a cluster client out of redirections (MOVED/ASK storm) or without a node for a slot
    raised = mapped(error)

    # Then it is a passing state of the cluster
    assert isinstance(raised, StoreDegradedError) and str(raised) == "redis unavailable"


def test_mapped_errors_given_a_password_getter_failing_raises_its_own_domain_error() -> None:
    # Given a getter that raised SecretUnavailableError while a connection authenticated
    failure = PasswordUnavailableError("the redis password could not be read")
    failure.__cause__ = SecretUnavailableError("a secret this deployment needs could not be read")

    # When it is raised inside mapped_errors / Then the getter's own error leaves, which says what failed
    assert mapped(failure) is failure.__cause__


def test_mapped_errors_given_a_passing_state_logs_the_detail(caplog: pytest.LogCaptureFixture) -> None:
    # Given a log capture / When an OOM reply is mapped
    with caplog.at_level(logging.WARNING, logger="motorhead.adapters.redis_db.connector"):
        mapped(reply("OOM command not allowed when used memory > 'maxmemory'."))

    # Then the log has the reply (the answer will not)
    logged = [str(getattr(record, "error", "")) for record in caplog.records]
    assert any("OOM" in line and "maxmemory" in line for line in logged)


def test_reply_code_given_a_typed_and_an_untyped_reply_reads_only_the_first_word() -> None:
    assert reply_code(response_error("OOM command not allowed")) == ("OOM", "command not allowed")
    assert reply_code(response_error("BUSY Redis is busy")) == ("BUSY", "Redis is busy")
    assert reply_code(pipelined(response_error("NOREPLICAS Not enough good replicas"))) == (
        "NOREPLICAS",
        "Not enough good replicas",
    )


# --- the HTTP table ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (
            InvalidInputError("session id is 300 bytes; the limit is 256"),
            400,
            "session id is 300 bytes; the limit is 256",
        ),
        (AuthenticationError("token expired"), 401, "token expired"),
        (ForbiddenError("this credential does not allow 'write'"), 403, "this credential does not allow 'write'"),
        (
            PayloadTooLargeError("4 messages in one request; the limit is 3"),
            413,
            "4 messages in one request; the limit is 3",
        ),
        (RateLimitedError("too many requests", retry_after=2.5), 429, "too many requests"),
        (EmbeddingError("x", detail=SECRET_LOOKING), 502, "the embedding provider failed"),
        (EmbeddingUnavailableError("x", detail=SECRET_LOOKING), 503, "the embedding provider is unavailable"),
        (StoreUnavailableError("redis unavailable: ConnectionError"), 503, "redis unavailable"),
        (StoreDegradedError("x", detail="OutOfMemoryError OOM: ..."), 503, "redis unavailable"),
        (SecretUnavailableError("x"), 503, "a secret this deployment needs could not be read"),
        (
            AuthUnavailableError("keys could not be fetched (URLError)"),
            503,
            "the identity provider's signing keys could not be fetched",
        ),
        (SummarizerError("x", detail=SECRET_LOOKING), 500, "the summary model failed"),
        (ConfigError("REDIS_URL: not set"), 500, "the service is misconfigured"),
        (JobIncompleteError("indexed 3 messages"), 500, "internal error"),
        (MotorheadError(SECRET_LOOKING), 500, "internal error"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else None,
)
def test_table_given_each_domain_error_answers_its_status_and_public_message(
    error: MotorheadError, status: int, message: str
) -> None:
    # Given a domain error / When the table is read / Then a 4xx keeps its own message, a 5xx gets the fixed text
    assert (status_for(error), message_for(error)) == (status, message)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (StoreDegradedError("x"), {"Retry-After": "1"}),
        (EmbeddingUnavailableError("x"), {"Retry-After": "1"}),
        (SecretUnavailableError("x"), {"Retry-After": "1"}),
        (RateLimitedError("x", retry_after=2.5), {"Retry-After": "3"}),
        (AuthenticationError("x"), {"WWW-Authenticate": CHALLENGE}),
        (EmbeddingError("x"), {}),
        (ConfigError("x"), {}),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else None,
)
def test_headers_given_each_error_says_when_to_retry_or_how_to_authenticate(
    error: MotorheadError, expected: dict[str, str]
) -> None:
    assert headers_for(error, status_for(error), challenge=CHALLENGE) == expected


def test_detail_given_an_error_is_a_note_for_tracebacks_and_never_its_message() -> None:
    # Given an error built with a detail
    error = EmbeddingError("the embedding provider failed", detail=SECRET_LOOKING)

    # Then str() is the public message, the detail is kept and shown with a traceback, not without
    assert str(error) == "the embedding provider failed"
    assert error.detail == SECRET_LOOKING
    assert error.__notes__ == [f"detail: {SECRET_LOOKING}"]
    assert EmbeddingError("no detail").detail is None


# --- the app: bodies never hold the detail ----------------------------------------------------------------------
@pytest.fixture
def failing() -> Iterator[tuple[TestClient, list[BaseException]]]:
    """An app with the project's error contract whose one route raises what the test puts in the list."""
    app = create_app(title="failing", settings=Settings())
    to_raise: list[BaseException] = []

    @app.get("/fail")
    def fail() -> None:
        raise to_raise[0]

    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, to_raise


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (
            EmbeddingError("embedding call failed: " + SECRET_LOOKING, detail=SECRET_LOOKING),
            502,
            "the embedding provider failed",
        ),
        (
            EmbeddingUnavailableError("x " + SECRET_LOOKING, detail=SECRET_LOOKING),
            503,
            "the embedding provider is unavailable",
        ),
        (StoreUnavailableError("search index mh:idx not ready: " + SECRET_LOOKING), 503, "redis unavailable"),
        (StoreDegradedError("redis unavailable", detail=SECRET_LOOKING), 503, "redis unavailable"),
        (
            AuthUnavailableError("the issuer's keys could not be fetched (" + SECRET_LOOKING + ")"),
            503,
            "the identity provider's signing keys could not be fetched",
        ),
        (ConfigError("cannot load " + SECRET_LOOKING), 500, "the service is misconfigured"),
        (
            reply("WRONGTYPE Operation against a key holding the wrong kind of value " + SECRET_LOOKING),
            500,
            "internal error",
        ),
        (RuntimeError(SECRET_LOOKING), 500, "internal error"),
        (HTTPException(502, detail=SECRET_LOOKING), 502, "internal error"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else None,
)
def test_app_given_a_failure_answers_json_with_a_fixed_message_and_logs_the_detail(
    failing: tuple[TestClient, list[BaseException]],
    caplog: pytest.LogCaptureFixture,
    error: BaseException,
    status: int,
    message: str,
) -> None:
    # Given a route that fails with an error whose message or detail holds a key, a host and a secret's name
    client, to_raise = failing
    to_raise.append(error)

    # When it is called
    with caplog.at_level(logging.INFO):
        answer = client.get("/fail")

    # Then the answer is the fixed JSON error, with nothing of the detail
    assert answer.status_code == status
    assert answer.json() == {"error": message}
    assert "sk-live" not in answer.text and "10.0.0.7" not in answer.text and "prod/openai-key" not in answer.text
    assert (answer.headers.get("retry-after") == "1") == (status == 503)
    # and the log has it, for the operator
    logged = "\n".join(
        " ".join(str(part) for part in (record.getMessage(), getattr(record, "error", ""), record.exc_text))
        + str(getattr(record, "detail", ""))
        for record in caplog.records
    )
    assert "sk-live" in logged


def test_app_given_a_client_error_answers_its_own_useful_message(
    failing: tuple[TestClient, list[BaseException]],
) -> None:
    # Given a route refusing a value / When it is called / Then the client reads why, as written for it
    client, to_raise = failing
    to_raise.append(PayloadTooLargeError("4 messages in one request; the limit is 3"))
    answer = client.get("/fail")
    assert answer.status_code == 413 and answer.json() == {"error": "4 messages in one request; the limit is 3"}
