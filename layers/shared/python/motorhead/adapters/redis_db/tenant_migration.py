"""Adopting tenant-less sessions into a tenant, on Redis or Redis Cluster: the keys of each session are copied to the
tenant's keys, its search documents re-created under the tenant's session tag, its list entries moved, and the old
keys deleted.

A tenant-less session ``S = P:{D}`` and its copy ``S' = P:t:{H}:{D'}`` live in different cluster slots, so no Lua
script can move one atomically. The move is a sequence of idempotent steps instead, in an order that lets a later
run tell where an interrupted one stopped:

1. mark the source (``meta.adopting`` = the tenant's tag), so every copy of ``meta`` carries the mark;
2. copy every fixed key with ``DUMP``/``RESTORE ... REPLACE`` (any slot to any slot; TTLs kept), and each search
   document with its ``session`` TAG rewritten (``HGETALL``/``HSET``: the vector bytes are copied as they are);
3. add the id to the tenant's session list of every namespace whose tenant-less list holds it (``ZADD GT``: the
   later of two scores wins, so a list never goes back in time);
4. delete the source in one script on its slot (documents, then fixed keys), as ``DELETE`` does;
5. drop the mark and the job leases from the copy (``job_at``/``idx_at``, which belonged to the source's jobs, so the
   tenant's next POST may send its own jobs at once);
6. remove the id from the tenant-less lists.

A session is found through the tenant-less lists (``P:sessions:*``, SCANned on every primary) while any entry is
left, and through its ``meta`` (``P:{*}:meta``, whose ``id`` names the session) while any data is left. So a run
interrupted anywhere finds the session again: with its source still there (steps 1 to 3 done at most) the copy is
marked, and the run copies again over it; with the source gone (steps 4 and 5 done) only the list entries are left to
move. A copy whose ``meta`` is not marked is a session the tenant created itself (after auth was turned on, before
the adoption): it is a conflict, and neither session is touched.

Counts of a dry run are exact while nothing writes tenant-less sessions, which is the case once auth is on (a
background job still queued from before may run meanwhile; it changes a summary or an index, never which sessions
exist). A session a job changes between its copy and its deletion loses that change: run the adoption when the
queues are empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from redis import Redis
from redis import exceptions as redis_errors
from redis.cluster import RedisCluster

from motorhead.adapters.redis_db.connector import RedisConnector, mapped_errors
from motorhead.adapters.redis_db.keys import Keys, SessionKeys, tenant_tag
from motorhead.adapters.redis_db.store import DELETE_SESSION
from motorhead.core.tenancy import MAX_REPORTED_CONFLICTS, AdoptionReport
from motorhead.core.values import NO_TENANT, SessionRef, UserRef
from motorhead.errors import MotorheadError

MARK = "adopting"  # meta field: the tag of the tenant a session is being moved to
_DOC_BATCH = 256
_SCAN_COUNT = 1000

# KEYS: the source's meta. ARGV: the tenant's tag. Marks an existing session only (HSET would create a meta).
_MARK = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'adopting', ARGV[1])
end
return 1
"""

# KEYS: the copy's meta. ARGV: the tenant's tag. Unmarks a finished copy, and frees the leases of the source's jobs;
# a session the tenant created itself (never marked) is left as it is.
_UNMARK = """
if redis.call('HGET', KEYS[1], 'adopting') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'adopting', 'job_at', 'idx_at')
end
return 1
"""


class _Run:
    """The counts of one run; ``stopped`` once the time budget is spent."""

    def __init__(self, tenant: str, dry_run: bool, keep_going: Callable[[], bool]) -> None:
        self.tenant = tenant
        self.dry_run = dry_run
        self.keep_going = keep_going
        self.moved = 0
        self.documents = 0
        self.skipped = 0
        self.conflicts: dict[str, None] = {}  # ordered, without duplicates
        self.stopped = False

    def conflict(self, session_id: str) -> None:
        if len(self.conflicts) < MAX_REPORTED_CONFLICTS:
            self.conflicts[session_id] = None

    def report(self) -> AdoptionReport:
        return AdoptionReport(
            tenant=self.tenant,
            dry_run=self.dry_run,
            sessions_moved=self.moved,
            documents_moved=self.documents,
            skipped=self.skipped,
            conflicts=list(self.conflicts),
            complete=not self.stopped,
        )


