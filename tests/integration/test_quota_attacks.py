"""Attacks on the per-tenant quotas: a reply lost after the append ran and the call resent (what redis-py does on
a timeout), on a single Redis and on a cluster, and a deletion while an adoption copies the session; the usage
counters must stay what the tenant's live sessions hold, so that no tenant keeps more than its quota."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from devserver.embedded_redis import EmbeddedRedis, EmbeddedRedisCluster
from motorhead.adapters.redis_db import store as store_module
from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.keys import Keys
from motorhead.adapters.redis_db.tenant_migration import RedisSessionAdopter
from motorhead.core.values import NO_TENANT, MemoryLimits, Quotas, SessionRef
from motorhead.errors import QuotaExceededError
from tests.integration.test_quotas import Tenancy, fresh_tenancy, says

LIMITS = MemoryLimits(window=1_000)
KEYS = Keys("mh")


class _LostReplyConnector(RedisConnector):
    """What redis-py does when an EVALSHA's reply is lost (a socket timeout on a slow server, a dropped connection)
    after the server ran it: it sends the same command again (RedisCluster retries ConnectionError and TimeoutError up
    to ``cluster_error_retry_attempts`` times; the standalone client once, ``_one_retry``). Here: the append script
    runs, its reply is dropped, and it runs again with the same arguments (the same call token)."""

    lose_next_append_reply = False

    def run_script(
        self, source: str, keys: Sequence[str], args: Sequence[Any], *, binary: bool = False, charged: bool = True
    ) -> Any:
        if source == store_module._APPEND_SCRIPT and self.lose_next_append_reply:
            self.lose_next_append_reply = False
            super().run_script(source, keys, args, binary=binary, charged=charged)  # ran; its reply never arrives
        return super().run_script(source, keys, args, binary=binary, charged=charged)


@dataclass
class Lossy(Tenancy):
    """The tenancy of ``test_quotas.py`` on a connector that loses the next append reply when told to."""

    @property
    def lossy(self) -> _LostReplyConnector:
        assert isinstance(self.connector, _LostReplyConnector)
        return self.connector

    def usage(self, tenant: str) -> dict[str, int]:
        found = self.store.usage(tenant)
        return {name: found[name] for name in ("sessions", "messages", "bytes")}


@pytest.fixture(params=["standalone", pytest.param("cluster", marks=pytest.mark.cluster)])
def tenancy(
    request: pytest.FixtureRequest, redis_server: EmbeddedRedis, redis_cluster: EmbeddedRedisCluster
) -> Iterator[Lossy]:
    yield from fresh_tenancy(request.param == "cluster", redis_server, redis_cluster, _LostReplyConnector, Lossy)


# --- a lost reply, the call resent ------------------------------------------------------------------------------


@pytest.mark.parametrize("quotas", [Quotas(sessions=2, messages=4), Quotas(messages=4)], ids=["with-sessions", "no-sq"])
def test_quota_given_the_append_reply_lost_and_resent_keeps_the_usage_what_is_held(
    tenancy: Lossy, quotas: Quotas
) -> None:
    # Given a tenant with a quota of 4 messages, and a first write whose reply is lost after Redis ran it (the client
    # sends the same EVALSHA again: the append script recognises its call token and answers "already stored")
    memory = tenancy.service(quotas)
    tenancy.lossy.lose_next_append_reply = True
    memory.add_memory(SessionRef("acme", "chat"), says(3))
    # Then what the session holds is counted (docs/security.md: a write that may have landed is over-counted, never
    # under)
    assert tenancy.held("acme") == {"sessions": 1, "messages": 3, "bytes": tenancy.held("acme")["bytes"]}
    assert tenancy.usage("acme") == tenancy.held("acme")


def test_quota_given_lost_replies_a_tenant_keeps_more_than_its_quota(tenancy: Lossy) -> None:
    # Given a quota of 4 messages, and writes whose replies are lost once each (a slow or flapping cluster node)
    memory = tenancy.service(Quotas(messages=4))
    stored = 0
    for n in range(5):
        tenancy.lossy.lose_next_append_reply = True
        try:
            memory.add_memory(SessionRef("acme", f"chat-{n}"), says(4))
        except QuotaExceededError:
            break
        stored += 4
    # Then never more than the quota is kept
    assert stored <= 4, f"{stored} messages kept under a quota of 4; usage says {tenancy.usage('acme')}"


def test_quota_given_a_lost_reply_then_a_delete_usage_never_goes_negative(tenancy: Lossy) -> None:
    memory = tenancy.service(Quotas(messages=4))
    tenancy.lossy.lose_next_append_reply = True
    memory.add_memory(SessionRef("acme", "chat"), says(3))
    memory.delete_memory(SessionRef("acme", "chat"))
    assert tenancy.usage("acme") == {"sessions": 0, "messages": 0, "bytes": 0}


# --- a deletion while an adoption copies the session -------------------------------------------------------------


def test_adoption_given_the_tenant_deletes_the_copy_midway_usage_never_goes_negative(
    tenancy: Lossy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a tenant-less session of 50 messages written with quotas on (meta.q = 1: counted in the tenant-less usage)
    counting = tenancy.service(Quotas(messages=1_000))
    counting.add_memory(SessionRef(NO_TENANT, "chat"), says(50))
    acme = tenancy.service(Quotas(messages=10))
    # When acme adopts it, and an acme client deletes that session while the adoption copies it (the copy's meta
    # holds the source's q=1 from its RESTORE until _relist drops it, after the documents are copied and listed)
    copy_documents = RedisSessionAdopter._copy_documents

    def deleting_meanwhile(self: RedisSessionAdopter, source: Any, copy: Any) -> int:
        copied = copy_documents(self, source, copy)
        acme.delete_memory(SessionRef("acme", "chat"))
        return copied

    monkeypatch.setattr(RedisSessionAdopter, "_copy_documents", deleting_meanwhile)
    RedisSessionAdopter(tenancy.connector, KEYS).adopt("acme", dry_run=False, keep_going=lambda: True)
    # Then acme's usage is what it holds (nothing), not minus the other tenant's 50 messages...
    usage = tenancy.usage("acme")
    # ...and so acme cannot store 60 messages under a quota of 10
    stored = 0
    for n in range(6):
        try:
            acme.add_memory(SessionRef("acme", f"after-{n}"), says(10))
        except QuotaExceededError:
            break
        stored += 10
    assert (usage, stored) == ({"sessions": 0, "messages": 0, "bytes": 0}, 10)
