"""API keys: what is stored (only a hash), how a key is checked (against each process's copy of the key directory, in
constant time, checked against the store's revision at most every ``cache_seconds``), and what the admin side may
do."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest

from motorhead.core.api_keys import MAX_CACHE_SECONDS, ApiKeys
from motorhead.core.auth import ALL_SCOPES, AccessControl, Credential, Scope
from motorhead.errors import AuthenticationError, ForbiddenError, InvalidInputError, RateLimitedError
from tests.fakes import FakeKeyStore, FakeRateLimiter

KEY = re.compile(r"^mhk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def bearer(key: str) -> Credential:
    return Credential(kind="bearer", secret=key)


def service(cache_seconds: float = 30.0) -> tuple[ApiKeys, FakeKeyStore, Clock]:
    store, clock = FakeKeyStore(), Clock()
    return ApiKeys(store, cache_seconds=cache_seconds, clock=clock, now_ms=lambda: 42), store, clock


def test_create_given_a_tenant_returns_a_key_once_and_stores_only_its_hash() -> None:
    keys, store, _ = service()
    key, info = keys.create("acme", label="chat backend")
    found = KEY.match(key)
    assert found is not None and found.group(1) == info.key_id
    stored = store.keys[info.key_id]
    assert stored.secret_hash == hashlib.sha256(found.group(2).encode()).hexdigest()
    assert key not in repr(stored) and found.group(2) not in repr(stored)
    assert (info.tenant, info.scopes, info.created_at, info.label) == (
        "acme",
        sorted(s.value for s in ALL_SCOPES),
        42,
        "chat backend",
    )


def test_create_given_two_keys_never_repeats_an_id_or_a_secret() -> None:
    keys, _, _ = service()
    made = [keys.create("acme")[0] for _ in range(200)]
    assert len(set(made)) == 200 and len({k.split("_")[1] for k in made}) == 200


@pytest.mark.parametrize("tenant", ["", "a/b", "-dash", "x" * 65, "acme\n", "é", "a b"])
def test_create_given_an_unusable_tenant_refuses_it(tenant: str) -> None:
    with pytest.raises(InvalidInputError, match="tenant"):
        service()[0].create(tenant)


@pytest.mark.parametrize("scopes", [[], ["admin"], ["read", "root"]])
def test_create_given_unknown_or_no_scopes_refuses_them(scopes: list[str]) -> None:
    with pytest.raises(InvalidInputError, match="scope"):
        service()[0].create("acme", scopes=scopes)


def test_authenticate_given_the_key_returns_its_tenant_scopes_and_id() -> None:
    keys, _, _ = service()
    key, info = keys.create("acme", scopes=["read", "list"])
    caller = keys.authenticate(bearer(key))
    assert (caller.tenant, caller.scopes, caller.method, caller.key_id) == (
        "acme",
        frozenset({Scope.READ, Scope.LIST}),
        "api-key",
        info.key_id,
    )


@pytest.mark.parametrize(
    "presented",
    [
        None,
        "",
        "mhk_0123456789abcdef_" + "A" * 43,  # well-formed, unknown id
        "Bearer mhk_0123456789abcdef_" + "A" * 43,
        "mhk_0123456789ABCDEF_" + "A" * 43,  # upper-case id
        "mhk_0123456789abcdef_" + "A" * 42,  # one character short
        "sk-" + "A" * 48,
    ],
)
def test_authenticate_given_no_or_a_malformed_or_unknown_key_refuses_it(presented: str | None) -> None:
    keys, _, _ = service()
    keys.create("acme")
    with pytest.raises(AuthenticationError):
        keys.authenticate(None if presented is None else bearer(presented))


def test_authenticate_given_a_known_id_with_another_secret_refuses_it_even_from_the_cache() -> None:
    keys, _, _ = service()
    key, info = keys.create("acme")
    keys.authenticate(bearer(key))  # now cached
    forged = f"mhk_{info.key_id}_{'A' * 43}"
    with pytest.raises(AuthenticationError):
        keys.authenticate(bearer(forged))


def comparisons(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every ``hmac.compare_digest`` the key check makes from now on, as (presented, known) pairs."""
    compared: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr("motorhead.core.api_keys.hmac.compare_digest", spy)
    return compared