class RedisSessionAdopter:
    """Implements ``motorhead.core.tenancy.SessionAdopter``."""

    def __init__(self, connector: RedisConnector, keys: Keys) -> None:
        self._connector = connector
        self._keys = keys

    def adopt(self, tenant: str, *, dry_run: bool, keep_going: Callable[[], bool]) -> AdoptionReport:
        if tenant == NO_TENANT:
            raise MotorheadError("adopt needs a tenant: sessions of no tenant already belong to no tenant")
        run = _Run(tenant, dry_run, keep_going)
        try:
            with mapped_errors():
                self._adopt(run)
        except redis_errors.ResponseError as exc:  # e.g. a server that refuses DUMP/RESTORE: say which, not a trace
            # a source is deleted only once fully copied, so whichever step failed, no session lost data
            raise MotorheadError(f"redis refused a step of the adoption: {exc}") from exc
        return run.report()

    # -- finding the sessions ------------------------------------------------------------------------------------

    def _adopt(self, run: _Run) -> None:
        namespaces = self._tenantless_namespaces()
        # First every session that a tenant-less list shows, namespace by namespace. A session listed in several
        # namespaces is handled at its first one (in this order) and passed over at the others.
        for position, namespace in enumerate(namespaces):
            for session_id, _score in self._text().zscan_iter(self._list(NO_TENANT, namespace), count=_SCAN_COUNT):
                if not run.keep_going():
                    run.stopped = True
                    return
                entries = self._entries(str(session_id), namespaces)
                if any(ns in entries for ns in namespaces[:position]):
                    continue  # handled at an earlier namespace (counted there, or a conflict left in place)
                self._one(run, str(session_id), entries)
        # Then the sessions that hold data but no list shows (a GET still finds them).
        handled: set[str] = set()  # SCAN may name a key twice
        for meta_key in self._scan(self._meta_pattern(), "hash"):
            if not run.keep_going():
                run.stopped = True
                return
            session_id = self._text().hget(meta_key, "id")
            if not isinstance(session_id, str) or session_id in handled:
                continue
            if self._source(session_id).meta != meta_key:
                continue  # not the meta of the session it names: not ours to move
            handled.add(session_id)
            entries = self._entries(session_id, namespaces)
            if entries:
                continue  # listed: the first pass handled it
            self._one(run, session_id, entries)

    def _tenantless_namespaces(self) -> list[str]:
        """The namespaces that have a tenant-less session list, in a fixed order (few: one per namespace used)."""
        root = self._list(NO_TENANT, "")
        return sorted({name[len(root) :] for name in self._scan(f"{root}*", "zset")})

    def _entries(self, session_id: str, namespaces: Sequence[str]) -> dict[str, float]:
        """The tenant-less lists that show the session, and its score (the unix ms of its last POST) in each."""
        if not namespaces:
            return {}
        pipe = self._text().pipeline(transaction=False)
        for namespace in namespaces:
            pipe.zscore(self._list(NO_TENANT, namespace), session_id)
        scores = pipe.execute()
        return {ns: float(score) for ns, score in zip(namespaces, scores, strict=True) if score is not None}

    def _scan(self, pattern: str, kind: str) -> Iterator[str]:
        """Keys matching ``pattern``, of type ``kind``, on every primary of a cluster (SCAN sees one node)."""
        client = self._text()
        servers: list[Redis]
        if isinstance(client, RedisCluster):
            servers = [client.get_redis_connection(node) for node in client.get_primaries()]  # type: ignore[no-untyped-call]
        else:
            servers = [client]
        for server in servers:
            for key in server.scan_iter(match=pattern, count=_SCAN_COUNT, _type=kind):
                yield str(key)

    def _meta_pattern(self) -> str:
        """``P:{*}:meta``: the meta of every tenant-less session (a tenant's is ``P:t:...``, another shape)."""
        sample = self._source("")
        return sample.meta.replace("{" + sample.tag + "}", "{*}")

    # -- moving one session --------------------------------------------------------------------------------------

    def _one(self, run: _Run, session_id: str, entries: dict[str, float]) -> None:
        source, copy = self._source(session_id), self._copy(run.tenant, session_id)
        tag = tenant_tag(run.tenant)
        text = self._text()
        pipe = text.pipeline(transaction=False)
        pipe.exists(*source.all())
        pipe.hget(source.meta, MARK)
        source_exists, source_mark = pipe.execute()
        pipe = text.pipeline(transaction=False)
        pipe.exists(copy.meta)
        pipe.hget(copy.meta, MARK)
        copy_has_meta, copy_mark = pipe.execute()
        if not source_exists:
            if not entries:
                return  # nothing left of it (SCAN named it again after its move)
            run.skipped += 1  # moved by an earlier run that stopped before unlisting it: finish that
            if not run.dry_run:
                self._relist(run, session_id, entries)
            return
        if (source_mark is not None and source_mark != tag) or (copy_has_meta and copy_mark != tag):
            run.conflict(session_id)  # the tenant's own session of that id, or another tenant's adoption of it
            return
        if run.dry_run:
            run.moved += 1
            run.documents += int(text.scard(source.doc_ids))
            return
        self._connector.run_script(_MARK, (source.meta,), [tag])
        self._copy_keys(source, copy)
        run.documents += self._copy_documents(source, copy)
        self._relist(run, session_id, entries, delete_source=True)
        run.moved += 1

    def _copy_keys(self, source: SessionKeys, copy: SessionKeys) -> None:
        """Every fixed key of the source over the copy's (a key the source lacks is deleted from the copy too), in one
        transaction on the copy's slot that also takes out of the copy's meta what says it is counted in the source
        tenant's usage (``q``, ``qfirst``, the ``ns:<name>`` marks): the tenant never sees the copy counted, so a
        deletion of it while the adoption runs takes nothing off the tenant's usage."""
        binary = self._binary()
        pipe = binary.pipeline(transaction=False)
        for key in source.all():
            pipe.dump(key)
            pipe.pttl(key)
        pipe.smembers(source.namespaces)
        *dumped, namespaces = pipe.execute()
        marks = [b"ns:" + bytes(name) for name in sorted(namespaces)]
        pipe = binary.pipeline(transaction=True)
        for index, target in enumerate(copy.all()):
            payload, ttl = dumped[2 * index], int(dumped[2 * index + 1])
            if payload is None:
                pipe.delete(target)
            else:
                pipe.restore(target, max(ttl, 0), payload, replace=True)
        pipe.hdel(copy.meta, "q", "qfirst", *marks)
        pipe.execute()

    def _copy_documents(self, source: SessionKeys, copy: SessionKeys) -> int:
        """The source's search documents under the copy's prefix, each with the copy's TAG; how many."""
        ids = sorted(str(i) for i in self._text().smembers(source.doc_ids))
        binary = self._binary()
        copied = 0
        for start in range(0, len(ids), _DOC_BATCH):
            batch = ids[start : start + _DOC_BATCH]
            pipe = binary.pipeline(transaction=False)
            for doc_id in batch:
                pipe.hgetall(source.doc_prefix + doc_id)
                pipe.pttl(source.doc_prefix + doc_id)
            read = pipe.execute()
            pipe = binary.pipeline(transaction=False)
            for index, doc_id in enumerate(batch):
                fields: dict[Any, Any] = dict(read[2 * index])
                ttl = int(read[2 * index + 1])
                if not fields:
                    continue  # listed but gone: nothing to copy
                fields[b"session"] = copy.tag.encode()
                target = copy.doc_prefix + doc_id
                pipe.delete(target)
                pipe.hset(target, mapping=fields)
                if ttl > 0:
                    pipe.pexpire(target, ttl)
                copied += 1
            pipe.execute()
        return copied

    def _relist(self, run: _Run, session_id: str, entries: dict[str, float], *, delete_source: bool = False) -> None:
        """Steps 3 to 6: list under the tenant, delete the source, unmark the copy, unlist the source."""
        source, copy = self._source(session_id), self._copy(run.tenant, session_id)
        text = self._text()
        user = text.hget(copy.meta, "user")  # a session bound to a user is listed under the tenant's same user
        if entries or user:
            pipe = text.pipeline(transaction=False)
            for namespace, score in sorted(entries.items()):
                pipe.zadd(self._list(run.tenant, namespace), {session_id: score}, gt=True)
            if user:
                score = max(entries.values(), default=0.0)
                listing = self._keys.user_sessions(UserRef(run.tenant, str(user)))
                pipe.zadd(listing, {session_id: score}, gt=True)
                pipe.hset(copy.meta, "ulist", listing)  # the source's names the tenant-less user's listing
            pipe.execute()
        # not in the tenant's usage yet: counted whole at its next write, its namespaces as new to the tenant's names
        # (meta's ns:<name> marks of the source's tenant say nothing of this one's)
        marks = [f"ns:{name}" for name in sorted(str(ns) for ns in text.smembers(copy.namespaces))]
        text.hdel(copy.meta, "q", "qfirst", *marks)
        if delete_source:  # the source leaves the tenant-less usage (on a cluster, on its own slot, after)
            cluster = self._connector.is_cluster()
            usage = self._keys.tenant_usage(NO_TENANT)
            deleted = self._connector.run_script(
                DELETE_SESSION, source.all(), [source.doc_prefix, "", "" if cluster else usage]
            )
            if cluster and int(deleted[1]):
                pipe = text.pipeline(transaction=False)
                pipe.hincrby(usage, "sessions", -1)
                pipe.hincrby(usage, "messages", -int(deleted[2]))
                pipe.hincrby(usage, "bytes", -int(deleted[3]))
                pipe.execute()
        self._connector.run_script(_UNMARK, (copy.meta,), [tenant_tag(run.tenant)])
        if entries or user:
            pipe = text.pipeline(transaction=False)
            for namespace in entries:
                pipe.zrem(self._list(NO_TENANT, namespace), session_id)
            if user:
                pipe.zrem(self._keys.user_sessions(UserRef(NO_TENANT, str(user))), session_id)
                pipe.hdel(self._keys.user_session_tags(UserRef(NO_TENANT, str(user))), session_id)
            pipe.execute()

    # -- keys and clients ----------------------------------------------------------------------------------------

    def _source(self, session_id: str) -> SessionKeys:
        return self._keys.session(SessionRef(tenant=NO_TENANT, id=session_id))

    def _copy(self, tenant: str, session_id: str) -> SessionKeys:
        return self._keys.session(SessionRef(tenant=tenant, id=session_id))

    def _list(self, tenant: str, namespace: str) -> str:
        return self._keys.sessions_index(tenant, namespace)

    def _text(self) -> Redis | RedisCluster:
        return self._connector.client()

    def _binary(self) -> Redis | RedisCluster:
        return self._connector.client(binary=True)
