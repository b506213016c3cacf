"""API keys in Redis: one hash per key (never the key, only its secret's SHA-256), a set of every key id, a revision
counter that every creation and deletion bumps (what each process checks its copy of the directory by), and a log of
the last changes (which key each revision changed: what a process reads to bring its copy up to date)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from motorhead.adapters.redis_db.connector import RedisConnector, mapped_errors
from motorhead.adapters.redis_db.keys import Keys
from motorhead.core.api_keys import StoredKey
from motorhead.core.auth import Scope
from motorhead.observability import logger

CHANGE_LOG = 10_000  # creations and deletions the log keeps (a process further behind reads every key)


class RedisKeyStore:
    """Implements ``motorhead.core.api_keys.KeyStore``."""

    def __init__(self, connector: RedisConnector, keys: Keys) -> None:
        self._connector = connector
        self._keys = keys

    def get(self, key_id: str) -> StoredKey | None:
        with mapped_errors():
            fields: dict[str, str] = self._connector.client().hgetall(self._keys.api_key(key_id))  # type: ignore[assignment]
        return _decode(key_id, fields) if fields else None  # a malformed record: refused like an unknown key

    def put(self, key: StoredKey) -> None:
        mapping: dict[Any, Any] = {  # redis-py types the mapping invariantly
            "tenant": key.tenant,
            "hash": key.secret_hash,
            "scopes": ",".join(sorted(scope.value for scope in key.scopes)),
            "created_at": key.created_at,
            "label": key.label,
        }
        with mapped_errors():
            pipe = self._connector.client().pipeline(transaction=False)
            pipe.hset(self._keys.api_key(key.key_id), mapping=mapping)
            pipe.sadd(self._keys.api_keys(), key.key_id)
            pipe.execute()
            self._bump(key.key_id)

    def delete(self, key_id: str) -> bool:
        with mapped_errors():
            pipe = self._connector.client().pipeline(transaction=False)
            pipe.delete(self._keys.api_key(key_id))
            pipe.srem(self._keys.api_keys(), key_id)
            existed, _ = pipe.execute()
            self._bump(key_id)
        return bool(existed)

    def _bump(self, key_id: str) -> None:
        """The revision moves only once the change is written (its own round trip, after the change's replies): on a
        cluster the record, the id set and the revision are on three nodes, and one pipeline to all three could bump
        the revision first; a process checking in between would keep the old directory under the new revision, a
        revoked key accepted until the next change. The log names the key after the revision moved: a process that
        reads the revision before the log has it finds a revision missing from the log and reads every key."""
        client = self._connector.client()
        revision = int(client.incr(self._keys.api_keys_revision()))
        pipe = client.pipeline(transaction=False)
        pipe.zadd(self._keys.api_keys_changes(), {f"{revision}:{key_id}": revision})
        pipe.zremrangebyrank(self._keys.api_keys_changes(), 0, -CHANGE_LOG - 1)
        pipe.execute()

    def revision(self) -> str:
        with mapped_errors():
            return str(self._connector.client().get(self._keys.api_keys_revision()) or "0")

    def changed(self, since: str, until: str) -> list[str] | None:
        try:
            first, last = int(since), int(until)
        except ValueError:
            return None
        if last <= first or last - first > CHANGE_LOG:  # the counter went back (data lost) or past what the log holds
            return None
        with mapped_errors():
            entries = self._connector.client().zrangebyscore(self._keys.api_keys_changes(), f"({first}", last)
        revisions: set[str] = set()
        ids: list[str] = []
        for entry in entries:
            revision, _, key_id = str(entry).partition(":")
            revisions.add(revision)
            ids.append(key_id)
        if revisions != {str(n) for n in range(first + 1, last + 1)}:  # a change the log does not hold (yet)
            return None
        return ids

    def all(self) -> list[StoredKey]:
        """Every readable key. Each record is read and decoded on its own: one that is not a hash, or not UTF-8, is
        left out (and logged once), never a failure of the whole directory (which would refuse every key)."""
        with mapped_errors():
            client = self._connector.client(binary=True)
            ids = sorted(
                key_id
                for key_id in (_text(raw) for raw in client.smembers(self._keys.api_keys()))
                if key_id is not None
            )
        return [key for key in self.some(ids).values() if key is not None]

    def some(self, key_ids: Sequence[str]) -> dict[str, StoredKey | None]:
        """The records of ``key_ids`` in one pipeline, each decoded on its own (None: gone or unreadable)."""
        with mapped_errors():
            pipe = self._connector.client(binary=True).pipeline(transaction=False)
            for key_id in key_ids:
                pipe.hgetall(self._keys.api_key(key_id))
            rows = pipe.execute(raise_on_error=False) if key_ids else []
        found: dict[str, StoredKey | None] = {}
        for key_id, raw in zip(key_ids, rows, strict=True):
            found[key_id] = None
            if isinstance(raw, Exception) or not isinstance(raw, dict):
                _report(key_id, f"not a hash ({type(raw).__name__})")
                continue
            fields = {_text(name): _text(value) for name, value in raw.items()}
            if None in fields or None in fields.values():
                _report(key_id, "not UTF-8")
                continue
            found[key_id] = _decode(key_id, cast("dict[str, str]", fields)) if fields else None
        return found


def _text(raw: object) -> str | None:
    try:
        return raw.decode() if isinstance(raw, bytes) else str(raw)
    except UnicodeDecodeError:
        return None


def _decode(key_id: str, fields: dict[str, str]) -> StoredKey | None:
    """The key its hash records; None, with a warning, for a record this version cannot read (no secret hash, a
    scope it does not know, a creation time that is not a number): such a key authenticates nothing, the caller gets
    the 401 of an unknown key rather than a 500, and the operator a log line naming the key id."""
    try:
        return StoredKey(
            key_id=key_id,
            tenant=fields.get("tenant", ""),  # none: refused when the key is presented (``require_tenant``)
            secret_hash=fields["hash"],
            scopes=frozenset(Scope(name) for name in fields.get("scopes", "").split(",") if name),
            created_at=int(fields.get("created_at", 0)),
            label=fields.get("label", ""),
        )
    except (KeyError, ValueError) as exc:
        _report(key_id, repr(exc))
        return None


def _report(key_id: str, error: str) -> None:
    if key_id not in _reported and len(_reported) < _MAX_REPORTED:  # once per key id and process: a caller
        _reported.add(key_id)  # presenting the key again must not buy a log line per request
        logger.warning("unreadable API key record: refused", extra={"key_id": key_id, "error": error})


_MAX_REPORTED = 1_000
_reported: set[str] = set()
