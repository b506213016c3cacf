"""API keys: created, listed and revoked without a redeploy, stored only as hashes, each belonging to one tenant.

A key reads ``mhk_<id>_<secret>``: the id (16 hex digits) is public and names the key in listings and logs; the secret
(43 characters, 256 random bits) is shown once, at creation, and only its SHA-256 is stored.

Each process keeps a copy of the key directory (every key's record) and checks a key against it: the presented secret's
hash is compared in constant time with the record's, or, for an id the directory does not hold, with a hash that
matches nothing, so a malformed key, an unknown id and a wrong secret cost no Redis work and take the same time. The
copy is checked against the store's revision (a counter every creation and revocation bumps) at most once per
``cache_seconds`` (1 by default, at most 60), and brought up to date only when it changed: a revoked key stops
working everywhere within that time, and a request costs no Redis read of its own for its key. Up to date means the
records of the keys created or deleted since (the store's log of changes names them), however many keys there are; the
whole directory is read again only when the log cannot tell (first load, a log trimmed past the copy's revision, more
than ``MAX_CHANGES_READ`` changes at once).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from motorhead.core.auth import ALL_SCOPES, Caller, Credential, Scope, check_tenant, require_tenant
from motorhead.errors import AuthenticationError, InvalidInputError

KEY_PREFIX = "mhk"
_KEY = re.compile(rf"^{KEY_PREFIX}_([0-9a-f]{{16}})_([A-Za-z0-9_-]{{43}})$")
MAX_CACHE_SECONDS = 60.0
MAX_CHANGES_READ = 1_000  # changes past this many since a copy's revision: the whole directory is read instead
_NO_MATCH = "0" * 64  # what an unknown id's secret is compared with: no SHA-256 of a 43-character secret is this


@dataclass(frozen=True, slots=True)
class StoredKey:
    """What is kept of a key: never the key itself."""

    key_id: str
    tenant: str
    secret_hash: str  # hex SHA-256 of the secret
    scopes: frozenset[Scope]
    created_at: int  # unix ms
    label: str = ""


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key as listings show it: no secret, no hash."""

    key_id: str
    tenant: str
    scopes: list[str]
    created_at: int
    label: str


class KeyStore(Protocol):
    def get(self, key_id: str) -> StoredKey | None: ...

    def put(self, key: StoredKey) -> None: ...

    def delete(self, key_id: str) -> bool:
        """True when the key existed."""
        ...

    def all(self) -> list[StoredKey]: ...

    def revision(self) -> str:
        """A token that changes whenever a key is created or deleted (read before ``all``: a change in between is
        seen at the next check)."""
        ...

    def changed(self, since: str, until: str) -> list[str] | None:
        """The ids of the keys created or deleted after revision ``since`` up to ``until``, or None when the store
        cannot tell them all (its log holds not every change in between): the caller then reads ``all``."""
        ...

    def some(self, key_ids: Sequence[str]) -> dict[str, StoredKey | None]:
        """The records of ``key_ids`` (None for one that is gone or unreadable), read together."""
        ...


def key_id_of(secret: str) -> str | None:
    """The public id of a well-formed API key (verified or not); None for anything else."""
    found = _KEY.match(secret.strip())
    return found.group(1) if found else None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def parse_scopes(names: Iterable[str]) -> frozenset[Scope]:
    try:
        scopes = frozenset(Scope(name.strip()) for name in names if name.strip())
    except ValueError as exc:
        raise InvalidInputError(f"scopes are among {', '.join(sorted(ALL_SCOPES))}") from exc
    if not scopes:
        raise InvalidInputError("a key needs at least one scope")
    return scopes


