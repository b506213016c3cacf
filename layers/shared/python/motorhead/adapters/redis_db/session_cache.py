"""One incremental, per-process cache of a session's indexed messages, shared by the exact vector index (messages and
their vectors) and the keyword index (messages and their postings).

Both backends append every indexed message to the session's ``docs`` list (the `exact` one also appends its vector
to ``vectors``), in one atomic script, and never rewrite what is there. So a reader keeps what it has read, and asks
only for the rows after it: one consistent read of the generation and the new rows. When the generation differs from
the cached one (first read, session deleted and re-created, or a list shorter than the cache after a failover lost
its last writes), the cache of that session starts over.

A user's sessions (``get_listed``, a server without slots) are read with the user's listing in one script, which
builds their keys from the tags kept beside the listing (``listed.py``): the process sends the row offset of each
session it last read through that listing (``_Entry.listing``), and a listed session it holds from another read
(sent no offset) is read whole and its cache started over.

Memory is bounded: the cache keeps the ``max_sessions`` (1,024) most recently used sessions, and drops the least
recently used ones while it holds more than ``max_rows`` rows in all (the session just read is always kept). At 384
dims a row of the exact index costs about 1.8 kB (its vector and message), so the default bound is about 360 MB per
cache at most, and a session bigger than the bound is read whole for each search.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from redis.client import Pipeline

from motorhead.adapters.redis_db.codec import decode
from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.keys import Keys, SessionKeys, session_key_suffix
from motorhead.adapters.redis_db.listed import TAGS_LUA, given_args, wrong_tags
from motorhead.core.values import SessionRef, StoredMessage, UserRef

# KEYS: meta, docs[, vectors]. ARGV: 1 row offset, 2 bytes per vector row, 3 most rows to return, 4 the user the
# session must be bound to ("" for any). The generation, up to that many messages after the offset and, with a third
# key, their vectors, and the list's length; the generation comes back marked when the list is shorter than the
# offset, so the cache starts over then too; a session not bound to that user answers a length of -1 and nothing else
# (its binding read in the same step as its rows: what is returned is that user's).
_READ_FROM = """
local meta = redis.call('HMGET', KEYS[1], 'gen', 'user')
if ARGV[4] ~= '' and meta[2] ~= ARGV[4] then
  return {'', {}, '', -1}
end
local generation = meta[1] or ''
local offset = tonumber(ARGV[1])
local length = redis.call('LLEN', KEYS[2])
if length < offset then
  generation = generation .. '/shorter'
end
local docs = redis.call('LRANGE', KEYS[2], offset, offset + tonumber(ARGV[3]) - 1)
if #KEYS < 3 or #docs == 0 then
  return {generation, docs, '', length}
