"""One source of truth for routing: template.yaml. The local gateway reads it; these tests hold the rest to it."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from fastapi.routing import APIRoute

from devserver.template import load_function_specs, load_queue_consumers, load_routes, load_template
from motorhead.entrypoints.http.lambda_adapter import MOUNT
from motorhead.entrypoints.mcp.http import METADATA_PATHS as MCP_METADATA_PATHS
from motorhead.entrypoints.mcp.http import METHODS as MCP_METHODS
from motorhead.entrypoints.mcp.http import PATH as MCP_PATH
from tests.support import EVENTS, REPO, cold_start

ROUTES = load_routes()


def test_template_given_functions_dir_has_one_function_per_folder() -> None:
    # Given the functions/ folders / Then each is the CodeUri of a template function, and vice versa; all but the
    # admin function (invoked through the AWS API only) are fed by a route or a queue
    folders = {p.parent.resolve() for p in (REPO / "functions").glob("*/app.py")}
    assert folders == {spec.code_uri for spec in load_function_specs().values()}
    fed = {route.code_uri for route in ROUTES} | {c.code_uri for c in load_queue_consumers()}
    assert folders - fed == {load_function_specs()["AdminFunction"].code_uri}


def test_template_given_each_function_declares_exactly_its_app_routes() -> None:
    # Given each function's FastAPI app, loaded as Lambda loads it (nothing listens at REDIS_URL: import needs no Redis)
    with cold_start(REDIS_URL="redis://127.0.0.1:1/0") as api:
        for function_id, function in api.by_id.items():
            # When the routes its app serves are listed
            served = {
                (method, route.path)
                for route in getattr(function.module.app, "routes", ())
                if isinstance(route, APIRoute)
                for method in route.methods or ()
            }
            metadata: set[tuple[str, str]] = set()
            if function_id == "McpFunction":  # not a FastAPI app: the SDK's endpoint, one path, and RFC 9728's
                served = {(method, MCP_PATH) for method in MCP_METHODS}
                metadata = {("GET", path) for path in MCP_METADATA_PATHS}  # one per resource, /motorhead/mcp's too
            # Then they are exactly the HttpApi events the template gives that function, each also under /motorhead
            declared = {(r.method, r.path) for r in ROUTES if r.function_id == function_id}
            mounted = {(method, MOUNT + path.rstrip("/")) for method, path in served}
            assert declared == served | mounted | metadata, function_id


def test_template_given_queue_consumers_are_fed_by_their_fifo_queues_only() -> None:
    # Given the template / Then the summarizer and the indexer have no HTTP route, each reads its own FIFO queue,
    # and the post function gets each queue's URL through its own variable
    consumers = {(c.function_id, c.queue_id, c.fifo, c.url_env) for c in load_queue_consumers()}
    assert consumers == {
        ("SummarizerFunction", "SummaryQueue", True, "MOTORHEAD_SUMMARY_QUEUE_URL"),
        ("IndexerFunction", "IndexQueue", True, "MOTORHEAD_INDEX_QUEUE_URL"),
    }
    assert not {c.function_id for c in load_queue_consumers()} & {route.function_id for route in ROUTES}


def test_template_given_routes_covers_motorhead_api_also_under_the_n8n_prefix() -> None:
    api = {
        "GET /",
        "GET /sessions",
        "GET /sessions/{session_id}",
        "GET /sessions/{session_id}/memory",
        "POST /sessions/{session_id}/memory",
        "DELETE /sessions/{session_id}/memory",
        "POST /sessions/{session_id}/retrieval",
        "POST /users/{user_id}/retrieval",
        "DELETE /users/{user_id}",
        "GET /keys/current",
        "GET /console",
        "GET /console/{file}",
        "POST /mcp",
        "GET /mcp",
        "DELETE /mcp",
    }
    mounted = {f"{key.split()[0]} {MOUNT}{key.split()[1].rstrip('/')}" for key in api}
    # RFC 9728: the metadata of /mcp and of /motorhead/mcp, each at /.well-known/oauth-protected-resource + its path
    metadata = {
        "GET /.well-known/oauth-protected-resource/mcp",
        "GET /.well-known/oauth-protected-resource/motorhead/mcp",
    }
    assert {route.route_key for route in ROUTES} == api | mounted | metadata


HTTP_EVENTS = sorted(p for p in EVENTS.glob("*.json") if "routeKey" in json.loads(p.read_text(encoding="utf-8")))
SQS_EVENTS = sorted(p for p in EVENTS.glob("*.json") if "Records" in json.loads(p.read_text(encoding="utf-8")))


@pytest.mark.parametrize("event_file", HTTP_EVENTS, ids=lambda p: p.stem)
def test_events_given_sample_event_match_a_template_route(event_file: Path) -> None:
    # Given a sample event / Then its routeKey and path fit the route of the function it is named after
    event = json.loads(event_file.read_text(encoding="utf-8"))
    assert event["version"] == "2.0"
    matching = [r for r in ROUTES if r.route_key == event["routeKey"]]
    assert len(matching) == 1
    route = matching[0]
    assert route.code_uri.name == event_file.stem.split("-")[0]
    assert (route.match(event["rawPath"]) or {}) == event.get("pathParameters", {})


def test_events_given_every_http_function_have_an_ok_event_to_invoke_it_with() -> None:
    # Given the template's HTTP functions / Then each has `<function>-ok.json` (the cold-start benchmark, `make run`'s
    # docs and the local gateway's examples invoke each function with it)
    names = {route.code_uri.name for route in ROUTES}
    assert {name for name in names if not (EVENTS / f"{name}-ok.json").is_file()} == set()


@pytest.mark.parametrize("event_file", SQS_EVENTS, ids=lambda p: p.stem)
def test_events_given_sqs_sample_event_is_for_a_queue_consumer(event_file: Path) -> None:
    # Given an SQS sample event / Then it is named after a queue consumer and its records are intact FIFO records
    event = json.loads(event_file.read_text(encoding="utf-8"))
    consumers = {c.code_uri.name for c in load_queue_consumers()}
    assert event_file.stem.split("-")[0] in consumers
    for record in event["Records"]:
        assert record["eventSource"] == "aws:sqs"
        assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()
        assert record["attributes"]["MessageGroupId"]


def test_route_match_given_encoded_hostile_id_decodes_the_parameter() -> None:
    (route,) = [r for r in ROUTES if r.route_key == "GET /sessions/{session_id}/memory"]
    assert route.match("/sessions/a%2Fb%20%7B%7D/memory") == {"session_id": "a/b {}"}
    assert route.match("/sessions/a/b/memory") is None
    assert route.match("/sessions//memory") is None


def test_template_given_cfn_lint_reports_nothing() -> None:
    # Given the SAM template / When cfn-lint checks it / Then it reports no finding at all
    cfn_lint = shutil.which("cfn-lint") or str(Path(__import__("sys").executable).parent / "cfn-lint")
    result = subprocess.run([cfn_lint, str(REPO / "template.yaml")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_template_given_globals_points_tiktoken_at_the_layer() -> None:
    env = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    assert env["TIKTOKEN_CACHE_DIR"] == "/opt/python/motorhead/tiktoken_cache"
