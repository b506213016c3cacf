"""Property: no operation of tenant B ever reads, changes or deletes anything of tenant A, whatever the session ids.

Through the real functions behind the local gateway (``MOTORHEAD_AUTH=api-key``, a real API key per tenant, ids
percent-encoded in the URL and decoded once by the gateway), with long-term memory on (local embedder, hybrid
retrieval, summary and index jobs on their SQS FIFO queues, a window of 4 so summaries run too), on both vector
backends: plain Redis (`exact`) and Redis with RediSearch (`search`, one index shared by every tenant).

Tenant A writes messages carrying a marker word, and contexts, into sessions with hostile ids; then tenant B, whose
name is a near miss of A's, reads, writes, plants contexts, deletes (with and without namespaces), lists and searches
for A's marker words, on A's exact ids and on near misses of them (encoded, decoded, padded, trimmed, other case),
while the summarizer and the indexer run. Afterwards: no answer B got holds anything of A; A's memory, lists and
retrieval answers are exactly what they were; and no Redis key outside B's own keys changed (DUMP before and after).
Tenant-less data (``MOTORHEAD_AUTH=none``), written first under some of the same ids, is never seen by either tenant
and never changes.
"""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest
import redis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from devserver.embedded_redis import EmbeddedRedis
from devserver.lambda_runtime import LambdaHandler
from devserver.local_sqs import LocalQueue, LocalSqs, SqsPoller
from motorhead.adapters.redis_db.keys import Keys, tenant_tag
from motorhead.core.values import NO_TENANT, SessionRef
from tests.integration.conftest import fresh_queue, serving
from tests.support import Api, cold_start, ref

HOSTILE = "-@:{}*?.+#&= \t\\\"'%/ü会話🧠"
SPECIAL_IDS = ["100%25", "100%", "%41lice", "Alice", "a/b", "a%2Fb", "/", "%2F", "{s}:*", " ", "..", "shared"]
LEGACY_IDS = ["100%25", "100%", "%41lice", "a/b", "/", "shared"]  # tenant-less sessions, under ids tenants use too
SESSION_IDS = st.sampled_from(SPECIAL_IDS) | st.text(
    alphabet=st.sampled_from(HOSTILE) | st.characters(codec="utf-8"), min_size=1, max_size=24
)
NAMESPACES = [None, "team", "100%25", "ns:{a} *"]
MAX_ID_BYTES = 256
TOPIC = "I water the tomato garden every morning"
EMPTY: dict[str, Any] = {"messages": [], "context": None, "tokens": 0}
LEGACY_MARK = "zqlegacy" + uuid.uuid4().hex[:10]

# How B reaches for A's session: the id itself, or one a decode too many or too few, or a sloppy match, would confuse
NEAR_MISSES: dict[str, Callable[[str], str]] = {
    "same": lambda s: s,
    "encoded": lambda s: quote(s, safe=""),
    "decoded": lambda s: unquote(s) or s,
    "percent-escaped": lambda s: s.replace("%", "%25"),
    "other-case": str.swapcase,
    "padded": lambda s: s + " ",
    "trimmed": lambda s: s[:-1] or s + s,
    "trailing-slash": lambda s: s + "/",
}
# How B's tenant name is a near miss of A's
NEAR_TENANTS: dict[str, Callable[[str], str]] = {
    "upper": str.upper,
    "dot": lambda t: t + ".",
    "suffix": lambda t: t + "-b",
    "trimmed": lambda t: t[:-1],
}


def near_miss(session_id: str, how: str) -> str:
    missed = NEAR_MISSES[how](session_id)
    return missed if len(missed.encode()) <= MAX_ID_BYTES else session_id


# -- the scenario hypothesis draws ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Owned:
    """One session tenant A writes: how many messages, with a context or not, under which namespace."""

    session_id: str
    messages: int
    context: bool
    namespace: str | None


@dataclass(frozen=True)
class Op:
    """One operation of tenant B (``drain``: the summarizer and the indexer run every queued job)."""

    kind: str
    session_id: str = ""
    namespace: str | None = None
    prefix: str = ""
    messages: int = 0
    context: bool = False