end
local width = tonumber(ARGV[2])
return {generation, docs, redis.call('GETRANGE', KEYS[3], offset * width, (offset + #docs) * width - 1), length}
"""

# _READ_FROM for many sessions in one call (a server without slots): KEYS: each session's meta, docs[, vectors].
# ARGV: 1 bytes per vector row, 2 most rows to return in all, 3 keys per session, 4 the user each session must be
# bound to ("" for any), then each session's row offset. The four values of _READ_FROM per session, in order; the
# rows are shared out first come, first served.
_READ_MANY = """
local width, budget, per, owner = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local out = {}
for s = 0, #KEYS / per - 1 do
  local offset = tonumber(ARGV[5 + s])
  local meta = redis.call('HMGET', KEYS[s * per + 1], 'gen', 'user')
  local generation = meta[1] or ''
  local length = -1
  if owner == '' or meta[2] == owner then
    length = redis.call('LLEN', KEYS[s * per + 2])
  end
  if length >= 0 and length < offset then
    generation = generation .. '/shorter'
  end
  local docs = {}
  local take = math.min(length - offset, budget)
  if take > 0 then
    docs = redis.call('LRANGE', KEYS[s * per + 2], offset, offset + take - 1)
    budget = budget - #docs
  end
  local raw = ''
  if per == 3 and #docs > 0 then
    raw = redis.call('GETRANGE', KEYS[s * per + 3], offset * width, (offset + #docs) * width - 1)
  end
  out[#out + 1] = generation
  out[#out + 1] = docs
  out[#out + 1] = raw
  out[#out + 1] = length
end
return out
"""

# _READ_MANY of the sessions of a user's listing, the listing read in the same step (a server without slots; the
# sessions' keys built from their tags, listed.py). KEYS: the user's listing, its tags. ARGV: 1 bytes per vector row,
# 2 most rows to return in all, 3 most sessions to read (the most recently written first), 4 the user each session
# must be bound to, 5 Keys.session_head, 6-8 the suffixes of a session's meta, docs and vectors ("" for none), 9 how
# many ids the listed ones are filtered on (-1: none), those ids, how many (tag, row offset) pairs follow, those
# pairs (the offsets this process holds; 0 for another tag), then (id, tag) pairs the caller computed. Seven values
# per listed session, newest first: its id, the tag its keys were built from ("" when unknown: then nothing was read
# and its length is -2), the row offset it was read from, and the four values of _READ_FROM.
_READ_LISTED = (
    TAGS_LUA
    + """
local width, budget, owner, head = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[4], ARGV[5]
local at = 9
local count = tonumber(ARGV[at])
local wanted = nil
if count >= 0 then
  wanted = {}
  for i = at + 1, at + count do
    wanted[ARGV[i]] = true
  end
  at = at + count
end
at = at + 1
count = tonumber(ARGV[at])
local known = {}
for i = at + 1, at + 2 * count, 2 do
  known[ARGV[i]] = tonumber(ARGV[i + 1])
end
at = at + 2 * count + 1
local given = {}
for i = at, #ARGV, 2 do
  given[ARGV[i]] = ARGV[i + 1]
end
local ids = {}
for _, id in ipairs(redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1)) do
  if not wanted or wanted[id] then
    ids[#ids + 1] = id
  end
end
if #ids == 0 then
  return {}
end
local tags = known_tags(ids, given)
local out = {}
for i, id in ipairs(ids) do
  local tag = tags[i]
  local offset, generation, docs, raw, length = 0, '', {}, '', -2
  if tag then
    offset = known[tag] or 0
    local meta = redis.call('HMGET', head .. tag .. ARGV[6], 'gen', 'user')
    generation = meta[1] or ''
    length = -1
    if meta[2] == owner then
      length = redis.call('LLEN', head .. tag .. ARGV[7])
    end
    if length >= 0 and length < offset then
      generation = generation .. '/shorter'
    end
    local take = math.min(length - offset, budget)
    if take > 0 then
      docs = redis.call('LRANGE', head .. tag .. ARGV[7], offset, offset + take - 1)
      budget = budget - #docs
    end
    if ARGV[8] ~= '' and #docs > 0 then
      raw = redis.call('GETRANGE', head .. tag .. ARGV[8], offset * width, (offset + #docs) * width - 1)
    end
  end
  out[#out + 1] = id
  out[#out + 1] = tag or ''
  out[#out + 1] = offset
  out[#out + 1] = generation
  out[#out + 1] = docs
  out[#out + 1] = raw
  out[#out + 1] = length
end
return out
"""
)

MAX_CACHED_SESSIONS = 1_024  # a user's history is many sessions: the rows bound is the one that bounds memory
MAX_CACHED_ROWS = 200_000
PAGE_ROWS = 2_000  # rows per read: a big session is read in pages, never in one reply that could outlast the timeout

T = TypeVar("T")
Extend = Callable[[T, list[StoredMessage], bytes], None]


@dataclass
class _Entry(Generic[T]):
    generation: str
    rows: int
    value: T
    listing: str = ""  # the user listing it was last read through (its offset is sent with that listing's reads)


class SessionRowCache(Generic[T]):
    """``get(session)`` is the session's rows as ``extend`` folded them into ``new()``, read incrementally.

    ``vector_bytes`` > 0 also reads the session's vectors (that many bytes per row) and hands them to ``extend``
    beside the messages."""

    def __init__(
        self,
        connector: RedisConnector,
        keys: Keys,
        *,
        new: Callable[[], T],
        extend: Extend[T],
        vector_bytes: int = 0,
        max_sessions: int = MAX_CACHED_SESSIONS,
        max_rows: int = MAX_CACHED_ROWS,
        page_rows: int = PAGE_ROWS,
    ) -> None:
        self._connector = connector
        self._keys = keys
        self._new = new
        self._extend = extend
        self._vector_bytes = vector_bytes
        self._max_sessions = max_sessions
        self._max_rows = max_rows
        self._page_rows = page_rows
        self._entries: OrderedDict[str, _Entry[T]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: SessionRef) -> T:
        return self.get_many([session])[0]

    def get_many(self, sessions: Sequence[SessionRef]) -> list[T]:
        """``get`` of each session; the first page of all of them is read in one pipeline (a user's history)."""
        return [value for value in self.get_owned(sessions, owner="") if value is not None]

    def get_owned(self, sessions: Sequence[SessionRef], *, owner: str) -> list[T | None]:
        """``get_many``, of the sessions bound to the user ``owner`` only ("" for any): None for the others, each
        session's binding read in the same step as its rows (so what is returned was that user's when read)."""
        return self._get(sessions, owner, None)[0]

    def get_many_beside(
        self, sessions: Sequence[SessionRef], beside: Callable[[Pipeline], object]
    ) -> tuple[list[T], list[Any]]:
        """``get_many``, its first read in one pipeline with the commands ``beside`` queues (a server without slots):
        the sessions' values and those commands' replies (an error among them returned, not raised)."""
        values, replies = self._get(sessions, "", beside)
        return [value for value in values if value is not None], replies

    def _get(
        self, sessions: Sequence[SessionRef], owner: str, beside: Callable[[Pipeline], object] | None
    ) -> tuple[list[T | None], list[Any]]:
        keyed = [self._keys.session(session) for session in sessions]
        with self._lock:
            entries: list[_Entry[T] | None] = [self._entries.pop(keys.tag, None) for keys in keyed]
        found: list[T | None] = [None] * len(keyed)
        replies: list[Any] = []
        try:
            firsts, replies = self._read_many(keyed, entries, owner, beside)
            for n, (keys, first) in enumerate(zip(keyed, firsts, strict=True)):
                found[n] = self._fill(keys, entries, n, first, owner)
        finally:  # kept even when a page fails: what was read is consistent (rows are counted page by page)
            for keys, entry in zip(keyed, entries, strict=True):
                if entry is not None:
                    self._keep(keys.tag, entry)
        return found, replies

    def _fill(
        self,
        keys: SessionKeys,
        entries: list[_Entry[T] | None],
        n: int,
        first: tuple[str, list[bytes], bytes, int],
        owner: str,
    ) -> T | None:
        """Fold a first read (from ``entries[n]``'s offset) into that entry, and read the rest a page at a time:
        the session's value, or None when it is not bound to ``owner`` (a length of -1)."""
        generation, docs, raw, length = first
        while length >= 0:  # a page at a time, until every row of the list is read (-1: not the owner's)
            cached = entries[n]
            if cached is None or generation != cached.generation:
                if cached is not None and cached.rows:  # what was read starts at the old offset: read it all
                    generation, docs, raw, length = self._read(keys, 0, owner)
                    if length < 0:
                        break
                cached = entries[n] = _Entry(generation=generation, rows=0, value=self._new())
            if docs:
                self._extend(cached.value, [decode(doc) for doc in docs], raw)
                cached.rows += len(docs)
            if cached.rows >= length:
                return cached.value
            generation, docs, raw, length = self._read(keys, cached.rows, owner)
        return None

    def known_listed(self, user: UserRef) -> dict[str, int]:
        """The tags of the sessions this process last read through the user's listing, with the rows it holds of
        each (what a read of the listing may send beside it, before it answers)."""
        listing = self._keys.user_sessions(user)
        with self._lock:
            return {tag: entry.rows for tag, entry in self._entries.items() if entry.listing == listing}

    def get_listed(
        self, user: UserRef, *, limit: int, session_ids: frozenset[str] | None = None
    ) -> list[tuple[SessionRef, T | None, str]]:
        return self.get_listed_beside(user, limit=limit, session_ids=session_ids)[0]

    def get_listed_beside(
        self,
        user: UserRef,
        *,
        limit: int,
        session_ids: frozenset[str] | None = None,
        beside: Callable[[Pipeline], object] | None = None,
    ) -> tuple[list[tuple[SessionRef, T | None, str]], list[Any]]:
        """The sessions of the user's listing (its ``limit`` most recently written, newest first; only those among
        ``session_ids`` when given), each with its value, or None when it is not bound to the user when read: on a
        server without slots the listing, each listed session's binding and its new rows are one script (the
        bindings read in the same step as the rows, so what is returned was the user's when read), and the generation
        read with them. A listed session whose tag the script did not know is read in a second script, its tag given
        (``listed.py``). ``beside``: commands sent after the first script in the same pipeline, their replies returned
        (an error among them returned, not raised); none when a session was read again after that pipeline (its tag
        unknown, or its generation changed), so that what was sent beside is never taken for what was read after."""
        listing, tags = self._keys.user_sessions(user), self._keys.user_session_tags(user)
        known = list(self.known_listed(user).items())
        suffixes = [session_key_suffix(name) for name in ("meta", "docs")]
        suffixes.append(session_key_suffix("vectors") if self._vector_bytes else "")
        args: list[Any] = [self._vector_bytes, self._page_rows, limit, user.id, self._keys.session_head(user.tenant)]
        args += suffixes
        order: list[str] = []
        found: dict[str, tuple[T | None, str]] = {}
        wanted = session_ids
        given: dict[str, str] = {}
        replies: list[Any] = []
        first_generations: dict[str, str] = {}
        read_again = False  # a second script ran (tags it lacked given)
        for attempt in range(2):
            read_again = attempt > 0
            filtered = [-1] if wanted is None else [len(wanted), *sorted(wanted)]
            script_args = [*args, *filtered, len(known), *(part for pair in known for part in pair), *given_args(given)]
            if attempt == 0 and beside is not None:
                flat, replies = self._connector.run_script_beside(
                    _READ_LISTED, [listing, tags], script_args, beside, binary=True
                )
            else:
                flat = self._connector.run_script(_READ_LISTED, [listing, tags], script_args, binary=True)
            reads = [flat[i : i + 7] for i in range(0, len(flat), 7)]
            ids = [bytes(read[0]).decode() for read in reads]
            if not order:
                order = ids
                first_generations = {i: _decoded(read[3:7])[0] for i, read in zip(ids, reads, strict=True)}
            given = wrong_tags(user.tenant, ids, [bytes(read[1]).decode() for read in reads])
            right = [(session_id, read) for session_id, read in zip(ids, reads, strict=True) if session_id not in given]
            found.update(self._fill_listed(user, listing, right))
            if not given:
                break
            wanted = frozenset(given)  # read again with the tags it lacked; what was read under a wrong one is unused
        if read_again or any(
            value is not None and generation != first_generations.get(i) for i, (value, generation) in found.items()
        ):
            replies = []  # a session read again after the pipeline: what was sent beside the first read is not of it
        if session_ids is None:  # sessions no longer listed as the user's are no longer known through the listing
            owned = {self._keys.session(SessionRef(user.tenant, i)).tag for i, (v, _) in found.items() if v is not None}
            with self._lock:
                for tag, entry in self._entries.items():
                    if entry.listing == listing and tag not in owned:
                        entry.listing = ""
        return [(SessionRef(user.tenant, i), *found.get(i, (None, ""))) for i in order], replies

    def _fill_listed(
        self, user: UserRef, listing: str, reads: Sequence[tuple[str, Any]]
    ) -> dict[str, tuple[T | None, str]]:
        """``_fill`` of each read of ``_READ_LISTED`` (its tag checked), from the offset it was read from; with the
        generation its rows are of."""
        keyed = [self._keys.session(SessionRef(user.tenant, session_id)) for session_id, _ in reads]
        with self._lock:
            entries: list[_Entry[T] | None] = [self._entries.pop(keys.tag, None) for keys in keyed]
        found: dict[str, tuple[T | None, str]] = {}
        try:
            for n, (keys, (session_id, read)) in enumerate(zip(keyed, reads, strict=True)):
                offset = int(read[2])
                first = _decoded(read[3:7])
                held = entries[n]
                if (held.rows if held is not None else 0) != offset:  # not read from what this process holds
                    if offset:
                        first = self._read(keys, 0, user.id)
                    entries[n] = None
                value = self._fill(keys, entries, n, first, user.id)
                entry = entries[n]
                if entry is not None:
                    entry.listing = listing
                found[session_id] = (value, entry.generation if value is not None and entry is not None else "")
        finally:
            for keys, entry in zip(keyed, entries, strict=True):
                if entry is not None:
                    self._keep(keys.tag, entry)
        return found

    def held(self, session: SessionRef) -> T | None:
        """The session's rows as this process last read them, without asking Redis (None when not held)."""
        with self._lock:
            entry = self._entries.get(self._keys.session(session).tag)
        return None if entry is None else entry.value

    def _keep(self, tag: str, entry: _Entry[T]) -> None:
        with self._lock:
            self._entries[tag] = entry
            rows = sum(e.rows for e in self._entries.values())
            while len(self._entries) > 1 and (len(self._entries) > self._max_sessions or rows > self._max_rows):
                rows -= self._entries.popitem(last=False)[1].rows

    def _script_keys(self, keys: SessionKeys) -> list[str]:
        return [keys.meta, keys.docs] + ([keys.vectors] if self._vector_bytes else [])

    def _read(self, keys: SessionKeys, offset: int, owner: str) -> tuple[str, list[bytes], bytes, int]:
        return _decoded(
            self._connector.run_script(
                _READ_FROM, self._script_keys(keys), [offset, self._vector_bytes, self._page_rows, owner], binary=True
            )
        )

    def _read_many(
        self,
        keyed: Sequence[SessionKeys],
        entries: Sequence[_Entry[T] | None],
        owner: str,
        beside: Callable[[Pipeline], object] | None = None,
    ) -> tuple[list[tuple[str, list[bytes], bytes, int]], list[Any]]:
        """The first read of each session, from its cached offset: one script for all of them on a server without
        slots (with ``beside``'s commands in the same pipeline); on a cluster, one per session (each on its own
        slot). The reads, and ``beside``'s replies."""
        offsets = [entry.rows if entry else 0 for entry in entries]
        if beside is not None:
            if self._connector.is_cluster():
                raise ValueError("commands beside a read need a server without slots")
            script_keys = [key for keys in keyed for key in self._script_keys(keys)]
            per = len(script_keys) // len(keyed)
            flat, replies = self._connector.run_script_beside(
                _READ_MANY,
                script_keys,
                [self._vector_bytes, self._page_rows, per, owner, *offsets],
                beside,
                binary=True,
            )
            return [_decoded(flat[i : i + 4]) for i in range(0, len(flat), 4)], replies
        if len(keyed) == 1 or self._connector.is_cluster():
            calls = [
                (self._script_keys(keys), [offset, self._vector_bytes, self._page_rows, owner])
                for keys, offset in zip(keyed, offsets, strict=True)
            ]
            return [_decoded(reply) for reply in self._connector.run_script_many(_READ_FROM, calls, binary=True)], []
        script_keys = [key for keys in keyed for key in self._script_keys(keys)]
        per = len(script_keys) // len(keyed)
        flat = self._connector.run_script(
            _READ_MANY, script_keys, [self._vector_bytes, self._page_rows, per, owner, *offsets], binary=True
        )
        return [_decoded(flat[i : i + 4]) for i in range(0, len(flat), 4)], []

    def cached_rows(self) -> int:
        """How many rows the cache holds in all."""
        with self._lock:
            return sum(entry.rows for entry in self._entries.values())


def _decoded(reply: Any) -> tuple[str, list[bytes], bytes, int]:
    generation, docs, raw, length = reply
    return generation.decode(), list(docs), bytes(raw), int(length)
