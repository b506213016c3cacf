"""Per-tenant quotas on a real Redis, standalone and cluster: a write past a quota is refused (429 over HTTP) with
nothing stored, the usage counters stay exactly what the tenant's live sessions hold under concurrent writes and
deletions (a property test), and other tenants are not touched."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

import hypothesis
import pytest
import redis
import requests
from hypothesis import strategies as st

from devserver.embedded_redis import EmbeddedRedis, EmbeddedRedisCluster
from motorhead.adapters.redis_db import store as store_module
from motorhead.adapters.redis_db.codec import encode_new
from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.keys import Keys
from motorhead.adapters.redis_db.store import RedisMemoryStore
from motorhead.adapters.redis_db.tenant_migration import RedisSessionAdopter
from motorhead.core.memory import MemoryService
from motorhead.core.values import NO_TENANT, MemoryLimits, NewMessage, Quotas, SessionRef
from motorhead.errors import QuotaExceededError, StoreUnavailableError
from motorhead.settings import Settings
from tests.integration.conftest import serving
from tests.support import cold_start

LIMITS = MemoryLimits(window=12)
T = TypeVar("T", bound="Tenancy")


@dataclass
class Tenancy:
    store: RedisMemoryStore
    connector: RedisConnector
    nodes: list[int]
    cluster: bool

    def service(self, quotas: Quotas) -> MemoryService:
        return MemoryService(store=self.store, limits=LIMITS, quotas=quotas)

    def held(self, tenant: str) -> dict[str, int]:
        """What the tenant's live sessions hold, read session by session (the truth the counters must match)."""
        root = Keys("mh").session(SessionRef(tenant, "x")).meta.split(":{")[0]
        sessions = messages = written = 0
        for port in self.nodes:
            with redis.Redis(port=port, decode_responses=True) as client:
                for meta in client.scan_iter(f"{root}:{{*}}:meta", count=1_000):
                    fields = client.hmget(meta, "q", "seq", "bytes")
                    if fields[0] == "1":
                        sessions += 1
                        messages += int(fields[1] or 0)
                        written += int(fields[2] or 0)
        return {"sessions": sessions, "messages": messages, "bytes": written}


@pytest.fixture(params=["standalone", pytest.param("cluster", marks=pytest.mark.cluster)])
def tenancy(
    request: pytest.FixtureRequest, redis_server: EmbeddedRedis, redis_cluster: EmbeddedRedisCluster
) -> Iterator[Tenancy]:
    yield from fresh_tenancy(request.param == "cluster", redis_server, redis_cluster, RedisConnector, Tenancy)


def fresh_tenancy(
    cluster: bool,
    redis_server: EmbeddedRedis,
    redis_cluster: EmbeddedRedisCluster,
    connector_type: type[RedisConnector],
    tenancy_type: type[T],
) -> Iterator[T]:
    """A tenancy on an emptied server (standalone or the cluster), its connector of ``connector_type``."""
    nodes = [node.port for node in (redis_cluster.nodes if cluster else [redis_server])]
    for port in nodes:
        with redis.Redis(port=port) as client:
            client.flushall()
    connector = connector_type(Settings(REDIS_URL=redis_cluster.url if cluster else redis_server.url))
    yield tenancy_type(store=RedisMemoryStore(connector, Keys("mh")), connector=connector, nodes=nodes, cluster=cluster)
    connector.close()


def says(n: int, text: str = "hello") -> list[NewMessage]:
    return [NewMessage("Human", text) for _ in range(n)]


def test_quota_given_messages_refuses_the_write_past_it_and_stores_nothing(tenancy: Tenancy) -> None:
    memory = tenancy.service(Quotas(messages=5))
    session = SessionRef("acme", "chat")
    memory.add_memory(session, says(3))
    # When a write would take acme to 6 messages / Then it is refused, whole, and nothing changed
    with pytest.raises(QuotaExceededError, match="quota of 5 messages"):
        memory.add_memory(session, says(3))
    assert len(memory.get_memory(session).messages) == 3
    assert tenancy.store.usage("acme")["messages"] == 3
    # And a write that fits is fine, up to the quota; another tenant has its own
    memory.add_memory(session, says(2))
    memory.add_memory(SessionRef("globex", "chat"), says(5))
    assert tenancy.store.usage("acme")["messages"] == tenancy.store.usage("globex")["messages"] == 5
    # And deleting the session gives its messages back
    memory.delete_memory(session)
    assert tenancy.store.usage("acme") == {"sessions": 0, "messages": 0, "bytes": 0, "namespaces": 1}
    memory.add_memory(session, says(5))