def test_authenticate_given_a_key_compares_hashes_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    keys, _, _ = service()
    key, _ = keys.create("acme")
    compared = comparisons(monkeypatch)
    keys.authenticate(bearer(key))
    assert len(compared) == 1 and len(compared[0][0]) == len(compared[0][1]) == 64


def test_authenticate_given_a_warm_directory_checks_the_revision_once_per_period_and_loads_only_on_change() -> None:
    keys, store, clock = service(cache_seconds=1)
    key, _ = keys.create("acme")
    # Given a process that loaded the directory on its first request
    for _ in range(5):
        keys.authenticate(bearer(key))
    assert (store.revision_reads, store.loads, store.reads) == (1, 1, 0)
    # When a second has passed / Then one revision check, and no load: nothing changed
    clock.now += 1
    keys.authenticate(bearer(key))
    assert (store.revision_reads, store.loads) == (2, 1)
    # And after a key is made elsewhere, the next check reads that key's record alone, not the directory
    other, _ = ApiKeys(store).create("globex")
    clock.now += 1
    keys.authenticate(bearer(key))
    assert (store.revision_reads, store.loads, store.reads) == (3, 1, 1)
    assert keys.authenticate(bearer(other)).tenant == "globex"


def test_authenticate_given_changes_elsewhere_brings_the_copy_up_to_date_key_by_key() -> None:
    # Given a warm process holding three keys among many
    keys, store, clock = service(cache_seconds=1)
    admin = ApiKeys(store)
    held = [keys.create("acme")[0] for _ in range(3)]
    for n in range(200):
        admin.create(f"tenant-{n}")
    keys.authenticate(bearer(held[0]))
    loads, reads = store.loads, store.reads
    # When another process revokes one key and creates another
    admin.revoke(KEY.match(held[1]).group(1))  # type: ignore[union-attr]
    made, _ = admin.create("globex")
    clock.now += 1
    # Then the next check reads the two changed records only: the revoked key is refused, the new one let in
    assert keys.authenticate(bearer(held[0])).tenant == "acme"
    assert (store.loads, store.reads - reads) == (loads, 2)
    with pytest.raises(AuthenticationError):
        keys.authenticate(bearer(held[1]))
    assert keys.authenticate(bearer(made)).tenant == "globex"


def test_authenticate_given_changes_the_log_no_longer_holds_reads_the_whole_directory() -> None:
    # Given a store that remembers the last 4 changes, and a process that saw the directory at some revision
    store, clock = FakeKeyStore(log=4), Clock()
    keys, admin = ApiKeys(store, clock=clock), ApiKeys(store)
    key, info = admin.create("acme")
    keys.authenticate(bearer(key))
    # When more changes than the log holds happen before its next check, the key's revocation among them
    admin.revoke(info.key_id)
    for n in range(5):
        admin.create(f"tenant-{n}")
    clock.now += 1
    # Then it reads the whole directory again (it cannot tell what changed) and refuses the key
    with pytest.raises(AuthenticationError):
        keys.authenticate(bearer(key))
    assert store.loads == 2


@pytest.mark.parametrize(
    "presented", ["mhk_0123456789abcdef_" + "A" * 43, "not-a-key", "mhk_0123456789ABCDEF_" + "A" * 43, ""]
)
def test_authenticate_given_an_unknown_id_or_a_malformed_key_reads_nothing_from_the_store(presented: str) -> None:
    # Given a warm process / When a thousand bad credentials come within a second
    keys, store, _ = service(cache_seconds=1)
    key, _ = keys.create("acme")
    keys.authenticate(bearer(key))
    before = (store.revision_reads, store.loads, store.reads)
    for _ in range(1_000):
        with pytest.raises(AuthenticationError):
            keys.authenticate(bearer(presented))
    # Then each was refused from memory: no read of the store at all
    assert (store.revision_reads, store.loads, store.reads) == before


