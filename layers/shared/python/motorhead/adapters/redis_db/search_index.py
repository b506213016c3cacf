"""The `search` vector backend: one shared HNSW index of the search module (``FT.*``) over every session's messages.

Only the subset of ``FT.*`` that Redis Stack, Redis 8, Amazon MemoryDB and valkey-search all accept is used: one
index ``ON HASH`` over the document prefix, with a ``session`` TAG, an ``id`` NUMERIC and a ``vector`` VECTOR HNSW
field (FLOAT32, COSINE); a query is a KNN search pre-filtered on the session's TAG, in DIALECT 2. No TEXT field
(valkey-search and MemoryDB have no full-text search): the keyword side of hybrid search reads the session's ``docs``
list, which ``add`` fills like the `exact` backend does.

The TAG value is the session's digest (``SessionKeys.tag``), never the session id, so no id can break a query or widen
it to another session's messages. A session's documents share its hash tag, so ``add`` is one Lua script on the
session's slot, and on a cluster a search runs on the node that holds the session.

How a query walks the index (``_QueryPolicy``): RediSearch answers a KNN pre-filtered on a TAG either by comparing
the query with every document the filter admits (exact) or by walking the HNSW graph in batches, keeping those the
filter admits (``HYBRID_POLICY BATCHES``: approximate). Left to its own estimate it chose the exact scan for a session
of 100,000 documents alone in the index, most of the lookup's time. When the sessions searched hold many documents
(``BATCHES_FROM_ROWS``) and at least half of the index's (``num_docs`` of ``FT.INFO``, read with the readiness check
and then, at most once a minute, in the pipeline of a retrieval), the filter is not selective and the query asks for
batches, its HNSW candidate list ``EF_RUNTIME`` long (a top-100 recall of 0.9996 against the exact top 100 at 100,000
messages, ``bench/locomo.py``). A server that refuses these attributes (valkey-search, MemoryDB) is told by the query
failing with them and succeeding without: the process then never sends them again.

A query with the session's texts at hand (a session or user retrieval, which reads them in the same pipeline or just
before) returns the score alone (``RETURN 1 __score``): the message comes from the texts, found by the id in the
document's key (``P:doc:{D}:ID``); a document the texts do not hold yet (indexed after they were read) is read
(``_load``).

Errors are told apart by their type, never by their text (servers word them differently, and the case changed
between versions): a query the server refuses (``ResponseError``) means the index is missing (dropped by a FLUSH) or
not ready, so ``vector_search`` checks the index again and retries once, then answers ``StoreUnavailableError``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from redis import Redis
from redis import exceptions as redis_errors
from redis.client import Pipeline
from redis.cluster import RedisCluster

from motorhead.adapters.redis_db.codec import encode
from motorhead.adapters.redis_db.connector import RedisClient, RedisConnector, mapped_errors
from motorhead.adapters.redis_db.index_record import record_embedder
from motorhead.adapters.redis_db.keys import Keys
from motorhead.adapters.redis_db.keyword_index import RedisKeywordIndex
from motorhead.core.values import SessionRef, StoredMessage, UserRef
from motorhead.errors import ConfigError, StoreUnavailableError
from motorhead.ltm.bm25 import SessionTexts
from motorhead.ltm.ports import KeywordIndex, Lookup, Scored, UserLookup, Vectors, lookup_apart
from motorhead.ltm.recipe import DenseText

# KEYS: 1 meta, 2 indexed, 3 doc_ids, 4 docs, then the document key of each message. ARGV: 1 generation, 2 session
# tag, then per message (id, role, content, created_at, message JSON, float32 vector). Writes nothing unless the
# session is still that generation; skips every id already indexed, so a retried job adds nothing twice.
_ADD = """
if redis.call('HGET', KEYS[1], 'gen') ~= ARGV[1] then
  return 0
end
local added = 0
for i = 1, #KEYS - 4 do
  local a = 3 + (i - 1) * 6
  local id = tonumber(ARGV[a])
  if redis.call('GETBIT', KEYS[2], id) == 0 then
    redis.call('HSET', KEYS[4 + i], 'session', ARGV[2], 'id', ARGV[a], 'role', ARGV[a + 1], 'content', ARGV[a + 2],
      'created_at', ARGV[a + 3], 'vector', ARGV[a + 5])
    redis.call('SADD', KEYS[3], ARGV[a])
    redis.call('RPUSH', KEYS[4], ARGV[a + 4])
    redis.call('SETBIT', KEYS[2], id, 1)
    added = added + 1
  end