def test_quota_given_sessions_refuses_a_new_session_but_not_a_write_to_an_existing_one(tenancy: Tenancy) -> None:
    memory = tenancy.service(Quotas(sessions=2))
    a, b, c = (SessionRef("acme", name) for name in "abc")
    memory.add_memory(a, says(1))
    memory.add_memory(b, says(1))
    with pytest.raises(QuotaExceededError, match="quota of 2 sessions"):
        memory.add_memory(c, says(1))
    assert memory.get_memory(c).messages == []
    memory.add_memory(a, says(1))  # an existing session takes more
    memory.delete_memory(b)
    memory.add_memory(c, says(1))  # and a freed place is taken
    assert tenancy.store.usage("acme")["sessions"] == 2


def stored_size(message: NewMessage) -> int:
    """A message's bytes as Redis keeps it: its JSON (escaped), written at a 13-digit unix ms."""
    return len(encode_new(message, created_at=10**12))


def test_quota_given_bytes_and_namespaces_count_what_is_stored(tenancy: Tenancy) -> None:
    first = NewMessage("Human", "x" * 40)
    memory = tenancy.service(Quotas(bytes=stored_size(first) + 10 + 20, namespaces=2))
    session = SessionRef("acme", "chat")
    memory.add_memory(session, [first], context="y" * 10)
    assert tenancy.store.usage("acme")["bytes"] == stored_size(first) + 10
    with pytest.raises(QuotaExceededError, match="bytes stored"):  # 21 more characters are more than 20 bytes
        memory.add_memory(session, [NewMessage("Human", "x" * 21)])
    memory = tenancy.service(Quotas(namespaces=2))
    memory.add_memory(SessionRef("acme", "n1"), says(1, "hi"), namespace="one")
    with pytest.raises(QuotaExceededError, match="quota of 2 namespaces"):
        memory.add_memory(SessionRef("acme", "n2"), says(1, "hi"), namespace="two")
    assert memory.get_memory(SessionRef("acme", "n2")).messages == []


def test_quota_given_a_session_written_before_quotas_counts_it_whole_at_its_next_write(tenancy: Tenancy) -> None:
    session = SessionRef("acme", "old")
    tenancy.service(Quotas()).add_memory(session, says(4))  # quotas off: not counted
    assert tenancy.store.usage("acme")["messages"] == 0
    tenancy.service(Quotas(messages=100)).add_memory(session, says(1))
    stored = sum(stored_size(message) for message in says(4) + says(1))
    assert tenancy.store.usage("acme") | {"namespaces": 0} == {"sessions": 1, "messages": 5, "bytes": stored,
                                                               "namespaces": 0}  # fmt: skip
    assert tenancy.store.usage("acme") | {"namespaces": 0} == tenancy.held("acme") | {"namespaces": 0}


def test_quota_given_quotas_off_for_a_while_a_counted_session_stays_counted_and_its_delete_leaves_zero(
    tenancy: Tenancy,
) -> None:
    # Given a session counted while quotas were on, then written to while they were off
    session = SessionRef("acme", "on-off")
    tenancy.service(Quotas(messages=100)).add_memory(session, says(2))
    tenancy.service(Quotas()).add_memory(session, says(3))
    # Then the usage holds all five messages, and once it is deleted nothing (never a negative count)
    assert tenancy.store.usage("acme")["messages"] == 5
    tenancy.service(Quotas(messages=100)).delete_memory(session)
    assert {name: tenancy.store.usage("acme")[name] for name in ("sessions", "messages", "bytes")} == {
        "sessions": 0,
        "messages": 0,
        "bytes": 0,
    }


def test_quota_given_new_sessions_refused_for_the_session_quota_lists_none_of_them(tenancy: Tenancy) -> None:
    # Given a tenant at its quota of one session (on a cluster a write lists its session before the write itself)
    memory = tenancy.service(Quotas(sessions=1))
    memory.add_memory(SessionRef("acme", "kept"), says(1))
    # When twenty writes to new sessions are refused
    for n in range(20):
        with pytest.raises(QuotaExceededError, match="sessions"):
            memory.add_memory(SessionRef("acme", f"refused-{n}"), says(1))
    # Then the listing still holds the one session, and the kept one is still listed
    page = memory.list_sessions("acme", page=1, size=50)
    assert (page.session_ids, page.total) == (["kept"], 1)


def test_quota_given_the_server_refuses_the_write_gives_back_what_it_reserved(tenancy: Tenancy) -> None:
    # Given a session, and the server holding it out of memory (it refuses every write: the write ran nothing)
    memory = tenancy.service(Quotas(messages=10))
    session = SessionRef("acme", "oom")
    memory.add_memory(session, says(1))
    port = tenancy.nodes[0]
    if tenancy.cluster:
        with redis.RedisCluster(host="127.0.0.1", port=port) as cluster:
            port = cluster.get_node_from_key(Keys("mh").session(session).meta).port
    with redis.Redis(port=port) as node:
        node.config_set("maxmemory-policy", "noeviction")
        node.config_set("maxmemory", "1")
        try:
            # When ten writes are refused (503: retried by the client)
            for _ in range(10):
                with pytest.raises(StoreUnavailableError):
                    memory.add_memory(session, says(1))
        finally:
            node.config_set("maxmemory", "0")
    # Then none of them is counted (a cluster gave its reservation back), and the quota's room is all there
    assert tenancy.store.usage("acme")["messages"] == 1
    memory.add_memory(session, says(9))