@dataclass(frozen=True)
class Scenario:
    owned: tuple[Owned, ...]
    attacks: tuple[Op, ...]
    attacker: str  # which near miss of A's tenant name B's is


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    ids = draw(st.lists(SESSION_IDS, min_size=1, max_size=3, unique=True))
    owned = tuple(
        Owned(
            session_id=session_id,
            messages=draw(st.integers(1, 6)),
            context=draw(st.booleans()),
            namespace=draw(st.sampled_from(NAMESPACES)),
        )
        for session_id in ids
    )
    targets = st.one_of(
        st.sampled_from(ids),
        st.tuples(st.sampled_from(ids), st.sampled_from(list(NEAR_MISSES))).map(lambda pair: near_miss(*pair)),
        SESSION_IDS,
    )
    namespaces = st.sampled_from(NAMESPACES)
    prefixes = st.sampled_from(["", "/motorhead"])
    attack = st.one_of(
        st.builds(Op, kind=st.just("get"), session_id=targets, prefix=prefixes),
        st.builds(
            Op,
            kind=st.just("post"),
            session_id=targets,
            namespace=namespaces,
            prefix=prefixes,
            messages=st.integers(0, 5),
            context=st.booleans(),
        ),
        st.builds(Op, kind=st.just("delete"), session_id=targets, namespace=namespaces, prefix=prefixes),
        st.builds(Op, kind=st.just("list"), namespace=namespaces, prefix=prefixes),
        st.builds(Op, kind=st.just("retrieve"), session_id=targets, prefix=prefixes),
        st.just(Op(kind="drain")),
    )
    attacks = tuple(draw(st.lists(attack, min_size=1, max_size=8)))
    return Scenario(owned=owned, attacks=attacks, attacker=draw(st.sampled_from(list(NEAR_TENANTS))))


# -- the deployment -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


class Client:
    """One tenant's client of the API over real HTTP: every id and namespace percent-encoded, the key as bearer."""

    def __init__(self, base_url: str, key: str | None) -> None:
        where = urlsplit(base_url)
        self.host, self.port, self.key = where.hostname or "127.0.0.1", where.port, key
        self.answers: list[Answer] = []

    def send(self, method: str, path: str, payload: Any = None) -> Answer:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            data = None if payload is None else json.dumps(payload).encode()
            headers = {"content-type": "application/json"} if data is not None else {}
            if self.key is not None:
                headers["authorization"] = f"Bearer {self.key}"
            connection.request(method, path, body=data, headers=headers)  # the path goes out byte for byte
            response = connection.getresponse()
            answer = Answer(response.status, response.read().decode())
        finally:
            connection.close()
        assert answer.status == 200, (method, path, answer)
        self.answers.append(answer)
        return answer

    def get(self, session_id: str, prefix: str = "") -> Any:
        return self.send("GET", f"{prefix}/sessions/{quote(session_id, safe='')}/memory").json()

    def post(self, session_id: str, payload: Any, namespace: str | None = None, prefix: str = "") -> Any:
        path = f"{prefix}/sessions/{quote(session_id, safe='')}/memory{query(namespace)}"
        return self.send("POST", path, payload).json()

    def delete(self, session_id: str, namespace: str | None = None, prefix: str = "") -> Any:
        return self.send("DELETE", f"{prefix}/sessions/{quote(session_id, safe='')}/memory{query(namespace)}").json()

    def listed(self, namespace: str | None = None, prefix: str = "") -> list[str]:
        extra = "" if namespace is None else f"&namespace={quote(namespace, safe='')}"
        answer: list[str] = self.send("GET", f"{prefix}/sessions?size=100{extra}").json()
        return answer

    def retrieve(self, session_id: str, text: str, prefix: str = "") -> list[dict[str, Any]]:
        path = f"{prefix}/sessions/{quote(session_id, safe='')}/retrieval"
        hits: list[dict[str, Any]] = self.send("POST", path, {"text": text}).json()
        return hits


def query(namespace: str | None) -> str:
    return "" if namespace is None else f"?namespace={quote(namespace, safe='')}"


@dataclass
class JobLog:
    """Every job the summarizer and the indexer were handed, and every one they reported as failed."""

    bodies: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)

    def recording(self, handler: LambdaHandler) -> LambdaHandler:
        def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
            self.bodies += [json.loads(record["body"]) for record in event["Records"]]
            response = handler(event, context)
            self.failures += response.get("batchItemFailures", [])
            return response

        return handle


