"""What a deployment shows of itself: one structured log stream with the request id as correlation id and sessions
only as hashes, and CloudWatch EMF metrics (printed locally) with stable names."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devserver.embedded_redis import EmbeddedRedis, free_port
from motorhead.core.values import SessionRef
from motorhead.observability import logger, session_hash
from tests.support import Api, cold_start, get_event, load_event, messages, post_event

SESSION = "ana@example.com"


def lines(captured: str) -> list[dict[str, Any]]:
    found = []
    for line in captured.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def logged(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The log records as the one Logger prints them (JSON lines, with the invocation's keys)."""
    return [json.loads(logger.registered_formatter.format(record)) for record in caplog.records]


def emf(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if "_aws" in r]


def metric_names(records: list[dict[str, Any]]) -> set[str]:
    return {m["Name"] for r in emf(records) for d in r["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}


def test_http_given_requests_logs_with_the_request_id_and_counts_them_by_route_and_status(
    api: Api, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given a POST and a GET of a session whose id is an e-mail address
    capfd.readouterr()
    post = post_event(SESSION, {"messages": [{"role": "Human", "content": "hi"}]})
    assert api.invoke("PostMemoryFunction", post)["statusCode"] == 200
    get = get_event(SESSION)
    assert api.invoke("GetMemoryFunction", get)["statusCode"] == 200
    records = lines(capfd.readouterr().out)
    # Then each invocation flushed EMF metrics: Requests and Latency, by service, route and status
    metrics = emf(records)
    assert len(metrics) == 2
    for record, route in zip(
        metrics, ["POST /sessions/{session_id}/memory", "GET /sessions/{session_id}/memory"], strict=True
    ):
        assert record["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Motorhead"
        assert (record["route"], record["status"], record["service"]) == (route, "200", "motorhead")
        assert record["Requests"] == [1.0] and record["Latency"][0] > 0
    # And nothing printed holds the session id in clear
    assert all(SESSION not in json.dumps(record) for record in records)


def test_http_given_a_failure_logs_it_with_the_correlation_id_and_only_the_session_hash(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given a Redis that is down, and a POST to a session whose id is an e-mail address
    with cold_start(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0") as down:
        event = post_event(SESSION, {"messages": [{"role": "Human", "content": "x"}]})
        caplog.clear()
        # When it fails
        assert down.invoke("PostMemoryFunction", event)["statusCode"] == 503
        records = logged(caplog) + lines(capfd.readouterr().out)
    # Then one error line says so, with the invocation's context, the request id and the session's hash only
    (failed,) = [r for r in records if r.get("message") == "request failed"]
    assert failed["level"] == "ERROR" and failed["function_name"] == "PostMemoryFunction"
    assert failed["correlation_id"] == event["requestContext"]["requestId"]
    assert failed["session"] == session_hash(SessionRef(tenant="", id=SESSION))
    assert all(SESSION not in json.dumps(record) for record in records)


def test_jobs_given_a_summary_job_reports_what_it_did(
    api: Api, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given the sample summary job's session (session-42) over the window of 12
    api.invoke("PostMemoryFunction", post_event("session-42", {"messages": messages(20)}))
    capfd.readouterr()
    caplog.clear()
    # When the summarizer runs the job
    assert api.invoke("SummarizerFunction", load_event("summarizer-job")) == {"batchItemFailures": []}
    records = logged(caplog) + lines(capfd.readouterr().out)
    # Then it reports the job, its commits and what it folded, and logs with the session's hash
    (flushed,) = emf(records)
    assert {
        "SummaryJobs",
        "SummaryCommits",
        "SummaryConflicts",
        "MessagesFolded",
        "LLMCalls",
        "LLMTokens",
    } <= metric_names(records)
    assert (flushed["SummaryJobs"], flushed["SummaryCommits"], flushed["MessagesFolded"]) == ([1.0], [1.0], [14.0])
    done = next(r for r in records if r.get("message") == "summary job done")
    assert done["session"] == session_hash(SessionRef(tenant="", id="session-42")) and "session-42" not in json.dumps(
        done
    )


def test_http_given_refused_credentials_counts_auth_failures(
    redis_server: EmbeddedRedis, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    with cold_start(REDIS_URL=redis_server.url, MOTORHEAD_AUTH="api-key") as secured:
        capfd.readouterr()
        caplog.clear()
        assert secured.invoke("GetMemoryFunction", get_event("s"))["statusCode"] == 401
        records = logged(caplog) + lines(capfd.readouterr().out)
    assert {"AuthFailures", "Requests", "Latency"} <= metric_names(records)
    refused = [r for r in records if r.get("message") == "request refused"]
    assert refused and refused[0]["correlation_id"] == load_event("get_memory-ok")["requestContext"]["requestId"]
    assert refused[0]["function_name"] == "GetMemoryFunction" and refused[0]["status"] == 401


def test_http_given_event_logging_turned_on_by_the_environment_never_logs_credentials(
    redis_server: EmbeddedRedis, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given an operator who set POWERTOOLS_LOGGER_LOG_EVENT=true, and a request carrying a credential
    with cold_start(REDIS_URL=redis_server.url, MOTORHEAD_AUTH="api-key", POWERTOOLS_LOGGER_LOG_EVENT="true") as api:
        capfd.readouterr()
        caplog.clear()
        event = get_event("s")
        event["headers"]["x-api-key"] = "mhk_0123456789abcdef_" + "s" * 43
        event["headers"]["authorization"] = "Bearer not-a-key-but-a-secret-all-the-same"
        assert api.invoke("GetMemoryFunction", event)["statusCode"] == 401
        printed = capfd.readouterr().out + "\n".join(json.dumps(r) for r in logged(caplog))
    # Then no event was logged: neither credential appears anywhere
    assert "s" * 43 not in printed and "not-a-key-but-a-secret" not in printed