class ApiKeys:
    """The API key service (admin side: create, list, revoke; request side: ``authenticate``)."""

    method: Literal["api-key"] = "api-key"

    def __init__(
        self,
        store: KeyStore,
        *,
        cache_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self._store = store
        self._cache_seconds = min(max(cache_seconds, 0.0), MAX_CACHE_SECONDS)
        self._clock = clock
        self._now_ms = now_ms
        self._directory: dict[str, Caller] = {}  # key id -> the caller it is (the record's hash in secret_hashes)
        self._secret_hashes: dict[str, str] = {}
        self._revision: str | None = None  # of the directory held; None: not loaded yet
        self._checked_at = 0.0
        self._lock = threading.Lock()

    # -- admin ---------------------------------------------------------------------------------------------------

    def create(self, tenant: str, *, scopes: Iterable[str] = ALL_SCOPES, label: str = "") -> tuple[str, KeyInfo]:
        """A new key for ``tenant``: the key itself (shown once) and what listings will show of it."""
        check_tenant(tenant)
        if len(label) > 128:
            raise InvalidInputError("a key's label is at most 128 characters")
        key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        stored = StoredKey(
            key_id=key_id,
            tenant=tenant,
            secret_hash=_hash(secret),
            scopes=parse_scopes(scopes),
            created_at=self._now_ms(),
            label=label,
        )
        self._store.put(stored)
        return f"{KEY_PREFIX}_{key_id}_{secret}", _info(stored)

    def list(self, tenant: str | None = None) -> list[KeyInfo]:
        """Every key (of ``tenant`` when given), oldest first."""
        keys = [key for key in self._store.all() if tenant is None or key.tenant == tenant]
        return [_info(key) for key in sorted(keys, key=lambda k: (k.created_at, k.key_id))]

    def revoke(self, key_id: str) -> bool:
        """Delete the key; every process stops accepting it within ``cache_seconds``. False if there was none."""
        with self._lock:
            self._directory.pop(key_id, None)
            self._secret_hashes.pop(key_id, None)
        return self._store.delete(key_id)

    # -- requests ------------------------------------------------------------------------------------------------

    def authenticate(self, credential: Credential | None) -> Caller:
        if credential is None:
            raise AuthenticationError("missing credential: send an API key")
        found = _KEY.match(credential.secret.strip())
        if found is None:
            raise AuthenticationError("invalid API key")
        key_id, secret = found.groups()
        presented = _hash(secret)
        with self._lock:
            self._refresh()
            caller = self._directory.get(key_id)
            known_hash = self._secret_hashes.get(key_id, _NO_MATCH)
        # one comparison whether or not the id exists: the time tells nothing about which ids do
        matched = hmac.compare_digest(presented, known_hash)
        if caller is None or not matched:
            raise AuthenticationError("invalid API key")
        # a record naming no tenant ("" is the tenant-less caller of MOTORHEAD_AUTH=none, whose sessions predate
        # tenants) or an unusable one was not written by ``create``: refused, never let in as that tenant
        require_tenant(caller.tenant)
        return caller

    def _refresh(self) -> None:
        """Bring the directory up to the store's revision, at most once per ``cache_seconds`` (under the lock)."""
        now = self._clock()
        if self._revision is not None and now - self._checked_at < self._cache_seconds:
            return
        revision = self._store.revision()
        if revision != self._revision:
            changed = None if self._revision is None else self._store.changed(self._revision, revision)
            if changed is None or len(changed) > MAX_CHANGES_READ:  # the whole directory again
                keys = self._store.all()
                self._directory = {key.key_id: _caller(key) for key in keys}
                self._secret_hashes = {key.key_id: key.secret_hash for key in keys}
            else:  # only the keys created or deleted since: one read of their records, whatever the directory's size
                for key_id, stored in self._store.some(sorted(set(changed))).items():
                    if stored is None:
                        self._directory.pop(key_id, None)
                        self._secret_hashes.pop(key_id, None)
                    else:
                        self._directory[key_id] = _caller(stored)
                        self._secret_hashes[key_id] = stored.secret_hash
            self._revision = revision
        self._checked_at = now


def _caller(key: StoredKey) -> Caller:
    return Caller(tenant=key.tenant, scopes=key.scopes, method="api-key", key_id=key.key_id)


def _info(key: StoredKey) -> KeyInfo:
    return KeyInfo(
        key_id=key.key_id,
        tenant=key.tenant,
        scopes=sorted(scope.value for scope in key.scopes),
        created_at=key.created_at,
        label=key.label,
    )