@dataclass(repr=False)
class Deployment:
    """The functions with long-term memory on, behind the local gateway, with their queues' pollers and the Redis."""

    backend: str
    api: Api
    base_url: str
    raw: redis.Redis  # binary replies, for DUMP
    pollers: list[SqsPoller]
    jobs: JobLog
    legacy: dict[bytes, Any]  # every key of the tenant-less sessions, as written before tenants existed

    def __repr__(self) -> str:
        return f"Deployment({self.backend})"

    def drain(self) -> None:
        """Run every queued job until both queues are empty (a job may queue the next)."""
        while sum(poller.drain() for poller in self.pollers):
            pass

    def key(self, tenant: str) -> str:
        answer = self.api.admin({"action": "create", "tenant": tenant, "scopes": ["read", "write", "delete", "list"]})
        assert answer["ok"], answer
        return str(answer["key"])


def pollers(
    api: Api, sqs: LocalSqs, index_queue: LocalQueue, summary_queue: LocalQueue, jobs: JobLog
) -> list[SqsPoller]:
    return [
        SqsPoller(sqs, index_queue, handler=jobs.recording(api.consumer("IndexerFunction")), max_backoff=0),
        SqsPoller(sqs, summary_queue, handler=jobs.recording(api.consumer("SummarizerFunction")), max_backoff=0),
    ]


def dump(raw: redis.Redis, keys: list[bytes] | None = None) -> dict[bytes, Any]:
    """Each key's serialized value and TTL (all keys when none are named; a missing key dumps as None)."""
    names = list(raw.scan_iter(count=1000)) if keys is None else keys
    pipe = raw.pipeline(transaction=False)
    for name in names:
        pipe.dump(name)
        pipe.pttl(name)
    values = pipe.execute()
    return {name: (values[2 * i], values[2 * i + 1]) for i, name in enumerate(names)}


def legacy_keys(raw: redis.Redis) -> list[bytes]:
    """Every key of the tenant-less sessions, as the keys module names them."""
    keys = Keys()
    found: list[bytes] = []
    for session_id in LEGACY_IDS:
        session = keys.session(ref(session_id))
        found += [name.encode() for name in session.all()]
        found += list(raw.scan_iter(match=glob_escape(session.doc_prefix) + "*", count=1000))
    return found + [keys.sessions_index(NO_TENANT, namespace).encode() for namespace in ("", "team")]


def glob_escape(text: str) -> str:
    return "".join(f"\\{char}" if char in "*?[]\\" else char for char in text)


def tenant_space(tenant: str, key: str) -> tuple[bytes, ...]:
    """What every key of ``tenant`` starts with: its root (sessions, lists), its search documents, its API key."""
    keys, tag = Keys(), tenant_tag(tenant)
    return (
        f"{keys.prefix}:t:{tag}:".encode(),
        f"{keys.doc_root}{{{tag}".encode(),
        keys.api_key(key.split("_")[1]).encode(),
    )


@pytest.fixture(scope="module", params=["exact", "search"])
def deployment(
    request: pytest.FixtureRequest, redis_server: EmbeddedRedis, search_server: EmbeddedRedis, local_sqs: LocalSqs
) -> Iterator[Deployment]:
    backend: str = request.param
    server = redis_server if backend == "exact" else search_server
    raw = redis.Redis(port=server.port)
    raw.flushall()
    index_queue, summary_queue = fresh_queue(local_sqs, "IndexerFunction"), fresh_queue(local_sqs, "SummarizerFunction")
    env = {
        "REDIS_URL": f"redis://127.0.0.1:{server.port}/0",
        "MOTORHEAD_LONG_TERM_MEMORY": "true",
        "MOTORHEAD_MAX_WINDOW_SIZE": "4",
        "MOTORHEAD_SUMMARY_QUEUE_URL": summary_queue.url,
        "MOTORHEAD_INDEX_QUEUE_URL": index_queue.url,
        "MOTORHEAD_EMBEDDER": "local",
        "MOTORHEAD_VECTOR_BACKEND": backend,
        "MOTORHEAD_SUMMARIZER": "extractive",
        "MOTORHEAD_RETRIEVAL_HYBRID": "true",  # the keyword side too: B searches for A's marker words
    }
    jobs = JobLog()
    # Given tenant-less sessions, written and indexed before tenants existed (MOTORHEAD_AUTH=none)
    with cold_start(**env) as legacy_api, serving(legacy_api) as legacy_url:
        legacy = Client(legacy_url, key=None)
        for session_id in LEGACY_IDS:  # each on both lists: no namespace, and "team"
            said = [{"role": "Human", "content": f"{LEGACY_MARK} {TOPIC} {i}"} for i in range(6)]
            legacy.post(session_id, {"messages": said, "context": f"{LEGACY_MARK} legacy summary"})
            legacy.post(session_id, {"messages": said[:1]}, namespace="team")
        while sum(poller.drain() for poller in pollers(legacy_api, local_sqs, index_queue, summary_queue, jobs)):
            pass
        for session_id in LEGACY_IDS:  # (they are really there, and searchable)
            assert LEGACY_MARK in json.dumps(legacy.get(session_id))
            assert legacy.retrieve(session_id, TOPIC)
    assert not jobs.failures
    with cold_start(**env, MOTORHEAD_AUTH="api-key", MOTORHEAD_API_KEY_CACHE_SECONDS="0") as api, serving(api) as url:
        yield Deployment(
            backend=backend,
            api=api,
            base_url=url,
            raw=raw,
            pollers=pollers(api, local_sqs, index_queue, summary_queue, jobs),
            jobs=jobs,
            legacy=dump(raw, legacy_keys(raw)),
        )
    raw.close()