end
return added
"""

BACKFILL_WAIT = 0.1  # seconds a search waits for a backfill to end before answering 503
BATCHES_FROM_ROWS = 30_000  # the sessions' documents from which (and half of the index's) a KNN walks in batches
EF_RUNTIME = 1_000  # the HNSW candidate list of such a walk (its recall, measured: ``_QueryPolicy``)
INDEX_SIZE_SECONDS = 60.0  # how long the index's document count read from FT.INFO is used before it is read again
_FLOAT32 = np.dtype("<f4")
_SCORE = "__score"
_RETURNED = ("id", "role", "content", "created_at", _SCORE)
# How FT.INFO names a vector field's dimensions: Redis Stack / Redis 8 (``dim``), valkey-search (``dimensions``,
# inside ``index``), MemoryDB (``dimension``).
_DIM_KEYS = frozenset({"dim", "dimension", "dimensions"})


class _QueryPolicy:
    """Whether a KNN query asks for ``HYBRID_POLICY BATCHES`` (see the module's docstring), from the index's
    document count (refreshed at most every ``INDEX_SIZE_SECONDS``) and the documents of the sessions searched; and
    whether this server takes the query attributes at all (learnt once per process)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._index_docs: int | None = None
        self._read_at: float | None = None
        self.rejected = False  # the server refused a query with the attributes and took it without them

    def stale(self) -> bool:
        """Whether the document count is due to be read again (``FT.INFO``)."""
        return not self.rejected and (self._read_at is None or self._clock() - self._read_at >= INDEX_SIZE_SECONDS)

    def read(self, info: Mapping[str, Any]) -> None:
        """Take the document count of an ``FT.INFO`` reply (none when the server does not report one)."""
        docs = info.get("num_docs")
        try:
            self._index_docs = None if docs is None else int(float(_text(docs)))
        except ValueError:
            self._index_docs = None
        self._read_at = self._clock()

    def batches(self, rows: int) -> bool:
        """Whether a query over sessions holding ``rows`` documents walks the graph in batches."""
        docs = self._index_docs
        return not self.rejected and docs is not None and rows >= BATCHES_FROM_ROWS and 2 * rows >= docs


class SearchVectorIndex:
    """Implements ``VectorIndex`` on the search module (``FT.CREATE``/``FT.SEARCH``)."""

    name = "search"

    def __init__(
        self,
        connector: RedisConnector,
        keys: Keys,
        *,
        new_texts: Callable[[], SessionTexts] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``new_texts``: the index serves the keyword side too (``KeywordIndex``, from the session's ``docs``);
        ``clock``: what times the index size's reads (``_QueryPolicy``)."""
        self._texts = None if new_texts is None else RedisKeywordIndex(connector, keys, new=new_texts)
        self._connector = connector
        self._keys = keys
        self._index = keys.search_index()
        self._wanted: tuple[str, int] | None = None  # what ensure_ready was last asked for
        self._ready: tuple[str, int] | None = None  # what this process has checked and found ready
        self._policy = _QueryPolicy(clock)

    # -- VectorIndex -------------------------------------------------------------------------------------------

    def ensure_ready(self, *, embedder: str, dimensions: int) -> DenseText:
        """Check the recorded embedder, create the index unless it exists (race-safe) and check its dimensions.

        The index counts as ready (cached for the process) once it exists and is not backfilling; the record is read
        at every call (one round trip), so an index recorded anew meanwhile is followed at once.
        """
        self._wanted = (embedder, dimensions)
        dense_text = record_embedder(self._connector, self._keys, embedder=embedder, dimensions=dimensions)
        if self._ready == self._wanted:
            return dense_text
        backfilling = False
        with mapped_errors():
            servers = _primaries(self._connector.client())
            for server in servers:
                info = self._info_or_create(server, dimensions)
                if len(servers) == 1 and not self._connector.is_cluster():
                    self._policy.read(info)
                found = _index_dimensions(info)
                if found is not None and found != dimensions:
                    raise ConfigError(
                        f"the search index {self._index} holds {found}-dim vectors but this deployment embeds with "
                        f"{embedder} ({dimensions} dims): drop the index (FT.DROPINDEX {self._index}) or keep the "
                        "embedder"
                    )
                backfilling = backfilling or _backfilling(info)
        if not backfilling:
            self._ready = self._wanted
        return dense_text

    def add(self, session: SessionRef, generation: str, messages: Sequence[StoredMessage], vectors: Vectors) -> int:
        if not messages:
            return 0
        rows = np.ascontiguousarray(vectors, dtype=_FLOAT32)
        if rows.ndim != 2 or rows.shape[0] != len(messages):
            raise ValueError(f"expected {len(messages)} vectors, got an array of shape {rows.shape}")
        if self._wanted is not None and rows.shape[1] != self._wanted[1]:
            raise ValueError(f"expected {self._wanted[1]}-dim vectors, got {rows.shape[1]}")
        keys = self._keys.session(session)
        doc_keys = [f"{keys.doc_prefix}{message.id}" for message in messages]
        args: list[Any] = [generation, keys.tag]
        for message, row in zip(messages, rows, strict=True):
            args += [message.id, message.role, message.content, message.created_at, encode(message), row.tobytes()]
        return int(
            self._connector.run_script(_ADD, (keys.meta, keys.indexed, keys.doc_ids, keys.docs, *doc_keys), args)
        )

    def vector_search(self, session: SessionRef, query: Vectors, k: int) -> list[Scored]:
        return [scored for _, scored in self.vector_search_many([session], query, k)]

    def texts(self, session: SessionRef) -> SessionTexts:
        return self._served_texts().texts(session)

    def texts_many(self, sessions: Sequence[SessionRef]) -> list[SessionTexts]:
        return self._served_texts().texts_many(sessions)

    checks_owner = False  # its KNN query and texts are separate reads: a user-level search checks bindings after

    def lookup_many(
        self,
        sessions: Sequence[SessionRef],
        query: Vectors,
        k: int,
        keywords: KeywordIndex,
        *,
        owner: str | None = None,
    ) -> Lookup:
        if keywords is not self or k <= 0 or not sessions or self._connector.is_cluster():
            return lookup_apart(self, self._served_texts() if keywords is self else keywords, sessions, query, k)
        # the texts' read and the KNN query (its policy from the texts held so far) in one pipeline (one round trip;
        # the keyword-only candidates' vectors are read after, by distances_many); the messages from the texts read
        self._require_ready()
        blob = _blob(query)
        served = self._served_texts()
        tags = [self._keys.session(session).tag for session in sessions]
        rows = sum(len(held) for session in sessions if (held := served.held(session)) is not None)
        command = self._search_command(tags, blob, k, batches=self._policy.batches(rows), bodies=False)
        texts, (reply, *info) = served.texts_beside(sessions, lambda pipe: self._queue(pipe, command))
        self._take_info(info)
        if isinstance(reply, Exception):  # the index gone or not ready: the KNN query alone, checked and retried
            return Lookup(texts=texts, nearest=lambda: self._nearest(sessions, query, k, rows=rows, texts=texts))
        hits = self._hits(sessions, _documents(reply), query, k, texts)
        return Lookup(texts=texts, nearest=lambda: hits)

    def lookup_user(
        self,
        user: UserRef,
        query: Callable[[], Vectors],
        k: int,
        keywords: KeywordIndex,
        *,
        limit: int,
        session_ids: frozenset[str] | None,
    ) -> UserLookup | None:
        """On a server without slots: the listing with each listed session's texts, binding and generation (one
        script), then the KNN query over the sessions bound to the user with, after it, their bindings again: a
        session deleted or re-created meanwhile (a new generation), by anyone, is left out, as is one a later read of
        its vectors (``recheck``) finds changed. One round trip when this process read the user's listing before
        (the KNN query over the sessions it read then, and their bindings, sent after the script in its pipeline;
        used when those are exactly the sessions the script finds bound to the user), else two."""
        if keywords is not self or k <= 0 or self._texts is None or self._connector.is_cluster():
            return None
        texts_index = self._texts
        self._require_ready()
        vector = query()
        known = texts_index.known_listed(user)
        early_tags = sorted(known)
        early: list[int] = []  # how many FT.INFO the early pipeline carries

        def beside(pipe: Pipeline) -> None:  # queued again when the script is reloaded (NOSCRIPT): counted anew
            early.clear()
            metas = [self._keys.tagged_session_key(user.tenant, tag, "meta") for tag in early_tags]
            early.append(self._queue_owned(pipe, early_tags, metas, vector, k, rows=sum(known.values())))

        if early_tags and session_ids is None:
            listed, early_replies = texts_index.texts_listed_beside(user, beside, limit=limit)
        else:
            listed, early_replies = texts_index.texts_listed(user, limit=limit, session_ids=session_ids), []
        sessions = [session for session, _, _ in listed]
        generations = {n: generation for n, (_, texts, generation) in enumerate(listed) if texts is not None}
        keyed = [self._keys.session(session) for session in sessions]

        def recheck(positions: set[int]) -> set[int]:
            asked = sorted(p for p in positions if p in generations)
            if not asked:
                return set()
            with mapped_errors():
                pipe = self._connector.client().pipeline(transaction=False)
                for p in asked:
                    pipe.hmget(keyed[p].meta, ["user", "gen"])
                replies = pipe.execute()
            return {
                p for p, (bound, now) in zip(asked, replies, strict=True) if bound == user.id and now == generations[p]
            }

        hits: list[tuple[int, Scored]] = []
        kept: set[int] = set()
        held = [texts_index.empty() if found is None else found for _, found, _ in listed]
        if generations:
            owned = sorted(generations)
            rows = sum(len(held[p]) for p in owned)
            by_tag = {keyed[p].tag: p for p in owned}
            if early_replies and sorted(by_tag) == early_tags:  # the KNN query sent beside the script holds
                refresh = early[0]
                reply, info = early_replies[0], early_replies[1 : 1 + refresh]
                bound_by_tag = dict(zip(early_tags, early_replies[1 + refresh :], strict=True))
                bindings = [_decoded_pair(bound_by_tag[keyed[p].tag]) for p in owned]
            else:
                with mapped_errors():
                    pipe = self._connector.client().pipeline(transaction=False)
                    tags, metas = [keyed[p].tag for p in owned], [keyed[p].meta for p in owned]
                    refresh = self._queue_owned(pipe, tags, metas, vector, k, rows=rows)
                    replies = pipe.execute(raise_on_error=False)
                reply, info, bindings = replies[0], replies[1 : 1 + refresh], replies[1 + refresh :]
            self._take_info(info)
            for binding in bindings:
                if isinstance(binding, Exception):
                    raise binding
            kept = {
                p for p, (bound, now) in zip(owned, bindings, strict=True) if bound == user.id and now == generations[p]
            }
            if isinstance(reply, Exception):  # the index gone or not ready: the KNN query alone, checked and retried
                chosen = sorted(kept)
                found = self._nearest(
                    [sessions[p] for p in chosen], vector, k, rows=rows, texts=[held[p] for p in chosen]
                )
                kept = recheck(kept)
                hits = [(chosen[p], scored) for p, scored in found if chosen[p] in kept]
            else:
                found = self._hits(sessions, _documents(reply), vector, k, held)
                hits = [(p, scored) for p, scored in found if p in kept]
        texts = [
            found_texts if found_texts is not None and n in kept else texts_index.empty()
            for n, (_, found_texts, _) in enumerate(listed)
        ]
        lookup = Lookup(texts=texts, nearest=lambda: hits, owned=[n in kept for n in range(len(listed))])
        return UserLookup(sessions=sessions, lookup=lookup, recheck=recheck)

    def distances(self, session: SessionRef, ids: Sequence[int], query: Vectors) -> dict[int, float]:
        return self.distances_many([(session, ids)], query)[0]

    def vector_search_many(self, sessions: Sequence[SessionRef], query: Vectors, k: int) -> list[tuple[int, Scored]]:
        """One KNN query pre-filtered on the sessions' TAGs (per node of a cluster without a coordinator)."""
        if k <= 0 or not sessions:
            return []
        held = [] if self._texts is None else [self._texts.held(session) for session in sessions]
        return self._nearest(sessions, query, k, rows=sum(len(texts) for texts in held if texts is not None))

    def _nearest(
        self,
        sessions: Sequence[SessionRef],
        query: Vectors,
        k: int,
        *,
        rows: int,
        texts: Sequence[SessionTexts] | None = None,
    ) -> list[tuple[int, Scored]]:
        """``vector_search_many`` over sessions of ``rows`` documents in all (its policy), the messages from ``texts``
        (each session's, just read) when given. A query the server refuses with the attributes and takes without is
        never sent with them again; one refused either way means the index is gone (a FLUSH drops it) or not ready:
        it is checked again (re-created), and the query retried once."""
        blob = _blob(query)
        self._require_ready()
        bodies, batches = texts is None, self._policy.batches(rows)
        try:
            reply = self._search(sessions, blob, k, batches=batches, bodies=bodies)
        except redis_errors.ResponseError:
            pass
        else:
            return self._hits(sessions, reply, query, k, texts)
        if batches:
            try:
                reply = self._search(sessions, blob, k, batches=False, bodies=bodies)
            except redis_errors.ResponseError:
                pass
            else:
                self._policy.rejected = True  # valkey-search, MemoryDB: no HYBRID_POLICY / EF_RUNTIME
                return self._hits(sessions, reply, query, k, texts)
        self._ready = None
        self._require_ready()
        try:
            reply = self._search(sessions, blob, k, batches=self._policy.batches(rows), bodies=bodies)
        except redis_errors.ResponseError as exc:
            raise StoreUnavailableError("search index not ready", detail=f"{self._index}: {exc}") from exc
        return self._hits(sessions, reply, query, k, texts)

    def _hits(
        self,
        sessions: Sequence[SessionRef],
        reply: list[tuple[str, dict[str, Any]]],
        query: Vectors,
        k: int,
        texts: Sequence[SessionTexts] | None = None,
    ) -> list[tuple[int, Scored]]:
        """The ``k`` nearest of a KNN query's documents, each with its session's position; never another session's.
        A document named with its score alone has its message from its session's ``texts``; one they do not hold, or
        named without its fields, is read (``_load``)."""
        positions = {self._keys.session(session).tag: n for n, session in enumerate(sessions)}
        hits: list[tuple[int, Scored]] = []
        unloaded: dict[int, list[str]] = {}
        for key, fields in reply:
            position = positions.get(_tag_of(key))
            if position is None:  # never another session's document
                continue
            if all(name in fields for name in _RETURNED):
                hits.append((position, _scored(fields)))
                continue
            message = None if texts is None or _SCORE not in fields else _held_message(texts[position], key)
            if message is not None:
                hits.append((position, Scored(message=message, distance=float(_text(fields[_SCORE])))))
            else:
                unloaded.setdefault(position, []).append(key)
        for position, keys in unloaded.items():
            hits += [(position, scored) for scored in self._load(sessions[position], keys, query)]
        hits.sort(key=lambda hit: (hit[1].distance, -hit[1].message.created_at))
        return hits[:k]

    def distances_many(
        self, wanted: Sequence[tuple[SessionRef, Sequence[int]]], query: Vectors
    ) -> list[dict[int, float]]:
        asked = [
            (self._keys.session(session).doc_prefix, list(dict.fromkeys(int(i) for i in ids)))
            for session, ids in wanted
        ]
        if not any(ids for _, ids in asked):
            return [{} for _ in wanted]
        vector = np.asarray(query, dtype=np.float32).reshape(-1)
        with mapped_errors():
            pipe = self._connector.client(binary=True).pipeline(transaction=False)
            for prefix, ids in asked:
                for message_id in ids:
                    pipe.hget(f"{prefix}{message_id}", "vector")
            blobs: list[bytes | None] = pipe.execute()
        answers: list[dict[int, float]] = []
        start = 0
        for _, ids in asked:
            found = [
                (i, blob)
                for i, blob in zip(ids, blobs[start : start + len(ids)], strict=True)
                if blob and len(blob) == vector.nbytes
            ]
            start += len(ids)
            if not found:
                answers.append({})
                continue
            matrix = np.frombuffer(b"".join(blob for _, blob in found), dtype=_FLOAT32).reshape(len(found), -1)
            similarity = matrix @ vector
            answers.append({i: float(1.0 - s) for (i, _), s in zip(found, similarity, strict=True)})
        return answers

    # -- internals ---------------------------------------------------------------------------------------------

    def _served_texts(self) -> RedisKeywordIndex:
        if self._texts is None:
            raise ConfigError("this search index was built without keyword texts (new_texts)")
        return self._texts

    def _load(self, session: SessionRef, doc_keys: Sequence[str], query: Vectors) -> list[Scored]:
        """Read and score documents a search named without their fields: one deleted while the query ran (skipped),
        or every hit of a search module that does not load fields (RediSearch on a cluster without coordinator)."""
        prefix = self._keys.session(session).doc_prefix
        own = [key for key in doc_keys if key.startswith(prefix)]  # never read another session's documents
        if not own:
            return []
        vector = np.asarray(query, dtype=np.float32).reshape(-1)
        with mapped_errors():
            pipe = self._connector.client(binary=True).pipeline(transaction=False)
            for key in own:
                pipe.hmget(key, ["id", "role", "content", "created_at", "vector"])
            rows: list[list[bytes | None]] = pipe.execute()
        loaded: list[Scored] = []
        for message_id, role, content, created_at, blob in rows:
            if message_id is None or role is None or content is None or created_at is None or blob is None:
                continue
            if len(blob) != vector.nbytes:
                continue
            message = StoredMessage(
                id=int(message_id), role=role.decode(), content=content.decode(), created_at=int(created_at)
            )
            distance = float(1.0 - np.frombuffer(blob, dtype=_FLOAT32) @ vector)
            loaded.append(Scored(message=message, distance=distance))
        return loaded

    def _create_args(self, dimensions: int) -> list[str | int]:
        return [
            "FT.CREATE", self._index, "ON", "HASH", "PREFIX", 1, self._keys.doc_root,
            "SCHEMA",
            "session", "TAG",
            "id", "NUMERIC",
            "vector", "VECTOR", "HNSW", 6, "TYPE", "FLOAT32", "DIM", dimensions, "DISTANCE_METRIC", "COSINE",
        ]  # fmt: skip

    def _info_or_create(self, server: Redis, dimensions: int) -> dict[str, Any]:
        """FT.INFO of the index on this server, created first if missing; another process creating it meanwhile is
        fine."""
        try:
            return _as_dict(_execute(server, "FT.INFO", self._index))
        except redis_errors.MovedError as exc:
            raise self._keyed_index_error(exc) from exc
        except redis_errors.ResponseError:
            pass  # no such index (yet): create it
        try:
            _execute(server, *self._create_args(dimensions))
        except redis_errors.MovedError as exc:
            raise self._keyed_index_error(exc) from exc
        except redis_errors.ResponseError as create_error:
            try:  # created by another process between our FT.INFO and FT.CREATE?
                return _as_dict(_execute(server, "FT.INFO", self._index))
            except redis_errors.ResponseError:
                raise ConfigError(
                    f"cannot create the search index {self._index} ({create_error}): the `search` vector backend "
                    "needs a server with vector search (Redis Stack, Redis 8, valkey-search, MemoryDB); "
                    "the `exact` backend works on any Redis"
                ) from create_error
        return _as_dict(_execute(server, "FT.INFO", self._index))

    def _keyed_index_error(self, exc: redis_errors.MovedError) -> ConfigError:
        return ConfigError(
            f"the search module of this Redis Cluster keeps {self._index} on one shard only (MOVED {exc}), so it "
            "would not index the sessions of the other shards: use a cluster whose search module has a coordinator "
            "(valkey-search, Redis Cloud/Software), a single shard (MemoryDB), or the `exact` backend"
        )

    def _require_ready(self) -> None:
        """Check the index unless this process already found it ready; refuse to search a backfilling index. A
        short backfill (an index just created over few documents, as after a FLUSHALL) is waited for, up to
        ``BACKFILL_WAIT`` seconds, rather than answered with a 503."""
        if self._ready is not None or self._wanted is None:
            return
        embedder, dimensions = self._wanted
        deadline = time.monotonic() + BACKFILL_WAIT
        self.ensure_ready(embedder=embedder, dimensions=dimensions)
        while self._ready is None and time.monotonic() < deadline:
            time.sleep(BACKFILL_WAIT / 4)
            self.ensure_ready(embedder=embedder, dimensions=dimensions)
        if self._ready is None:
            raise StoreUnavailableError(f"search index {self._index} is still backfilling; retry shortly")

    def _queue(self, pipe: Pipeline, command: Sequence[Any]) -> int:
        """Queue the KNN ``command``, and after it ``FT.INFO`` when the index's document count is due (1, else 0)."""
        pipe.execute_command(*command)  # type: ignore[no-untyped-call]
        if not self._policy.stale():
            return 0
        pipe.execute_command("FT.INFO", self._index)  # type: ignore[no-untyped-call]
        return 1

    def _queue_owned(
        self, pipe: Pipeline, tags: Sequence[str], metas: Sequence[str], vector: Vectors, k: int, *, rows: int
    ) -> int:
        """Queue a user-level search's KNN query over the sessions of these ``tags`` (``rows`` documents in all: its
        policy; the score alone, the messages from their texts), then each session's binding and generation read
        again (``HMGET`` of its meta, in the order of ``metas``): how many ``FT.INFO``
        ride between them (``_queue``)."""
        command = self._search_command(tags, _blob(vector), k, batches=self._policy.batches(rows), bodies=False)
        refresh = self._queue(pipe, command)
        for meta in metas:
            pipe.hmget(meta, ["user", "gen"])
        return refresh

    def _take_info(self, replies: Sequence[Any]) -> None:
        """The index's document count from the ``FT.INFO`` a pipeline carried, if it did and it was answered."""
        for info in replies:
            if not isinstance(info, Exception):
                self._policy.read(_as_dict(info))

    def _search(
        self, sessions: Sequence[SessionRef], blob: bytes, k: int, *, batches: bool, bodies: bool
    ) -> list[tuple[str, dict[str, Any]]]:
        """The documents of a KNN search over these sessions: one query on a single server (``FT.INFO`` beside it when
        due); on a cluster one per node that holds some of their slots (each session's documents live on the node of
        its hash tag)."""
        tags = [self._keys.session(session) for session in sessions]
        client = self._connector.client()
        groups: list[tuple[Redis, list[str]]] = []
        with mapped_errors():
            if isinstance(client, RedisCluster):
                by_node: dict[str, tuple[Redis, list[str]]] = {}
                for keys in tags:
                    node = client.get_node_from_key(keys.doc_prefix)  # type: ignore[no-untyped-call]
                    by_node.setdefault(node.name, (client.get_redis_connection(node), []))[1].append(keys.tag)
                groups = list(by_node.values())
            else:
                command = self._search_command([keys.tag for keys in tags], blob, k, batches=batches, bodies=bodies)
                pipe = client.pipeline(transaction=False)
                refresh = self._queue(pipe, command)
                reply, *info = pipe.execute(raise_on_error=False)
                self._take_info(info[:refresh])
                if isinstance(reply, Exception):
                    raise reply
                return _documents(reply)
            documents: list[tuple[str, dict[str, Any]]] = []
            for server, group in groups:
                command = self._search_command(group, blob, k, batches=batches, bodies=bodies)
                documents += _documents(_execute(server, *command))
        return documents

    def _search_command(
        self, tags: Sequence[str], blob: bytes, k: int, *, batches: bool = False, bodies: bool = True
    ) -> list[Any]:
        """FT.SEARCH of the ``k`` nearest documents to ``blob`` among those of these session tags: walking the HNSW
        graph in batches with ``batches`` (``_QueryPolicy``), each with its message's fields with ``bodies``, else
        with its score alone."""
        knn, params = "KNN $k @vector $blob", ["k", k, "blob", blob]
        if batches:
            knn += " HYBRID_POLICY BATCHES EF_RUNTIME $ef"
            params += ["ef", max(EF_RUNTIME, k)]
        returned = _RETURNED if bodies else (_SCORE,)
        return [
            "FT.SEARCH", self._index,
            f"@session:{{{' | '.join(tags)}}}=>[{knn} AS {_SCORE}]",
            "PARAMS", len(params), *params,
            "SORTBY", _SCORE,
            "LIMIT", 0, k,
            "RETURN", len(returned), *returned,
            "DIALECT", 2,
        ]  # fmt: skip


def _primaries(client: RedisClient) -> list[Redis]:
    """Where the index must exist, each asked directly (no redirection): every primary of a cluster, else the one
    server. A search module with a coordinator answers FT.* on every node; one without keeps the index on the node
    of the index name's slot and answers MOVED elsewhere."""
    if isinstance(client, RedisCluster):
        return [client.get_redis_connection(node) for node in client.get_primaries()]  # type: ignore[no-untyped-call]
    return [client]


def _execute(server: Redis, *args: Any) -> Any:
    return server.execute_command(*args)  # type: ignore[no-untyped-call]


def _blob(query: Vectors) -> bytes:
    return np.ascontiguousarray(query, dtype=_FLOAT32).reshape(-1).tobytes()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _as_dict(reply: Any) -> dict[str, Any]:
    """A RESP3 map, or a RESP2 flat list of names and values, as a dict keyed by text."""
    if isinstance(reply, Mapping):
        return {_text(key): value for key, value in reply.items()}
    if isinstance(reply, list | tuple):
        return {_text(reply[i]): reply[i + 1] for i in range(0, len(reply) - 1, 2)}
    return {}


def _pairs(value: Any) -> Iterable[tuple[str, Any]]:
    if isinstance(value, Mapping):
        yield from ((_text(k), v) for k, v in value.items())
    elif isinstance(value, list | tuple):
        for i in range(0, len(value) - 1, 2):
            if isinstance(value[i], str | bytes):
                yield _text(value[i]), value[i + 1]


def _find_dimensions(value: Any) -> int | None:
    for key, item in _pairs(value):
        if key.lower() in _DIM_KEYS and not isinstance(item, list | tuple | Mapping):
            return int(_text(item))
        if isinstance(item, list | tuple | Mapping):
            found = _find_dimensions(item)
            if found is not None:
                return found
    return None


def _index_dimensions(info: Mapping[str, Any]) -> int | None:
    """The DIM of the index's ``vector`` field, as FT.INFO reports it (None if this server does not say)."""
    fields = info.get("attributes", info.get("fields")) or []
    for field in fields:
        described = _as_dict(field)
        names = {_text(described.get(key, "")) for key in ("identifier", "attribute", "field_name")}
        if "vector" in names:
            return _find_dimensions(field)
    return None


def _backfilling(info: Mapping[str, Any]) -> bool:
    """Whether the index is still indexing existing keys: Redis Stack / Redis 8 ``indexing``, valkey-search
    ``backfill_in_progress``, MemoryDB ``backfill_status``."""
    for key in ("indexing", "backfill_in_progress"):
        if key in info and _text(info[key]).strip() not in ("0", ""):
            return True
    status = info.get("backfill_status")
    return status is not None and _text(status).strip().lower() != "completed"


def _documents(reply: Any) -> list[tuple[str, dict[str, Any]]]:
    """The key and returned fields of each document of an FT.SEARCH reply (RESP3 map or RESP2 array); the fields
    are empty when the server sent none."""
    if isinstance(reply, Mapping):
        results = _as_dict(reply).get("results") or []
        documents = [_as_dict(result) for result in results]
        return [(_text(doc.get("id", "")), _as_dict(doc.get("extra_attributes"))) for doc in documents]
    if isinstance(reply, list | tuple) and reply:
        return [(_text(key), _as_dict(fields)) for key, fields in zip(reply[1::2], reply[2::2], strict=False)]
    return []


def _scored(fields: Mapping[str, Any]) -> Scored:
    message = StoredMessage(
        id=int(_text(fields["id"])),
        role=_text(fields["role"]),
        content=_text(fields["content"]),
        created_at=int(_text(fields["created_at"])),
    )
    return Scored(message=message, distance=float(_text(fields[_SCORE])))


def _held_message(texts: SessionTexts, document_key: str) -> StoredMessage | None:
    """The message of a search document (``P:doc:{D}:ID``) among a session's texts, if they hold its id."""
    _, _, suffix = document_key.rpartition(":")
    row = texts.row_of.get(int(suffix)) if suffix.isdigit() else None
    return None if row is None else texts.messages[row]


def _decoded_pair(reply: Any) -> Any:
    """An ``HMGET`` reply read on a binary connection, as text (an error left as it is, for the caller to raise)."""
    if isinstance(reply, Exception):
        return reply
    return [None if value is None else _text(value) for value in reply]


def _tag_of(document_key: str) -> str:
    """The session tag in a search document's key (``P:doc:{D}:ID``)."""
    start = document_key.find("{")
    end = document_key.find("}", start + 1)
    return document_key[start + 1 : end] if start >= 0 and end > start else ""
