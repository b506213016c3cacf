"""Fixtures of the integration tests: the local gateway on a free port, in front of a real Redis."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
import redis
import requests
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from devserver.embedded_redis import EmbeddedRedis, EmbeddedRedisCluster
from devserver.local_sqs import LocalQueue, LocalSqs, SqsPoller
from devserver.server import LocalGateway, merged_openapi
from devserver.template import load_queue_consumers
from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.composition import long_term
from motorhead.ltm.ports import Embedder
from motorhead.settings import Settings
from tests.support import Api, cold_start


@pytest.fixture
def base_url(redis_server: EmbeddedRedis, redis_client: redis.Redis) -> Iterator[str]:
    with cold_start(REDIS_URL=redis_server.url, MOTORHEAD_MAX_WINDOW_SIZE="4") as api, serving(api) as url:
        yield url


@pytest.fixture(scope="session")
def local_sqs() -> Iterator[LocalSqs]:
    """moto's SQS server on loopback, for the whole run (each test makes its own queues)."""
    sqs = LocalSqs().start()
    yield sqs
    sqs.stop()


def fresh_queue(sqs: LocalSqs, function_id: str) -> LocalQueue:
    """A new copy of the template's queue (and dead-letter queue) of ``function_id``, for one test only."""
    consumer = next(c for c in load_queue_consumers() if c.function_id == function_id)
    return sqs.create_queues(consumer, prefix=f"t{uuid.uuid4().hex[:12]}-")


@pytest.fixture(params=["standalone", pytest.param("cluster", marks=pytest.mark.cluster)])
def connector(
    request: pytest.FixtureRequest, redis_server: EmbeddedRedis, redis_cluster: EmbeddedRedisCluster
) -> Iterator[RedisConnector]:
    """A connector in auto mode on an emptied server of each kind: standalone, then a 3-node cluster."""
    url = redis_server.url if request.param == "standalone" else redis_cluster.url
    for node in [redis_server] if request.param == "standalone" else redis_cluster.nodes:
        with redis.Redis(port=node.port) as client:
            client.flushall()
    conn = RedisConnector(Settings(REDIS_URL=url, MOTORHEAD_REDIS_MODE="auto"))
    yield conn
    conn.close()


@dataclass
class SecureApi:
    """The functions behind the local gateway with ``MOTORHEAD_AUTH=api-key`` (revocation seen at once: no cache)."""

    base_url: str
    api: Api

    def key(self, tenant: str, scopes: str = "read,write,delete,list") -> str:
        """A new API key of ``tenant``, made by the admin function as ``make key`` does."""
        answer = self.api.admin({"action": "create", "tenant": tenant, "scopes": scopes.split(",")})
        assert answer["ok"], answer
        return str(answer["key"])

    def revoke(self, key: str) -> None:
        key_id = key.split("_")[1]
        assert self.api.admin({"action": "revoke", "key_id": key_id})["revoked"] is True


@contextmanager
def serving(api: Api) -> Iterator[str]:
    """The local gateway in front of ``api``'s functions, on a free port, for the block (polling for shutdown often:
    it stops at once)."""
    gateway = LocalGateway(("127.0.0.1", 0), api.functions, merged_openapi(api.functions, title="t", version="0"))
    thread = threading.Thread(target=gateway.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{gateway.server_address[1]}"
    finally:
        gateway.shutdown()
        gateway.server_close()
        thread.join()


@pytest.fixture
def secure(redis_server: EmbeddedRedis, redis_client: redis.Redis) -> Iterator[SecureApi]:
    with (
        cold_start(
            REDIS_URL=redis_server.url,
            MOTORHEAD_MAX_WINDOW_SIZE="4",
            MOTORHEAD_AUTH="api-key",
            MOTORHEAD_API_KEY_CACHE_SECONDS="0",
        ) as api,
        serving(api) as base_url,
    ):
        yield SecureApi(base_url=base_url, api=api)


@dataclass
class LtmDeployment:
    """The functions behind the local gateway with API keys and long-term memory on (the local model), on one Redis
    (emptied), and the poller standing in for the indexer's SQS trigger."""

    base_url: str
    api: Api
    indexer: SqsPoller
    client: redis.Redis
    backend: str

    def key(self, tenant: str, scopes: str = "read,write,delete,list") -> str:
        answer = self.api.admin({"action": "create", "tenant": tenant, "scopes": scopes.split(",")})
        assert answer["ok"], answer
        return str(answer["key"])


@contextmanager
def ltm_gateway(server: EmbeddedRedis, sqs: LocalSqs, backend: str = "auto") -> Iterator[LtmDeployment]:
    """``LtmDeployment`` on ``server`` with the vector ``backend`` (``auto`` picks `search` where RediSearch is)."""
    client = redis.Redis(port=server.port, decode_responses=True)
    client.flushall()
    index_queue = fresh_queue(sqs, "IndexerFunction")
    try:
        with (
            cold_start(
                REDIS_URL=server.url,
                MOTORHEAD_AUTH="api-key",
                MOTORHEAD_API_KEY_CACHE_SECONDS="0",
                MOTORHEAD_LONG_TERM_MEMORY="true",
                MOTORHEAD_INDEX_QUEUE_URL=index_queue.url,
                MOTORHEAD_SUMMARY_QUEUE_URL=None,
                MOTORHEAD_EMBEDDER="local",
                MOTORHEAD_VECTOR_BACKEND=backend,
            ) as api,
            serving(api) as base_url,
        ):
            indexer = SqsPoller(sqs, index_queue, handler=api.consumer("IndexerFunction"), max_backoff=0)
            yield LtmDeployment(base_url=base_url, api=api, indexer=indexer, client=client, backend=backend)
    finally:
        client.close()


class HttpCaller:
    """One caller of the API over real HTTP: ids percent-encoded once, the key as bearer."""

    def __init__(self, base_url: str, key: str, prefix: str = "") -> None:
        self.base = base_url + prefix
        self.headers = {"Authorization": f"Bearer {key}"}

    def call(self, method: str, path: str, body: Any = None, **query: Any) -> requests.Response:
        return requests.request(
            method, self.base + path, json=body, params=query or None, headers=self.headers, timeout=30
        )

    def post(self, session_id: str, turns: Sequence[tuple[str, str]], **query: Any) -> requests.Response:
        body = {"messages": [{"role": role, "content": content} for role, content in turns]}
        return self.call("POST", f"/sessions/{quote(session_id, safe='')}/memory", body, **query)

    def search(self, user_id: str, text: str, **body: Any) -> requests.Response:
        return self.call("POST", f"/users/{quote(user_id, safe='')}/retrieval", {"text": text, **body})

    def forget(self, user_id: str) -> requests.Response:
        return self.call("DELETE", f"/users/{quote(user_id, safe='')}")

    def sessions(self, **query: Any) -> requests.Response:
        return self.call("GET", "/sessions", size=100, **query)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Moto's AWS (Secrets Manager here) in us-east-1 with dummy credentials and none of the machine's AWS settings,
    and powertools' parameter providers created inside it (their caches emptied before and after)."""
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    parameters.clear_caches()  # type: ignore[no-untyped-call]
    with mock_aws():
        yield
    parameters.clear_caches()  # type: ignore[no-untyped-call]


@pytest.fixture(scope="session")
def local_embedder() -> Embedder:
    """The local model (offline), loaded once for the tests that embed with it."""
    return long_term.embedder(Settings(MOTORHEAD_EMBEDDER="local"))