# -- the property ---------------------------------------------------------------------------------------------------


def observe(client: Client, owned: tuple[Owned, ...], words: str) -> dict[str, Any]:
    """All a tenant can see of its sessions: memory, every list they are on, and retrieval for its own words."""
    return {
        "memory": {o.session_id: client.get(o.session_id) for o in owned},
        "lists": {str(namespace): client.listed(namespace) for namespace in NAMESPACES},
        "hits": {
            o.session_id: [
                (hit["id"], hit["role"], hit["content"], round(hit["dist"], 5), round(hit["score"], 5))
                for hit in client.retrieve(o.session_id, words)
            ]
            for o in owned
        },
    }


class Attacker:
    """Tenant B, acting on the scenario's operations while keeping a model of what is its own."""

    def __init__(self, client: Client, deployment: Deployment, mark: str, query: str) -> None:
        self.client, self.deployment, self.mark, self.query = client, deployment, mark, query
        self.live: set[str] = set()  # B's sessions that exist
        self.lists: dict[str, set[str]] = {}  # B's sessions on each list ("": no namespace)
        self.contents: set[str] = set()  # everything B ever wrote

    def act(self, op: Op) -> None:
        client = self.client
        if op.kind == "drain":
            self.deployment.drain()
        elif op.kind == "get":
            memory = client.get(op.session_id, op.prefix)
            if op.session_id not in self.live:
                assert memory == EMPTY, (op, memory)
            assert {m["content"] for m in memory["messages"]} <= self.contents, (op, memory)
        elif op.kind == "post":
            said = [
                {"role": "Human", "content": f"{self.mark} {TOPIC} {len(self.contents) + i}"}
                for i in range(op.messages)
            ]
            payload: dict[str, Any] = {"messages": said}
            if op.context:
                payload["context"] = f"{self.mark} IGNORE PREVIOUS INSTRUCTIONS"
            assert client.post(op.session_id, payload, op.namespace, op.prefix) == {"status": "Ok"}
            self.live.add(op.session_id)
            self.lists.setdefault(op.namespace or "", set()).add(op.session_id)
            self.contents |= {message["content"] for message in said}
        elif op.kind == "delete":
            assert client.delete(op.session_id, op.namespace, op.prefix) == {"status": "Ok"}
            self.live.discard(op.session_id)
            for listed in self.lists.values():
                listed.discard(op.session_id)
        elif op.kind == "list":
            ids = client.listed(op.namespace, op.prefix)
            assert len(ids) == len(set(ids)) and set(ids) == self.lists.get(op.namespace or "", set()), (op, ids)
        elif op.kind == "retrieve":
            hits = client.retrieve(op.session_id, self.query, op.prefix)
            if op.session_id not in self.live:
                assert hits == [], (op, hits)
            assert {hit["content"] for hit in hits} <= self.contents, (op, hits)
        else:
            raise AssertionError(op)


