"""What a deployment shows of itself: one structured log stream with the request id as correlation id and sessions
only as hashes, and CloudWatch EMF metrics (printed locally) with stable names."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from devserver.embedded_redis import EmbeddedRedis, free_port
from motorhead.core.values import SessionRef
from motorhead.observability import logger, session_hash
from tests.make_run import make_run, user_environment
from tests.support import REPO, Api, cold_start, get_event, load_event, messages, post_event, with_wrong_secret

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


def test_http_given_refusals_logs_one_line_each_with_the_key_id_and_source_address_only(
    redis_server: EmbeddedRedis, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given API keys, a rate of one request per ~17 minutes per tenant, and a session id and namespace to spot
    namespace = "zq-refused-namespace"
    with cold_start(
        REDIS_URL=redis_server.url,
        MOTORHEAD_AUTH="api-key",
        MOTORHEAD_API_KEY_CACHE_SECONDS="0",
        MOTORHEAD_RATE_LIMIT_RPS="0.001",
        MOTORHEAD_RATE_LIMIT_BURST="1",
    ) as secured:
        reader = secured.admin({"action": "create", "tenant": "readers", "scopes": ["read"]})
        busy = secured.admin({"action": "create", "tenant": "busy"})
        unknown_id = "0123456789abcdef"
        cases: list[tuple[str, dict[str, Any], dict[str, str], int, str | None]] = [
            ("GetMemoryFunction", get_event(SESSION), {}, 401, None),
            ("GetMemoryFunction", get_event(SESSION), {"x-api-key": "mhk_not-a-key"}, 401, None),
            ("GetMemoryFunction", get_event(SESSION), {"x-api-key": f"mhk_{unknown_id}_{'s' * 43}"}, 401, unknown_id),
            ("GetMemoryFunction", get_event(SESSION), {"authorization": "Basic !!"}, 401, None),
            (
                "PostMemoryFunction",
                post_event(SESSION, {"messages": []}, query=f"namespace={namespace}"),
                {"x-api-key": reader["key"]},
                403,
                reader["key_id"],
            ),
            ("GetMemoryFunction", get_event(SESSION), {"x-api-key": busy["key"]}, 200, None),
            ("GetMemoryFunction", get_event(SESSION), {"x-api-key": busy["key"]}, 429, busy["key_id"]),
        ]
        capfd.readouterr()
        caplog.clear()
        # When each request is sent
        for function_id, event, headers, status, _ in cases:
            event["headers"].update(headers)
            assert secured.invoke(function_id, event)["statusCode"] == status, (headers, status)
        records = logged(caplog) + lines(capfd.readouterr().out)
    # Then each refusal logged one line: its status, reason, the key's id (None when there is no well-formed key)
    # and the source address API Gateway saw
    refused = [r for r in records if r.get("message") == "request refused"]
    expected = [(status, key_id) for _, _, _, status, key_id in cases if status != 200]
    assert [(r["status"], r["origin"]["key_id"]) for r in refused] == expected
    source_ip = load_event("get_memory-ok")["requestContext"]["http"]["sourceIp"]
    assert all(r["origin"]["source_ip"] == source_ip and r["reason"] for r in refused)
    # And no line holds a key's secret, the session id or the namespace
    printed = "\n".join(json.dumps(r) for r in records)
    for secret in (reader["key"], busy["key"], "s" * 43, SESSION, namespace):
        assert secret not in printed


# Distinctive, so that any trace of them in a log line is found: as sent, percent-encoded, and in the words an id
# holds (a line could quote part of one)
PRIVATE_SESSION = "zqsess4b1e@mail.example"
PRIVATE_USER = "zquser93ad"
PRIVATE_NAMESPACE = "zqns51c0"


def created_key(data_dir: Path, tenant: str, scopes: str) -> str:
    """A key made by `make key` (``python -m devserver.keys create``) on the running server's Redis."""
    created = subprocess.run(
        [sys.executable, "-m", "devserver.keys", "create", "--tenant", tenant, "--scopes", scopes],
        cwd=REPO,
        env=user_environment(MOTORHEAD_DATA_DIR=str(data_dir)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    return created.stdout.splitlines()[-1]


def test_local_run_given_a_request_mix_never_logs_a_session_id_user_id_or_namespace(tmp_path: Path) -> None:
    # Given `make run` with API keys, long-term memory, a small window (summaries, index jobs) and a rate limit
    port = free_port()
    env = {
        "MOTORHEAD_AUTH": "api-key",
        "MOTORHEAD_LONG_TERM_MEMORY": "true",
        "MOTORHEAD_MAX_WINDOW_SIZE": "4",
        "MOTORHEAD_RATE_LIMIT_RPS": "0.01",
        "MOTORHEAD_RATE_LIMIT_BURST": "30",
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
    }
    session, user, namespace = quote(PRIVATE_SESSION, safe=""), PRIVATE_USER, PRIVATE_NAMESPACE
    memory = f"/sessions/{session}/memory"
    statuses: list[int] = []
    with make_run(tmp_path, port, **env) as server:
        key, reader = created_key(tmp_path, "acme", "read,write,delete,list"), created_key(tmp_path, "ro", "read")
        auth, read_only = {"x-api-key": key}, {"authorization": f"Bearer {reader}"}

        def send(
            method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, raw: bytes = b""
        ) -> int:
            """One request with ``path`` sent byte for byte (``requests`` would re-encode a malformed escape)."""
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                data = raw or (b"" if body is None else json.dumps(body).encode())
                sent = {"content-type": "application/json", **(headers or {})} if data else dict(headers or {})
                connection.request(method, path, body=data or None, headers=sent)
                status = connection.getresponse().status
            finally:
                connection.close()
            statuses.append(status)
            return status

        turns = {"messages": [{"role": "Human", "content": f"turn {i} about tomatoes"} for i in range(6)]}
        # When the mix runs: what works...
        assert send("POST", f"{memory}?namespace={namespace}&user_id={user}", turns, auth) == 200
        assert send("POST", f"{memory}?namespace={namespace}&user_id={user}", turns, auth) == 200
        assert send("GET", f"{memory}?namespace={namespace}", headers=auth) == 200
        assert send("GET", f"/sessions?namespace={namespace}&user_id={user}", headers=auth) == 200
        time.sleep(3)  # the summary and index jobs run meanwhile
        assert send("POST", f"/sessions/{session}/retrieval?namespace={namespace}", {"text": "tomatoes"}, auth) == 200
        assert send("POST", f"/users/{user}/retrieval", {"text": "tomatoes"}, auth) == 200
        # (the MCP tools too: a session written with another user, and an argument of the wrong type, are refused)
        for tool, arguments in [
            ("add_memory", {"session_id": PRIVATE_SESSION, "messages": turns["messages"][:1], "user_id": user}),
            ("get_memory", {"session_id": PRIVATE_SESSION}),
            ("list_sessions", {"namespace": namespace, "user_id": user}),
            ("search_memory", {"user_id": user, "text": "tomatoes"}),
            ("add_memory", {"session_id": PRIVATE_SESSION, "messages": turns["messages"][:1], "user_id": user + "x"}),
            ("get_memory", {"session_id": [PRIVATE_SESSION]}),
        ]:
            call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
            assert send("POST", "/mcp", call, {**auth, "accept": "application/json, text/event-stream"}) == 200
        # ... what is wrong...
        assert send("POST", f"{memory}?namespace={namespace}&user_id={user}x", turns, auth) == 409
        assert send("POST", memory, headers=auth, raw=b"{") == 400
        assert send("POST", memory, {"messages": "no"}, auth) == 422
        assert send("GET", f"/sessions/{session}%zz/memory", headers=auth) == 400
        assert send("GET", f"/sessions/{session}%FF/memory", headers=auth) == 400
        assert send("GET", f"{memory}?namespace={namespace}%", headers=auth) == 400
        assert send("GET", f"/sessions/{session}{'x' * 300}/memory", headers=auth) in (400, 413)
        assert send("GET", f"/sessions/{session}/nothing?namespace={namespace}", headers=auth) == 404
        assert send("PUT", f"{memory}?namespace={namespace}", headers=auth) == 405
        # ... what is refused...
        assert send("GET", f"{memory}?namespace={namespace}") == 401
        assert send("GET", f"{memory}?namespace={namespace}", headers={"x-api-key": with_wrong_secret(key)}) == 401
        assert send("POST", f"{memory}?namespace={namespace}&user_id={user}", turns, read_only) == 403
        while send("GET", f"{memory}?namespace={namespace}", headers=read_only) != 429:
            assert len(statuses) < 200, statuses
        # ... and the deletes
        assert send("DELETE", f"{memory}?namespace={namespace}", headers=auth) == 200
        assert send("DELETE", f"/users/{user}", headers=auth) == 200
    output = server.stdout.read() if server.stdout else ""
    # Then the log (the functions' lines and the gateway's access log, all of `make run`'s output) has all of it...
    assert output.count("request refused") >= 4 and '"GET /sessions/{session_id}/memory' in output, output[-3000:]
    # ... and not a trace of the session id, the user id or the namespace, in any form
    words = [PRIVATE_SESSION, session, PRIVATE_USER, PRIVATE_NAMESPACE, *PRIVATE_SESSION.split("@")]
    leaks = [(word, line) for line in output.splitlines() for word in words if word in line]
    assert not leaks, leaks[:5]