def test_authenticate_given_an_unknown_id_compares_once_as_for_a_known_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a known id with a wrong secret, and an unknown id
    keys, _, _ = service()
    _, info = keys.create("acme")
    compared = comparisons(monkeypatch)
    for key_id in (info.key_id, "0123456789abcdef"):
        with pytest.raises(AuthenticationError):
            keys.authenticate(bearer(f"mhk_{key_id}_{'A' * 43}"))
    # Then both paths did the same work: one comparison of two 64-character hashes
    assert [(len(a), len(b)) for a, b in compared] == [(64, 64), (64, 64)]


def test_revoke_given_another_process_stops_the_key_within_the_cache_period() -> None:
    # Given two processes sharing a store: one keeps using a key, the other revokes it
    store, clock = FakeKeyStore(), Clock()
    api = ApiKeys(store, clock=clock)  # the default period: one second
    admin = ApiKeys(store, clock=clock)
    key, info = admin.create("acme")
    api.authenticate(bearer(key))
    assert admin.revoke(info.key_id) is True
    # When the API process sees it again within its period, it may still pass...
    clock.now += 0.5
    api.authenticate(bearer(key))
    # ...but after a second, never again
    clock.now += 0.5
    with pytest.raises(AuthenticationError):
        api.authenticate(bearer(key))
    assert admin.revoke(info.key_id) is False


def test_revoke_given_the_same_process_stops_the_key_at_once() -> None:
    keys, _, _ = service()
    key, info = keys.create("acme")
    keys.authenticate(bearer(key))
    keys.revoke(info.key_id)
    with pytest.raises(AuthenticationError):
        keys.authenticate(bearer(key))


def test_cache_given_a_longer_period_is_capped_at_60_seconds() -> None:
    keys, store, clock = service(cache_seconds=3_600)
    key, info = keys.create("acme")
    keys.authenticate(bearer(key))
    store.delete(info.key_id)  # revoked elsewhere
    clock.now += MAX_CACHE_SECONDS + 0.1
    with pytest.raises(AuthenticationError):
        keys.authenticate(bearer(key))


def test_list_given_tenants_shows_ids_and_scopes_never_keys_or_hashes() -> None:
    keys, store, _ = service()
    a, _ = keys.create("acme")
    keys.create("globex", scopes=["read"])
    listed = keys.list()
    assert [(k.tenant, k.scopes) for k in keys.list("globex")] == [("globex", ["read"])]
    assert len(listed) == 2
    text = repr(listed)
    assert a not in text and all(stored.secret_hash not in text for stored in store.keys.values())


def test_credential_given_repr_never_shows_the_secret() -> None:
    assert "secret-value" not in repr(Credential(kind="bearer", secret="secret-value"))


def test_access_given_a_key_without_the_scope_refuses_with_403_and_takes_no_rate_token() -> None:
    keys, _, _ = service()
    key, _ = keys.create("acme", scopes=["read"])
    limiter = FakeRateLimiter()
    access = AccessControl(keys, limiter)
    assert access.admit(bearer(key), Scope.READ).tenant == "acme"
    with pytest.raises(ForbiddenError, match="write"):
        access.admit(bearer(key), Scope.WRITE)
    assert limiter.calls == ["acme"]


def test_access_given_a_tenant_over_its_rate_refuses_with_the_wait() -> None:
    keys, _, _ = service()
    key, _ = keys.create("acme")
    access = AccessControl(keys, FakeRateLimiter({"acme": 0.25}))
    with pytest.raises(RateLimitedError) as refused:
        access.admit(bearer(key), None)
    assert refused.value.retry_after == 0.25