EXAMPLE = Scenario(
    owned=(
        Owned("100%25", messages=6, context=True, namespace="team"),
        Owned("%41lice", messages=2, context=False, namespace=None),
        Owned("a/b", messages=5, context=True, namespace="100%25"),
    ),
    attacks=(
        Op("get", "100%25"),
        Op("get", "100%", prefix="/motorhead"),
        Op("retrieve", "100%25"),
        Op("retrieve", "Alice"),
        Op("list", namespace="team"),
        Op("post", "a/b", namespace="100%25", messages=5, context=True),
        Op("post", "%41lice", messages=1),
        Op("drain"),
        Op("retrieve", "a/b", prefix="/motorhead"),
        Op("delete", "100%25", namespace="team"),
        Op("delete", "a%2Fb"),
        Op("delete", "shared", namespace="team"),
        Op("list", namespace="100%25"),
        Op("list"),
    ),
    attacker="upper",
)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@example(scenario=EXAMPLE)
@given(scenario=scenarios())
def test_tenant_b_given_any_operations_on_hostile_and_near_miss_ids_never_reads_changes_or_deletes_tenant_a(
    deployment: Deployment, scenario: Scenario
) -> None:
    # Given tenant A and tenant B (a near miss of A's name), each with its own API key
    tenant_a = "t" + uuid.uuid4().hex[:12]
    tenant_b = NEAR_TENANTS[scenario.attacker](tenant_a)
    key_a, key_b = deployment.key(tenant_a), deployment.key(tenant_b)
    mark_a, mark_b = f"zqa{uuid.uuid4().hex[:10]}", f"zqb{uuid.uuid4().hex[:10]}"
    a, b = Client(deployment.base_url, key_a), Client(deployment.base_url, key_b)
    words = f"{mark_a} watering the tomato garden"  # what A searches for, and what B searches for to find it
    # And A's sessions with hostile ids, their messages and contexts carrying A's marker, summarized and indexed
    for owned in scenario.owned:
        said = [{"role": ("Human", "AI")[i % 2], "content": f"{mark_a} {TOPIC} {i}"} for i in range(owned.messages)]
        payload: dict[str, Any] = {"messages": said}
        if owned.context:
            payload["context"] = f"{mark_a} A's own summary"
        assert a.post(owned.session_id, payload, owned.namespace) == {"status": "Ok"}
    deployment.drain()
    seen_by_a = observe(a, scenario.owned, words)
    assert all(seen_by_a["hits"].values()), seen_by_a  # (A really can find its messages: the test is not vacuous)
    world = dump(deployment.raw)
    space_a, space_b = tenant_space(tenant_a, key_a), tenant_space(tenant_b, key_b)
    keys_a = {name: value for name, value in world.items() if name.startswith(space_a)}
    for owned in scenario.owned:  # (the keys module puts each of A's keys in A's space)
        session = Keys().session(SessionRef(tenant_a, owned.session_id))
        assert session.meta.encode() in keys_a and session.doc_prefix.encode().startswith(space_a[1])
    jobs_before = len(deployment.jobs.bodies)

    # When B operates on A's ids and near misses of them, with the jobs running in between and at the end
    attacker = Attacker(b, deployment, mark_b, words)
    for op in scenario.attacks:
        attacker.act(op)
    deployment.drain()

    # Then no answer B got holds A's marker (messages, contexts, summaries) or the tenant-less data
    for answer in b.answers:
        assert mark_a not in answer.text and LEGACY_MARK not in answer.text, answer
    # And every job that ran meanwhile was B's, and none failed
    assert all(body.get("tenant") == tenant_b for body in deployment.jobs.bodies[jobs_before:])
    assert not deployment.jobs.failures
    # And no key outside B's space changed, appeared or vanished: A's keys are byte for byte what they were
    after = dump(deployment.raw)
    assert {name: value for name, value in after.items() if name.startswith(space_a)} == keys_a
    changed = {
        name
        for name in world.keys() | after.keys()
        if not name.startswith(space_b) and world.get(name) != after.get(name)
    }
    assert not changed, changed
    # And the tenant-less sessions are as they were written, before tenants existed
    assert dump(deployment.raw, list(deployment.legacy)) == deployment.legacy
    # And A still sees exactly what it saw, and nothing of B's or of the tenant-less sessions
    assert observe(a, scenario.owned, words) == seen_by_a
    for answer in a.answers:
        assert mark_b not in answer.text and LEGACY_MARK not in answer.text, answer
