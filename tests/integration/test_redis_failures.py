"""A real Redis driven into the states in which it refuses commands for a while (out of memory, a read-only replica,
a script running, too few replicas, loading, its primary lost), and an embedding provider that fails: each request
gets a 503 (or a 502) JSON error with a fixed message, the server's or the provider's own words only in the log."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from devserver.embedded_redis import HOST, EmbeddedRedis, free_port
from motorhead.adapters.redis_db.keys import Keys
from tests.integration.test_retrieval import retrieval_event
from tests.openai_stub import OpenAIStub, Status
from tests.support import Api, body, cold_start, get_event, load_event, post_event, ref

CONNECTOR_LOG = "motorhead.adapters.redis_db.connector"
Configure = Callable[[str, str], None]


# --- helpers ----------------------------------------------------------------------------------------------------
@contextmanager
def functions_on(url: str, **env: str | None) -> Iterator[Api]:
    """The functions on this Redis, as a cold start loads them (standalone: no cluster probe)."""
    with cold_start(REDIS_URL=url, MOTORHEAD_REDIS_MODE="standalone", **env) as api:
        yield api


def post(api: Api, session_id: str = "s") -> dict[str, Any]:
    return api.invoke("PostMemoryFunction", post_event(session_id, {"messages": [{"role": "Human", "content": "hi"}]}))


def delete(api: Api, session_id: str = "s") -> dict[str, Any]:
    event = load_event("delete_memory-ok")
    event["pathParameters"] = {"session_id": session_id}
    return api.invoke("DeleteMemoryFunction", event)


def assert_redis_unavailable(response: dict[str, Any], *leaks: str) -> None:
    """A 503 JSON answer saying only "redis unavailable", with Retry-After, holding none of ``leaks``."""
    assert response["statusCode"] == 503, response
    assert response["headers"]["retry-after"] == "1"
    assert body(response) == {"error": "redis unavailable"}
    for leak in leaks:
        assert leak not in response["body"]


def logged_codes(caplog: pytest.LogCaptureFixture) -> str:
    """What the connector logged of the failures (the detail the answers leave out)."""
    return "\n".join(str(getattr(record, "error", "")) for record in caplog.records if record.name == CONNECTOR_LOG)


def wait_until(condition: Callable[[], bool], *, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition was not met in time")
        time.sleep(0.02)


def refuses_with(client: redis.Redis, code: str) -> bool:
    """Whether a GET now gets an error reply starting with ``code`` (redis-py drops a typed code from the text). Not
    a PING: Redis answers that one while loading."""
    try:
        client.get("probe")
    except redis.RedisError as exc:
        return getattr(exc, "status_code", None) == code or str(exc).startswith(code)
    return False


@pytest.fixture
def configure(redis_client: redis.Redis) -> Iterator[Configure]:
    """``CONFIG SET`` on the shared test server, every value put back after the test."""
    saved: dict[str, str] = {}

    def set_value(name: str, value: str) -> None:
        if name not in saved:
            saved[name] = str(redis_client.config_get(name)[name])
        redis_client.config_set(name, value)

    yield set_value
    for name, value in saved.items():
        redis_client.config_set(name, value)


# --- Redis refusing commands for now: a 503 ---------------------------------------------------------------------
def test_post_given_redis_out_of_memory_answers_503_json_without_the_reply(
    redis_server: EmbeddedRedis, configure: Configure, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a Redis over its maxmemory (1 byte: below what any server uses) with the noeviction policy
    configure("maxmemory-policy", "noeviction")
    configure("maxmemory", "1")
    with functions_on(redis_server.url) as api, caplog.at_level(logging.WARNING, logger=CONNECTOR_LOG):
        # When a message is posted, and the session read
        posted = post(api)
        read = api.invoke("GetMemoryFunction", get_event("s"))

    # Then the write is a 503 that says nothing of the server's reply, which is in the log; reads are still served
    assert_redis_unavailable(posted, "OOM", "maxmemory", "OutOfMemoryError")
    assert "OOM" in logged_codes(caplog)
    assert read["statusCode"] == 200


def test_post_given_a_read_only_replica_answers_503_json(
    redis_server: EmbeddedRedis, configure: Configure, caplog: pytest.LogCaptureFixture
) -> None:
    # Given REDIS_URL naming a replica (as the old primary is during a failover), in sync with its primary (which
    # starts the sync at once rather than after the default 5 s)
    configure("repl-diskless-sync-delay", "0")
    with EmbeddedRedis(extra_args=["--replicaof", HOST, str(redis_server.port)]) as replica:
        with replica.client(decode_responses=True) as client:
            wait_until(lambda: client.info("replication").get("master_link_status") == "up")
        with functions_on(replica.url) as api, caplog.at_level(logging.WARNING, logger=CONNECTOR_LOG):
            # When a message is posted, and the session read
            posted = post(api)
            read = api.invoke("GetMemoryFunction", get_event("s"))

    # Then the write is a 503 (READONLY in the log only), and the replica still serves reads
    assert_redis_unavailable(posted, "READONLY", "replica")
    assert "READONLY" in logged_codes(caplog)
    assert read["statusCode"] == 200


def test_get_given_a_replica_that_lost_its_primary_answers_503_json(caplog: pytest.LogCaptureFixture) -> None:
    # Given a replica whose primary is gone, told not to serve stale data
    with EmbeddedRedis() as replica:
        with replica.client() as client:
            client.config_set("replica-serve-stale-data", "no")
            client.execute_command("REPLICAOF", HOST, str(free_port()))
            wait_until(lambda: refuses_with(client, "MASTERDOWN"))
        with functions_on(replica.url) as api, caplog.at_level(logging.WARNING, logger=CONNECTOR_LOG):
            # When the session is read
            read = api.invoke("GetMemoryFunction", get_event("s"))

    # Then it is a 503 (MASTERDOWN in the log only)
    assert_redis_unavailable(read, "MASTERDOWN", "stale")
    assert "MASTERDOWN" in logged_codes(caplog)


def test_requests_given_a_script_running_too_long_answer_503_json(
    redis_server: EmbeddedRedis, redis_client: redis.Redis, configure: Configure, caplog: pytest.LogCaptureFixture
) -> None:
    # Given another client running a script that never ends, past busy-reply-threshold (100 ms)
    configure("busy-reply-threshold", "100")
    runner = redis_server.client(socket_timeout=None)
    ended: list[BaseException] = []

    def run_forever() -> None:
        try:
            runner.eval("while true do end", 0)
        except redis.RedisError as exc:  # SCRIPT KILL ends it with an error reply
            ended.append(exc)

    thread = threading.Thread(target=run_forever, daemon=True)
    thread.start()
    try:
        wait_until(lambda: refuses_with(redis_client, "BUSY"))
        with functions_on(redis_server.url) as api, caplog.at_level(logging.WARNING, logger=CONNECTOR_LOG):
            # When a message is posted (a command, then a script) and the session read (a pipeline)
            posted = post(api)
            read = api.invoke("GetMemoryFunction", get_event("s"))
    finally:
        wait_until(lambda: _script_killed(redis_client))
        thread.join(timeout=10)
        runner.close()

    # Then both are a 503 (BUSY in the log only: untyped by redis-py, told by the reply's first word)
    assert_redis_unavailable(posted, "BUSY", "script")
    assert_redis_unavailable(read, "BUSY", "script", "pipeline")
    assert logged_codes(caplog).count("BUSY") >= 2
    assert ended and not thread.is_alive()


def _script_killed(client: redis.Redis) -> bool:
    """SCRIPT KILL, until the server says no script runs (NOTBUSY)."""
    try:
        client.script_kill()
    except redis.ResponseError as exc:
        return str(exc).startswith("NOTBUSY")
    return False


def test_writes_given_too_few_replicas_answer_503_json(
    redis_server: EmbeddedRedis, configure: Configure, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a primary that must write to one replica at least, and has none
    configure("min-replicas-to-write", "1")
    with functions_on(redis_server.url) as api, caplog.at_level(logging.WARNING, logger=CONNECTOR_LOG):
        # When a message is posted, the session deleted (a pipeline) and read
        posted = post(api)
        deleted = delete(api)
        read = api.invoke("GetMemoryFunction", get_event("s"))

    # Then the writes are a 503 (NOREPLICAS in the log only), reads are served
    assert_redis_unavailable(posted, "NOREPLICAS", "replicas")
    assert_redis_unavailable(deleted, "NOREPLICAS", "replicas", "pipeline")
    assert logged_codes(caplog).count("NOREPLICAS") >= 2
    assert read["statusCode"] == 200


def test_post_given_redis_loading_its_data_answers_503_json(caplog: pytest.LogCaptureFixture) -> None:
    # Given a Redis reloading its data, slowly (key-load-delay: 0.5 ms a key, 2,000 keys)
    with (
        EmbeddedRedis(extra_args=["--enable-debug-command", "local"]) as server,
        server.client() as admin,
        functions_on(server.url) as api,
    ):
        admin.execute_command("DEBUG", "POPULATE", "2000")
        admin.config_set("key-load-delay", "500")
        admin.config_set("loading-process-events-interval-bytes", "1024")
        reload = threading.Thread(target=lambda: admin.execute_command("DEBUG", "RELOAD"), daemon=True)
        reload.start()
        with redis.Redis(host=server.host, port=server.port, retry=Retry(NoBackoff(), 0)) as probe:  # no retries
            wait_until(lambda: refuses_with(probe, "LOADING"))
        with caplog.at_level(logging.WARNING, logger=CONNECTOR_LOG):
            # When a message is posted meanwhile
            posted = post(api)
        reload.join(timeout=30)

    # Then it is a 503 (LOADING in the log only)
    assert_redis_unavailable(posted, "LOADING", "loading")
    assert "LOADING" in logged_codes(caplog)


# --- a reply error that is a bug of ours: a generic 500 ---------------------------------------------------------
def test_post_given_a_key_of_the_wrong_type_answers_a_generic_500(
    redis_server: EmbeddedRedis, redis_client: redis.Redis
) -> None:
    # Given a session whose messages key holds a string (no code of ours writes one: a bug, not a passing state)
    redis_client.set(Keys("mh").session(ref("s")).messages, "not a sorted set")
    with functions_on(redis_server.url) as api:
        # When a message is posted
        posted = post(api)

    # Then it is a 500 JSON error that says nothing of the reply, without Retry-After (retrying will not help)
    assert posted["statusCode"] == 500
    assert body(posted) == {"error": "internal error"}
    assert "WRONGTYPE" not in posted["body"] and "retry-after" not in posted["headers"]


# --- the embedding provider failing -----------------------------------------------------------------------------
PROVIDER_SECRET = "Incorrect API key provided: sk-live-0123456789abcdef. Find your key at platform.example/keys"


@pytest.mark.parametrize(
    ("failure", "status", "message"),
    [
        (Status(500), 503, "the embedding provider is unavailable"),
        (Status(429), 503, "the embedding provider is unavailable"),
        (
            Status(401, body={"error": {"message": PROVIDER_SECRET, "type": "invalid_request_error", "code": "401"}}),
            502,
            "the embedding provider failed",
        ),
    ],
    ids=["5xx", "rate-limited", "401-with-a-secret"],
)
def test_retrieval_given_the_query_embedding_fails_answers_json_without_the_providers_words(
    redis_server: EmbeddedRedis, redis_client: redis.Redis, failure: Status, status: int, message: str
) -> None:
    # Given long-term memory on OpenAI-compatible embeddings (no client retries) that fail
    with OpenAIStub() as stub:
        stub.script(failure)
        with functions_on(
            redis_server.url,
            MOTORHEAD_LONG_TERM_MEMORY="true",
            MOTORHEAD_EMBEDDER="openai",
            OPENAI_API_BASE=stub.base_url,
            OPENAI_API_KEY="sk-test-key-of-the-deployment",
            MOTORHEAD_LLM_MAX_RETRIES="0",
            MOTORHEAD_VECTOR_BACKEND="exact",
            MOTORHEAD_INDEX_QUEUE_URL=None,
            MOTORHEAD_SUMMARY_QUEUE_URL=None,
        ) as api:
            # When a retrieval embeds its query
            response = api.invoke("RetrievalFunction", retrieval_event("s", {"text": "where do we travel?"}))

    # Then the answer is a fixed JSON error: neither the provider's message, nor its address, nor the key
    assert response["statusCode"] == status
    assert body(response) == {"error": message}
    assert (response["headers"].get("retry-after") == "1") == (status == 503)
    for leak in ("sk-live", "Incorrect API key", "stub:", str(stub.port), "127.0.0.1", "sk-test", "Error code"):
        assert leak not in response["body"]