def test_quota_given_control_characters_counts_them_as_stored(tenancy: Tenancy) -> None:
    # Given a message of control characters (each stored as a six-byte JSON escape)
    memory = tenancy.service(Quotas(bytes=1_000))
    message = NewMessage("Human", "\x01" * 100)
    # Then it counts as the 600-odd bytes Redis keeps, and one past the quota is refused
    memory.add_memory(SessionRef("acme", "c"), [message])
    assert tenancy.store.usage("acme")["bytes"] == stored_size(message) > 600
    with pytest.raises(QuotaExceededError, match="bytes stored"):
        memory.add_memory(SessionRef("acme", "c"), [message])


OPS = st.lists(
    st.tuples(
        st.sampled_from(["append", "append", "append", "delete", "context"]),
        st.integers(0, 5),  # the session
        st.integers(0, 4),  # how many messages
        st.sampled_from(["", "ns-a", "ns-b"]),
    ),
    min_size=1,
    max_size=40,
)


@hypothesis.settings(max_examples=12, deadline=None, suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(ops=OPS, quota=st.sampled_from([0, 12, 40]), sessions=st.sampled_from([1_000, 3]))
@hypothesis.example(ops=[("append", 0, 2, ""), ("delete", 0, 0, ""), ("append", 1, 3, "ns-a")], quota=0, sessions=1_000)
@hypothesis.example(
    ops=[("append", n % 3, 4, "ns-b") for n in range(8)] + [("delete", 1, 0, "")], quota=12, sessions=1_000
)
@hypothesis.example(ops=[("append", n, 1, "") for n in range(6)] * 2, quota=0, sessions=3)
def test_usage_given_concurrent_writes_and_deletes_stays_what_the_sessions_hold(
    tenancy: Tenancy, ops: list[tuple[str, int, int, str]], quota: int, sessions: int
) -> None:
    for port in tenancy.nodes:
        with redis.Redis(port=port) as client:
            client.flushall()
    memory = tenancy.service(Quotas(messages=quota, sessions=sessions))

    def run(share: list[tuple[str, int, int, str]]) -> None:
        for op, n, count, namespace in share:
            session = SessionRef("acme", f"s{n}")
            try:
                if op == "delete":
                    memory.delete_memory(session, namespace=namespace or None)
                elif op == "context":
                    memory.add_memory(session, [], context="summary " * count, namespace=namespace or None)
                else:
                    memory.add_memory(session, says(count, f"m{count}"), namespace=namespace or None)
            except QuotaExceededError:
                pass

    # Given four writers sharing the operations / When they run at once
    threads = [threading.Thread(target=run, args=(ops[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then the counters are what the live sessions hold, and never past the quota
    usage = tenancy.store.usage("acme")
    assert {name: usage[name] for name in ("sessions", "messages", "bytes")} == tenancy.held("acme")
    if quota:
        assert usage["messages"] <= quota
    assert usage["sessions"] <= sessions


def test_quota_given_new_sessions_written_at_once_lets_exactly_the_quota_in(tenancy: Tenancy) -> None:
    # Given a session quota of 5, and 16 writers each creating a session of its own at the same instant
    memory = tenancy.service(Quotas(sessions=5))
    start, admitted, refused = threading.Barrier(16), [], []

    def write(n: int) -> None:
        start.wait()
        try:
            memory.add_memory(SessionRef("acme", f"new-{n}"), says(1))
            admitted.append(n)
        except QuotaExceededError:
            refused.append(n)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then exactly five got in (on a cluster too, where the count is on another slot than the sessions), the usage
    # says five, and the others stored nothing
    assert (len(admitted), len(refused)) == (5, 11)
    assert tenancy.store.usage("acme")["sessions"] == 5 == tenancy.held("acme")["sessions"]
    for n in refused:
        assert memory.get_memory(SessionRef("acme", f"new-{n}")).messages == []


def test_http_given_a_quota_answers_429_json_and_stores_nothing(redis_server: EmbeddedRedis) -> None:
    with redis.Redis(port=redis_server.port) as client:
        client.flushall()
    with (
        cold_start(REDIS_URL=redis_server.url, MOTORHEAD_QUOTA_MESSAGES="2") as api,
        serving(api) as url,
    ):
        body = {"messages": [{"role": "Human", "content": "hi"}] * 2}
        assert requests.post(f"{url}/sessions/chat/memory", json=body, timeout=30).status_code == 200
        refused = requests.post(f"{url}/sessions/chat/memory", json=body, timeout=30)
        assert refused.status_code == 429
        assert refused.json() == {"error": "this tenant's quota of 2 messages is used up; nothing was stored"}
        assert len(requests.get(f"{url}/sessions/chat/memory", timeout=30).json()["messages"]) == 2


def test_quota_given_a_new_session_refused_for_its_bytes_takes_back_the_session_and_messages_it_counted(
    tenancy: Tenancy,
) -> None:
    # Given acme near its bytes quota, with room for sessions and messages
    first = NewMessage("Human", "x" * 40)
    memory = tenancy.service(Quotas(sessions=10, messages=100, bytes=stored_size(first) + 5))
    memory.add_memory(SessionRef("acme", "chat"), [first])
    before = tenancy.store.usage("acme")
    # When a new session's write is refused for its bytes (its session and messages counted before its bytes)
    with pytest.raises(QuotaExceededError, match="bytes stored"):
        memory.add_memory(SessionRef("acme", "new"), says(3, "y" * 30))
    # Then the usage is what it was, the session does not exist, and a write that fits is still counted once
    assert tenancy.store.usage("acme") == before == tenancy.held("acme") | {"namespaces": 1}
    assert memory.get_memory(SessionRef("acme", "new")).messages == []


def test_quota_given_a_call_refused_then_resent_as_it_was_is_judged_again(
    tenancy: Tenancy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given calls whose tokens are known: the third call is a resend of the second, as a client's resend of a call
    # whose answer was lost is (each call draws a version token, then its call token)
    tokens = iter(["v1", "call-1", "v2", "call-2", "v3", "call-2"])
    monkeypatch.setattr(store_module, "new_version", lambda: next(tokens))
    session = SessionRef("acme", "chat")
    tenancy.service(Quotas(messages=10)).add_memory(session, says(1))
    # When a call is refused for a quota, then sent again once the quota allows it
    with pytest.raises(QuotaExceededError):
        tenancy.service(Quotas(messages=2)).add_memory(session, says(2))
    tenancy.service(Quotas(messages=10)).add_memory(session, says(2))
    # Then the refused call left no trace that would make the resend look already stored: it is stored now
    assert len(tenancy.service(Quotas()).get_memory(session).messages) == 3
    assert tenancy.store.usage("acme")["messages"] == 3


def test_quota_given_namespaces_counted_before_an_adoption_counts_them_again_for_the_adopting_tenant(
    tenancy: Tenancy,
) -> None:
    # Given a tenant-less session written with quotas on under two namespaces (each counted among its names)
    counting = tenancy.service(Quotas(namespaces=10))
    session = SessionRef(NO_TENANT, "chat")
    counting.add_memory(session, says(1), namespace="one")
    counting.add_memory(session, says(1), namespace="two")
    assert tenancy.store.usage(NO_TENANT)["namespaces"] == 2
    # When acme adopts it, then writes to it under each namespace
    adopter = RedisSessionAdopter(tenancy.connector, Keys("mh"))
    assert adopter.adopt("acme", dry_run=False, keep_going=lambda: True).sessions_moved == 1
    adopted = SessionRef("acme", "chat")
    counting.add_memory(adopted, says(1), namespace="two")
    counting.add_memory(adopted, says(1), namespace="one")
    # Then both namespaces are counted among acme's names (what the session knew of the other tenant's says nothing)
    assert tenancy.store.usage("acme") | {"bytes": 0} == {"sessions": 1, "messages": 4, "bytes": 0, "namespaces": 2}


def test_quota_given_a_listing_entry_left_by_a_deleted_session_still_creates_it_within_the_quota(
    tenancy: Tenancy,
) -> None:
    # Given a listing entry naming a session that no longer exists (as a deletion that stopped midway leaves), and room
    # under the session quota
    memory = tenancy.service(Quotas(sessions=2))
    listing = Keys("mh").sessions_index("acme")
    client = tenancy.connector.client()
    client.zadd(listing, {"gone": 1})
    # When a write creates that session again
    memory.add_memory(SessionRef("acme", "gone"), says(1))
    # Then it is stored and counted once (on a cluster, where the listing said the session was known, the place it
    # needs is asked for after the write found it new)
    assert len(memory.get_memory(SessionRef("acme", "gone")).messages) == 1
    assert tenancy.store.usage("acme")["sessions"] == 1 == tenancy.held("acme")["sessions"]
    memory.add_memory(SessionRef("acme", "other"), says(1))
    with pytest.raises(QuotaExceededError, match="quota of 2 sessions"):
        memory.add_memory(SessionRef("acme", "third"), says(1))
