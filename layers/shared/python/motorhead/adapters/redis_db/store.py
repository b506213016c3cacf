"""The session store on Redis (standalone or cluster). Writes to one session are one Lua script on its slot."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from redis.client import Pipeline

from motorhead.adapters.redis_db.codec import decode, encode_new
from motorhead.adapters.redis_db.connector import RedisConnector, mapped_errors
from motorhead.adapters.redis_db.keys import USER_TAGS_SUFFIX, Keys, session_key_suffix
from motorhead.adapters.redis_db.listed import TAGS_LUA, given_args, wrong_tags
from motorhead.core.ports import NO_QUOTAS
from motorhead.core.values import (
    DEFAULT_NAMESPACE,
    AppendResult,
    Folded,
    FoldInput,
    NewMessage,
    Quotas,
    SessionRef,
    SessionSnapshot,
    SessionStats,
    StoredMessage,
    UserRef,
)
from motorhead.errors import ConflictError, QuotaExceededError, StoreDegradedError

# KEYS: messages, meta, namespaces, pending, requests[, the tenant's usage, the tenant's namespace names, the tenant's
# listing of the namespace[, the user's listing]] (the last four on a server without slots only).
# ARGV: 1 session id, 2 now ms, 3 namespace, 4 has-context flag, 5 context, 6 a fresh random token, 7 summarize above
# this count (0: never), 8 now less the summary lease (a lease taken at or before is free), 9 index flag, 10 now less
# the index lease, 11 a token unique to this call, 12 the user the write names ("" for none), 13 "0" when the write may
# not adopt a session of no user ("1" otherwise), 14 the name of that user's listing ("" for none), 15-18 the tenant's
# quotas of sessions, messages, bytes and namespaces (0: none), 19 the bytes this call writes, 20 "1" when the session
# must exist (a cluster's tenant at its session quota), then each message's JSON without its opening brace (the script
# puts '{"id":N,' in front).
# The session's last RECENT_REQUESTS call tokens are kept (scored by the last id each stored): a retry of a call after
# a lost reply is recognised, even when other calls landed in between, and changes nothing. Ids come from the
# session's own counter, so they are unique and increasing; every message of the call is stored, or none is. The
# summary's version token changes whenever the summary does, so a summarizer can tell that the summary it started from
# is still current; the generation token (gen) is set once, when the session is created, so a job can tell that the
# session was not deleted meanwhile. A lease (meta.job_at, meta.idx_at) lets one POST per lease period ask for a job,
# so a busy session does not flood the queues. Messages to index are also kept in `pending` until the indexer has
# them. The session's user (meta.user) is set by the first write that names one, with the name of the user's listing
# (meta.ulist: a deletion unlists the session in its own step); a write naming another user stores nothing and answers
# the bound user (count -1), and so does a write that may not adopt (ARGV 13) when the session exists bound to no user.
# What the session holds is counted in the tenant's usage (meta.q marks a counted session; meta.bytes is what it
# added): a write past a quota stores nothing and answers the quota's name (count -2). On a server without slots the
# check and the count are part of this atomic step, as are the listings (after the user check); on a cluster the
# caller reserves the messages, bytes and namespace on the usage's slot before, and this step refuses to create a
# session when ARGV 20 says the tenant has no session left.
# Its cost is near the floor's (bench/redis_cost.py: the same commands run by a script that does nothing else): one
# read of the meta (HMGET), one write of it (HSET), one ZADD per sorted set it grows, one HINCRBY per usage counter
# that grows; what the meta can say is read from it (meta.count, the messages held; meta.ns:<name>, a namespace the
# session is listed under, 'q' once it is known to be among the tenant's names; meta.calls, calls since the tokens
# were last trimmed; meta.shape, that the meta holds the fields this step keeps, so that a session from before them
# has them read apart, once); the call's token is added first (ZADD NX: a retry is told apart by the same command)
# and taken back by a refusal; and the script converts as few strings to numbers and back as it can (times compared
# as strings, numbers handed to redis.call as numbers, each message's member made by one string.format), since each
# such conversion, each argument and each table entry costs a script more than the same command sent by the client.
RECENT_REQUESTS = 64  # call tokens remembered per session at least, to recognise a resent call
TRIM_EVERY = 16  # the tokens are trimmed back to RECENT_REQUESTS once in this many calls (at most 79 are kept)
MAX_USER_SESSIONS = 10_000  # sessions of one user a filtered listing reads at most
DELETE_BATCH = 100  # sessions deleted per pipeline when a user is forgotten
MAX_DELETE_ROUNDS = 50  # batches one call of a user deletion runs at most (5,000 sessions, a few seconds)
_APPEND = """
local call = redis.call
local first = 21
local n = #ARGV - first + 1
local ns = 'ns:' .. ARGV[3]
local meta = call('HMGET', KEYS[2], 'user', 'gen', 'seq', 'job_at', 'idx_at', 'shape', 'q', 'bytes', 'count',
  ns, 'calls')
local bound, gen = meta[1], meta[2]
local seq = meta[3] and tonumber(meta[3]) or 0
local last = seq + n
-- the call's token, remembered with the last id it stores; a token already there is the same call again (a client
-- retry after a lost reply): already stored, change nothing. A refusal below takes the token back.
if call('ZADD', KEYS[5], 'NX', last, ARGV[11]) == 0 then
  local seen = call('ZSCORE', KEYS[5], ARGV[11])
  if #KEYS > 5 then
    return {call('ZCARD', KEYS[1]), tonumber(seen), 0, 0, gen, bound or ''}
  end
  -- on a cluster the caller settles the usage on its own slot from what the call did the first time: whether it
  -- counted the session (meta.qfirst names the call that did, with the messages and bytes the session held then)
  local first_count = call('HGET', KEYS[2], 'qfirst')
  local newly, was_seq, was_held = 0, 0, 0
  if first_count then
    local token, s, h = string.match(first_count, '^(.*):(%d+):(%d+)$')
    if token == ARGV[11] then
      newly, was_seq, was_held = 1, tonumber(s), tonumber(h)
    end
  end
  return {call('ZCARD', KEYS[1]), tonumber(seen), 0, 0, gen, bound or '', newly, was_seq, was_held,
    (meta[7] == '1' and newly == 0) and 1 or 0}
end
local function refuse(count, answer)
  call('ZREM', KEYS[5], ARGV[11])
  return {count, 0, 0, 0, '', answer}
end
-- meta.shape: the meta holds id, created_at, version and count, and ulist when bound (what this step writes); a
-- session from before it (or a new one) has those read apart, once
local has_id, created, versioned, has_ulist = true, true, true, true
if not meta[6] then
  local old = call('HMGET', KEYS[2], 'id', 'created_at', 'version', 'ulist')
  has_id, created, versioned, has_ulist = old[1], old[2], old[3], old[4]
end
local exists = gen or created
local extra, e = nil, 0  -- the meta's fields this step writes beside those it always writes (a table when any)
local function set(field, value)
  extra = extra or {}
  extra[e + 1], extra[e + 2] = field, value
  e = e + 2
end
if ARGV[12] ~= '' then
  if bound and bound ~= ARGV[12] then
    return refuse(-1, bound)
  end
  if not bound then
    if ARGV[13] == '0' and exists then
      return refuse(-1, '')
    end
    bound = ARGV[12]
    set('user', bound)
    set('ulist', ARGV[14])
  elseif not has_ulist then
    set('ulist', ARGV[14])  -- bound before meta.ulist existed
  end
end
local added = tonumber(ARGV[19])
local held = meta[8] and tonumber(meta[8]) or 0
local counted = meta[7] == '1'
if not exists and ARGV[20] == '1' then
  return refuse(-2, 'sessions')
end
local quotas = ARGV[15] ~= '0' or ARGV[16] ~= '0' or ARGV[17] ~= '0' or ARGV[18] ~= '0'
local mark = meta[10]  -- the session's ns:<name>: nil (a namespace new to it), '1', or 'q' (counted as the tenant's)
local mark_counted = false
if (quotas or counted) and #KEYS >= 7 then
  -- a session not counted yet (new, or from before usage was counted) is counted whole: all it holds and this write.
  -- meta's ns:<name> is 'q' once the namespace is known to be in the tenant's names (they are never taken out)
  -- each counter that grows is added to (HINCRBY answers the total); one past its quota is taken back with the
  -- others added before it, and the write refused
  local more_messages = n + (counted and 0 or seq)
  local more_bytes = added + (counted and 0 or held)
  local grown = {}
  local function grow(field, by, limit)
    local total = call('HINCRBY', KEYS[6], field, by)
    grown[#grown + 1] = field
    grown[#grown + 1] = by
    if limit ~= '0' and total > tonumber(limit) then
      for i = 1, #grown, 2 do
        call('HINCRBY', KEYS[6], grown[i], -grown[i + 1])
      end
      return true
    end
    return false
  end
  if not counted and grow('sessions', 1, ARGV[15]) then return refuse(-2, 'sessions') end
  if more_messages > 0 and grow('messages', more_messages, ARGV[16]) then return refuse(-2, 'messages') end
  if more_bytes > 0 and grow('bytes', more_bytes, ARGV[17]) then return refuse(-2, 'bytes') end
  if not (counted and mark == 'q') and call('SISMEMBER', KEYS[7], ARGV[3]) == 0 then
    if grow('namespaces', 1, ARGV[18]) then return refuse(-2, 'namespaces') end
    call('SADD', KEYS[7], ARGV[3])
  end
  mark_counted = mark ~= 'q'
end
if #KEYS >= 8 then
  call('ZADD', KEYS[8], ARGV[2], ARGV[1])
end
if bound and #KEYS >= 9 then
  call('ZADD', KEYS[9], ARGV[2], ARGV[1])
end
if n > 0 then
  local members, format = {}, string.format
  for i = 1, n do
    members[2 * i - 1] = seq + i
    members[2 * i] = format('{"id":%d,%s', seq + i, ARGV[first + i - 1])
  end
  call('ZADD', KEYS[1], unpack(members))
  if ARGV[9] == '1' then
    call('ZADD', KEYS[4], unpack(members))
  end
end
local calls = (meta[11] and tonumber(meta[11]) or 0) + 1
if calls >= TRIM_EVERY then  -- the call tokens trimmed to the last RECENT_REQUESTS once in TRIM_EVERY calls
  call('ZREMRANGEBYRANK', KEYS[5], 0, -RECENT_REQUESTS - 1)
  calls = 0
end
local count  -- how many messages the session holds: meta.count, kept by this step and the summary's commit
if meta[9] then
  count = tonumber(meta[9]) + n
else
  count = call('ZCARD', KEYS[1])  -- a session from before meta.count
end
if quotas and not counted then
  set('q', '1')  -- on a cluster, the caller counts it on the usage's slot from what this answers
  if #KEYS <= 5 then  -- and may have to again, from a resent call (a reply lost after the step ran)
    set('qfirst', ARGV[11] .. ':' .. (meta[3] or '0') .. ':' .. (meta[8] or '0'))
  end
end
if not meta[6] then
  set('shape', '1')
  if not has_id then set('id', ARGV[1]) end
  if not created then set('created_at', ARGV[2]) end
end
if not gen then
  gen = ARGV[6]
  set('gen', gen)
end
if ARGV[4] == '1' then
  set('context', ARGV[5])
  set('version', ARGV[6])
elseif not versioned then
  set('version', ARGV[6])
end
if not mark then  -- the namespace is new to the session (meta's ns:<name> marks the ones it has)
  call('SADD', KEYS[3], ARGV[3])
end
if mark_counted then  -- known from now on to be among the tenant's names
  set(ns, 'q')
elseif not mark then
  set(ns, '1')
end
-- a lease is free when it was never taken or taken at or before ARGV 8 (10): now less the lease period; times are
-- compared as the decimal strings they are (no leading zeros: the shorter is the earlier; a lease is taken at a time
-- of zero or more, so never at or before a negative one)
local function free(taken, since)
  if not taken then return true end
  if string.byte(since, 1) == 45 then return false end
  return #taken < #since or (#taken == #since and taken <= since)
end
local summary_due, index_due = 0, 0
if ARGV[7] ~= '0' and count > tonumber(ARGV[7]) and free(meta[4], ARGV[8]) then
  summary_due = 1
  set('job_at', ARGV[2])
end
if ARGV[9] == '1' and n > 0 and free(meta[5], ARGV[10]) then
  index_due = 1
  set('idx_at', ARGV[2])
end
if extra then
  call('HSET', KEYS[2], 'updated_at', ARGV[2], 'seq', last, 'bytes', held + added, 'calls', calls, 'count', count,
    unpack(extra))
else
  call('HSET', KEYS[2], 'updated_at', ARGV[2], 'seq', last, 'bytes', held + added, 'calls', calls, 'count', count)
end
if #KEYS > 5 then  -- a server without slots: the caller needs no more
  return {count, last, summary_due, index_due, gen, bound or ''}
end
local newly = (quotas and not counted) and 1 or 0
return {count, last, summary_due, index_due, gen, bound or '', newly, seq, held, counted and 1 or 0}
"""
_MUST_EXIST = 19  # the index in the append's arguments of ARGV 20, "1" when the session must exist
_APPEND_SCRIPT = _APPEND.replace("RECENT_REQUESTS", str(RECENT_REQUESTS)).replace("TRIM_EVERY", str(TRIM_EVERY))

# KEYS: the tenant's usage, its namespace names. ARGV: 1-4 the quotas of sessions, messages, bytes and namespaces, 5
# messages, 6 bytes, 7 the namespace, 8 "1" to ask for a session's place. A cluster's step before a write: reserves
# the messages, the bytes and the namespace (counted as the append script counts them), and, when asked for and the
# tenant has a session quota with room under it, a place for a session the write may create (the write's until it
# knows: counted for the session it creates, given back if it created none); or answers the quota's name and reserves
# nothing. Answers {name or '', has_room, 1 if a place was reserved}.
_RESERVE = """
local usage = redis.call('HMGET', KEYS[1], 'sessions', 'messages', 'bytes', 'namespaces')
local grow = {0, tonumber(ARGV[5]), tonumber(ARGV[6]), 0}
if redis.call('SISMEMBER', KEYS[2], ARGV[7]) == 0 then
  grow[4] = 1
end
local names = {'sessions', 'messages', 'bytes', 'namespaces'}
local totals = {}
for i = 1, 4 do
  local limit = tonumber(ARGV[i])
  totals[i] = tonumber(usage[i] or '0') + grow[i]
  if limit > 0 and grow[i] > 0 and totals[i] > limit then
    return {names[i], 0, 0}
  end
end
local sessions = tonumber(ARGV[1])
local room = sessions == 0 or totals[1] < sessions
local place = (ARGV[8] == '1' and sessions > 0 and room) and 1 or 0
redis.call('HSET', KEYS[1], 'sessions', totals[1] + place, 'messages', totals[2], 'bytes', totals[3],
  'namespaces', totals[4])
if grow[4] == 1 then
  redis.call('SADD', KEYS[2], ARGV[7])
end
return {'', room and 1 or 0, place}
"""

# KEYS: a listing. ARGV: 1 session id, 2 the time a refused write listed it at. A cluster's write lists its session
# before the write (on another slot); refused, it is unlisted again, unless a write since listed it at its own time.
_UNLIST_IF_OURS = """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
"""

# KEYS: the session's fixed keys (SessionKeys.all()). ARGV: 1 prefix of its search documents, 2 the prefix of the
# tenant's namespace listings, 3 the session id, 4 the namespace the caller names, 5 the default namespace, 6 the
# tenant's usage, 7 USER_TAGS_SUFFIX. On a server without slots, one atomic step: unlists the session from every
# namespace it was written under and from its user's listing (meta.ulist) and that listing's tags (listed.py), takes
# what it held off the tenant's usage, then deletes it as DELETE_SESSION does. A session bound to a user before
# meta.ulist existed is answered {0, user} with nothing changed: the caller names the listing (ARGV 8) and runs it
# again.
_DELETE_LISTED = """
local meta = redis.call('HMGET', KEYS[2], 'user', 'ulist', 'q', 'seq', 'bytes')
local ulist = meta[2] or ARGV[8]
if meta[1] and not ulist then
  return {0, meta[1]}
end
if meta[3] == '1' then
  local usage = redis.call('HMGET', ARGV[6], 'sessions', 'messages', 'bytes')
  redis.call('HSET', ARGV[6], 'sessions', tonumber(usage[1] or '0') - 1,
    'messages', tonumber(usage[2] or '0') - tonumber(meta[4] or '0'),
    'bytes', tonumber(usage[3] or '0') - tonumber(meta[5] or '0'))
end
local namespaces = redis.call('SMEMBERS', KEYS[3])
namespaces[#namespaces + 1] = ARGV[4]
namespaces[#namespaces + 1] = ARGV[5]
for _, ns in ipairs(namespaces) do
  redis.call('ZREM', ARGV[2] .. ns, ARGV[3])
end
if meta[1] then
  redis.call('ZREM', ulist, ARGV[3])
  redis.call('HDEL', ulist .. ARGV[7], ARGV[3])
end
for _, id in ipairs(redis.call('SMEMBERS', KEYS[8])) do
  redis.call('DEL', ARGV[1] .. id)
end
return {1, redis.call('DEL', unpack(KEYS))}
"""

# KEYS: the user's listing, its tags (listed.py). ARGV: 1 offset, 2 limit, 3 Keys.session_head, 4 the suffix of a
# session's meta, 5 the user id, then (id, tag) pairs the caller computed. A page of the listing (least recently
# written first) and its size, each id with the tag its meta was read under ("" when unknown) and whether that meta
# binds it to the user (1) or not (0): the listing and the bindings in one step.
_USER_PAGE = (
    TAGS_LUA
    + """
local given = {}
for i = 6, #ARGV, 2 do
  given[ARGV[i]] = ARGV[i + 1]
end
local offset = tonumber(ARGV[1])
local ids = redis.call('ZRANGE', KEYS[1], offset, offset + tonumber(ARGV[2]) - 1)
local total = redis.call('ZCARD', KEYS[1])
if #ids == 0 then
  return {total, {}, {}, {}}
end
local tags = known_tags(ids, given)
local used, bound = {}, {}
for i = 1, #ids do
  used[i] = tags[i] or ''
  bound[i] = 0
  if tags[i] and redis.call('HGET', ARGV[3] .. tags[i] .. ARGV[4], 'user') == ARGV[5] then
    bound[i] = 1
  end
end
return {total, ids, used, bound}
"""
)

# KEYS: pending, meta. Releases the index lease only when nothing is pending (see MemoryStore.release_index_lease).
_RELEASE_INDEX_LEASE = """
if redis.call('ZCARD', KEYS[1]) > 0 then
  return 0
end
redis.call('HDEL', KEYS[2], 'idx_at')
return 1
"""

# KEYS: meta, pending. ARGV: 1 generation, 2 first id, 3 last id. Forgets an indexed batch (the oldest pending
# messages, so every pending id in that range is in the batch) only if the session is still that generation.
_ACK_INDEXED = """
if redis.call('HGET', KEYS[1], 'gen') ~= ARGV[1] then
  return 0
end
return redis.call('ZREMRANGEBYSCORE', KEYS[2], ARGV[2], ARGV[3])
"""

# KEYS: the session's fixed keys. ARGV: 1 prefix of its search documents, 2 a user id ("" for any), 3 the tenant's usage
# ("" on a cluster, where it is on another slot). Deletes every document listed in doc_ids (same hash tag, same slot),
# then every fixed key: one atomic step; with a user id, only if the session is (still) bound to that user ({-1}
# otherwise, nothing deleted). Answers {keys deleted, 1 if it was counted in the usage, its seq, its bytes}, and takes
# them off the usage when it is given (on a cluster the caller does). The tenant migration deletes an adopted source
# with it.
DELETE_SESSION = """
local meta = redis.call('HMGET', KEYS[2], 'user', 'q', 'seq', 'bytes')
if ARGV[2] ~= '' and meta[1] ~= ARGV[2] then
  return {-1}
end
local counted = meta[2] == '1'
if counted and ARGV[3] ~= '' then
  local usage = redis.call('HMGET', ARGV[3], 'sessions', 'messages', 'bytes')
  redis.call('HSET', ARGV[3], 'sessions', tonumber(usage[1] or '0') - 1,
    'messages', tonumber(usage[2] or '0') - tonumber(meta[3] or '0'),
    'bytes', tonumber(usage[3] or '0') - tonumber(meta[4] or '0'))
end
for _, id in ipairs(redis.call('SMEMBERS', KEYS[8])) do
  redis.call('DEL', ARGV[1] .. id)
end
return {redis.call('DEL', unpack(KEYS)), counted and 1 or 0, tonumber(meta[3] or '0'), tonumber(meta[4] or '0')}
"""

# KEYS: messages, meta. ARGV: window, keep. One consistent read of what a summarizer job starts from.
_FOLD_INPUT = """
local count = redis.call('ZCARD', KEYS[1])
local meta = redis.call('HMGET', KEYS[2], 'context', 'version')
if count <= tonumber(ARGV[1]) then
  return {count, meta[1], meta[2], {}}
end
return {count, meta[1], meta[2], redis.call('ZRANGE', KEYS[1], 0, count - tonumber(ARGV[2]) - 1)}
"""

# KEYS: messages, meta. ARGV: 1 expected version, 2 new version, 3 has-context flag, 4 context, 5 tokens to add,
# 6 first id, 7 last id, 8 how many messages were folded. Commits only if the summary is still the one the job read
# and every folded message is still there; then removes exactly the folded ids (a range of ids, never of positions:
# ids only grow, so a message posted meanwhile always has a larger id), replaces the summary and adds the tokens.
_COMMIT_FOLD = """
local current = redis.call('HGET', KEYS[2], 'version') or ''
if current ~= ARGV[1] then
  return 0
end
if redis.call('ZCOUNT', KEYS[1], ARGV[6], ARGV[7]) ~= tonumber(ARGV[8]) then
  return 0
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], ARGV[6], ARGV[7])
if redis.call('HEXISTS', KEYS[2], 'count') == 1 then
  redis.call('HINCRBY', KEYS[2], 'count', -tonumber(ARGV[8]))
end
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[2], 'context', ARGV[4])
end
redis.call('HSET', KEYS[2], 'version', ARGV[2])
redis.call('HINCRBY', KEYS[2], 'tokens', ARGV[5])
redis.call('HDEL', KEYS[2], 'job_at')
return 1
"""


# KEYS: messages, meta, namespaces, pending. One consistent read of a session's stats (nil when it does not exist): the
# message count, meta's seq, tokens, created_at, updated_at and user, whether it has a summary, its namespaces, and how
# many messages await indexing. Never the messages nor the summary themselves.
_STATS = """
if redis.call('EXISTS', KEYS[2]) == 0 then
  return false
end
return {
  redis.call('ZCARD', KEYS[1]),
  redis.call('HMGET', KEYS[2], 'seq', 'tokens', 'created_at', 'updated_at', 'user'),
  redis.call('HEXISTS', KEYS[2], 'context'),
  redis.call('SMEMBERS', KEYS[3]),
  redis.call('ZCARD', KEYS[4]),
}
"""


class RedisMemoryStore:
    """Implements ``motorhead.core.ports.MemoryStore``."""

    def __init__(
        self,
        connector: RedisConnector,
        keys: Keys,
        *,
        summary_lease_ms: int = 600_000,
        index_lease_ms: int = 300_000,
    ) -> None:
        self._connector = connector
        self._keys = keys
        self._lease_ms = summary_lease_ms
        self._index_lease_ms = index_lease_ms

    def append(
        self,
        session: SessionRef,
        messages: Sequence[NewMessage],
        *,
        context: str | None,
        namespace: str,
        now_ms: int,
        summarize_above: int | None = None,
        index: bool = False,
        user_id: str | None = None,
        adopt: bool = True,
        quotas: Quotas = NO_QUOTAS,
    ) -> AppendResult:
        keys = self._keys.session(session)
        bodies = [encode_new(message, created_at=now_ms) for message in messages]
        flag, ctx = ("1", context) if context is not None else ("0", "")
        # what the write stores: each message as stored (its JSON, every non-ASCII or control character escaped, so
        # up to 12 bytes for one character), and the summary
        written = sum(len(body) for body in bodies) + len(ctx.encode())
        named = self._keys.user_sessions(UserRef(session.tenant, user_id)) if user_id else None
        listing = self._keys.sessions_index(session.tenant, namespace)
        usage = [self._keys.tenant_usage(session.tenant), self._keys.tenant_namespaces(session.tenant)]
        limits = [quotas.sessions, quotas.messages, quotas.bytes, quotas.namespaces]
        script_keys = [keys.messages, keys.meta, keys.namespaces, keys.pending, keys.requests]
        must_exist = placed = False
        with mapped_errors():
            cluster = self._connector.is_cluster()
            if not cluster:  # one atomic step: the usage and the listings are the script's keys too
                script_keys += [*usage, listing] + ([named] if named is not None else [])
            if cluster:
                # The usage and the listings are on other slots. The session is listed first (if the session write
                # then fails, a retried POST lands in the same place, and a stored message is never left unlisted
                # under its user; a write that names a user can be refused, so its namespace listing waits for the
                # answer); then the write's messages, bytes and namespace are reserved (given back if the write is
                # refused), and a session's place if the listing did not have the session (it may be new)
                pipe = self._connector.client().pipeline(transaction=False)
                pipe.zadd(named if named is not None else listing, {session.id: now_ms})
                listed_now = bool(int(pipe.execute()[0]))
                if quotas.any:
                    must_exist, placed = self._reserve(
                        session, quotas, len(bodies), written, namespace, place=listed_now, unlist=named or listing,
                        listed_at=now_ms if listed_now else None,
                    )  # fmt: skip
            # a failure of the write itself that may have landed (a timeout, a dropped connection) keeps a cluster's
            # reservation: usage is then over-counted, never under; a refusal of the server (degraded: out of memory,
            # read-only during a failover) ran nothing, and gives it back
            args = [
                session.id,
                now_ms,
                namespace,
                flag,
                ctx,
                new_version(),
                summarize_above or 0,
                now_ms - self._lease_ms,
                "1" if index else "0",
                now_ms - self._index_lease_ms,
                new_version(),
                user_id or "",
                "1" if adopt else "0",
                named or "",
                *limits,
                written,
                "1" if must_exist else "0",
                *(body[1:] for body in bodies),  # the script puts '{"id":N,' in front of each
            ]
            try:
                reply = self._connector.run_script(_APPEND_SCRIPT, script_keys, args)
                if cluster and int(reply[0]) == -2 and must_exist and not placed and quotas.sessions:
                    # refused a new session without a place: the listing had it (an entry its deletion left
                    # behind), so no place was asked for; one is asked for now, and the write runs again
                    must_exist, placed = self._reserve(session, quotas, 0, 0, namespace, place=True)
                    if placed:
                        args[_MUST_EXIST] = "0"
                        reply = self._connector.run_script(_APPEND_SCRIPT, script_keys, args)
            except StoreDegradedError:
                if cluster and quotas.any:
                    self._release(session.tenant, len(bodies), written, placed)
                raise
            count, last_id, summary_due, index_due, generation, bound = reply[:6]
            if int(count) < 0:  # refused: nothing was stored
                if cluster and quotas.any:
                    self._release(session.tenant, len(bodies), written, placed)
                # unlisted again where it was listed for this write alone: under the user it does not belong to, or
                # under the namespace when it does not exist (refused for the tenant's session quota); unless a write
                # since listed it at its own time
                if cluster and (named is not None or int(count) == -2):
                    self._connector.run_script(_UNLIST_IF_OURS, [named or listing], [session.id, now_ms])
                if int(count) == -2:
                    raise QuotaExceededError(_quota_message(str(bound), quotas))
                raise ConflictError("this session belongs to another user")
            if cluster and quotas.any:
                # a resent call (its reply lost after it ran: redis-py's cluster client sends it again) is answered
                # what it did the first time, so its reservation is kept and settled as the first run's
                if int(reply[6]):  # counted now for the first time: all it held before, too
                    pipe = self._connector.client().pipeline(transaction=False)
                    if not placed:  # its place was reserved already when the tenant has a session quota
                        pipe.hincrby(usage[0], "sessions", 1)
                    pipe.hincrby(usage[0], "messages", int(reply[7]))
                    pipe.hincrby(usage[0], "bytes", int(reply[8]))
                    pipe.execute()
                elif placed:  # an existing session: the place it reserved goes back
                    self._connector.client().hincrby(usage[0], "sessions", -1)
            elif cluster and len(reply) > 9 and int(reply[9]):
                # quotas off now, but the session was counted when they were on: its growth is counted still, so
                # that its deletion takes off what it holds, never more
                pipe = self._connector.client().pipeline(transaction=False)
                pipe.hincrby(usage[0], "messages", len(bodies))
                pipe.hincrby(usage[0], "bytes", written)
                pipe.execute()
            if cluster and named is not None:  # listed under the namespace, and under its user again (delete_user)
                pipe = self._connector.client().pipeline(transaction=False)
                pipe.zadd(listing, {session.id: now_ms})
                pipe.zadd(named, {session.id: now_ms})
                pipe.execute()
        return AppendResult(
            count=int(count),
            last_id=int(last_id),
            summary_due=bool(summary_due),
            index_due=bool(index_due),
            generation=str(generation),
            user=str(bound) or None,
        )

    def _uncount(self, tenant: str, deletions: Sequence[Sequence[int]]) -> None:
        """On a cluster: take what DELETE_SESSION deleted off the tenant's usage (on its own slot)."""
        counted = [reply for reply in deletions if len(reply) == 4 and int(reply[1])]
        if not counted:
            return
        key = self._keys.tenant_usage(tenant)
        pipe = self._connector.client().pipeline(transaction=False)
        pipe.hincrby(key, "sessions", -len(counted))
        pipe.hincrby(key, "messages", -sum(int(reply[2]) for reply in counted))
        pipe.hincrby(key, "bytes", -sum(int(reply[3]) for reply in counted))
        pipe.execute()

    def _reserve(
        self,
        session: SessionRef,
        quotas: Quotas,
        messages: int,
        written: int,
        namespace: str,
        *,
        place: bool,
        unlist: str = "",
        listed_at: int | None = None,
    ) -> tuple[bool, bool]:
        """A cluster's reservation on the usage's slot (``_RESERVE``): (the session must exist, a place was reserved
        for it). Refused, nothing is reserved, the session is unlisted again where this write alone listed it
        (``listed_at``), and the quota's error raised."""
        usage = [self._keys.tenant_usage(session.tenant), self._keys.tenant_namespaces(session.tenant)]
        limits = [quotas.sessions, quotas.messages, quotas.bytes, quotas.namespaces]
        asked = [*limits, messages, written, namespace, "1" if place else "0"]
        refused, room, placed = self._connector.run_script(_RESERVE, usage, asked)
        if refused:
            if listed_at is not None:
                self._connector.run_script(_UNLIST_IF_OURS, [unlist], [session.id, listed_at])
            raise QuotaExceededError(_quota_message(str(refused), quotas))
        return bool(quotas.sessions) and not int(placed), bool(int(placed))

    def _release(self, tenant: str, messages: int, written: int, placed: bool) -> None:
        """Give back what a cluster's reservation took for a write that was refused (a session's place too)."""
        pipe = self._connector.client().pipeline(transaction=False)
        pipe.hincrby(self._keys.tenant_usage(tenant), "messages", -messages)
        pipe.hincrby(self._keys.tenant_usage(tenant), "bytes", -written)
        if placed:
            pipe.hincrby(self._keys.tenant_usage(tenant), "sessions", -1)
        pipe.execute()

    def usage(self, tenant: str) -> dict[str, int]:
        """What the tenant keeps, as its quotas count it."""
        with mapped_errors():
            found = self._connector.client().hgetall(self._keys.tenant_usage(tenant))
        return {name: int(found.get(name, 0)) for name in ("sessions", "messages", "bytes", "namespaces")}

    def read(self, session: SessionRef, *, limit: int) -> SessionSnapshot:
        keys = self._keys.session(session)

        def commands(pipe: Pipeline) -> None:
            pipe.zrevrange(keys.messages, 0, limit - 1)
            pipe.hmget(keys.meta, ["context", "tokens"])

        raw_messages, (context, tokens) = self._connector.pipelined(commands)
        return SessionSnapshot(messages=[decode(raw) for raw in raw_messages], context=context, tokens=int(tokens or 0))

    def delete(self, session: SessionRef, *, namespace: str) -> None:
        keys = self._keys.session(session)
        with mapped_errors():
            if not self._connector.is_cluster():  # one atomic step, listings included
                prefix = self._keys.sessions_index(session.tenant, "")
                usage = self._keys.tenant_usage(session.tenant)
                args = [keys.doc_prefix, prefix, session.id, namespace, DEFAULT_NAMESPACE, usage, USER_TAGS_SUFFIX]
                done, user = self._connector.run_script(_DELETE_LISTED, keys.all(), args)
                if not int(done):  # bound before meta.ulist existed: name its listing
                    listing = self._keys.user_sessions(UserRef(session.tenant, str(user)))
                    self._connector.run_script(_DELETE_LISTED, keys.all(), [*args, listing])
                return
            client = self._connector.client()
            pipe = client.pipeline(transaction=False)
            pipe.smembers(keys.namespaces)
            pipe.hget(keys.meta, "user")
            listed_in, user = pipe.execute()
            namespaces: set[str] = {str(ns) for ns in listed_in} | {namespace, DEFAULT_NAMESPACE}
            # Unlist first, then drop the data: if the second step fails, a retried DELETE still finds the list
            # of namespaces (and the user) and finishes the job.
            pipe = client.pipeline(transaction=False)
            for ns in sorted(namespaces):
                pipe.zrem(self._keys.sessions_index(session.tenant, ns), session.id)
            if user:
                pipe.zrem(self._keys.user_sessions(UserRef(session.tenant, str(user))), session.id)
            pipe.execute()
            deleted = self._connector.run_script(DELETE_SESSION, keys.all(), [keys.doc_prefix, "", ""])
            self._uncount(session.tenant, [deleted])

    def user_sessions(
        self, user: UserRef, *, namespace: str | None = None, session_ids: frozenset[str] | None = None, limit: int
    ) -> list[tuple[str, str]]:
        """The ids and generations of the user's ``limit`` most recently written sessions, newest first, each checked
        to be bound to the user now (the listing is a hint; the binding in the session's meta decides), and listed
        under ``namespace`` when given, and among ``session_ids`` when given."""
        listing = self._keys.user_sessions(user)
        listed: list[str] = [
            str(i) for i in self._connector.pipelined(lambda pipe: pipe.zrevrange(listing, 0, limit - 1))[0]
        ]
        with mapped_errors():
            client = self._connector.client()
            if session_ids is not None:
                listed = [i for i in listed if i in session_ids]
            if not listed:
                return []
            pipe = client.pipeline(transaction=False)
            for session_id in listed:
                keys = self._keys.session(SessionRef(user.tenant, session_id))
                pipe.hmget(keys.meta, ["user", "gen"])
                if namespace is not None:
                    pipe.sismember(keys.namespaces, namespace)
            replies = pipe.execute()
        step = 1 if namespace is None else 2
        found: list[tuple[str, str]] = []
        for n, session_id in enumerate(listed):
            bound, generation = replies[n * step]
            if bound == user.id and (namespace is None or bool(replies[n * step + 1])):
                found.append((session_id, str(generation)))
        return found

    def listed_sessions(self, user: UserRef, *, limit: int) -> list[str]:
        listing = self._keys.user_sessions(user)
        (listed,) = self._connector.pipelined(lambda pipe: pipe.zrevrange(listing, 0, limit - 1))
        return [str(session_id) for session_id in listed]

    def session_user(self, session: SessionRef) -> str | None:
        with mapped_errors():
            bound = self._connector.client().hget(self._keys.session(session).meta, "user")
        return None if bound is None else str(bound)

    def session_stats(self, session: SessionRef) -> SessionStats | None:
        keys = self._keys.session(session)
        found = self._connector.run_script(_STATS, (keys.messages, keys.meta, keys.namespaces, keys.pending), [])
        if found is None:
            return None
        count, (seq, tokens, created_at, updated_at, user), has_summary, namespaces, unindexed = found
        return SessionStats(
            messages=int(count),
            total_messages=int(seq or 0),
            tokens=int(tokens or 0),
            has_summary=bool(has_summary),
            created_at=int(created_at or 0),
            updated_at=int(updated_at or 0),
            user_id=None if user is None else str(user),
            namespaces=frozenset(str(ns) for ns in namespaces),
            unindexed=int(unindexed),
        )

    def still_bound(self, user: UserRef, sessions: Sequence[tuple[str, str]]) -> set[str]:
        """Which of these ``(id, generation)`` are still the user's sessions of that generation: read after what a
        search read of them, it proves the search read only the user's data (a session deleted and re-created, by
        anyone, gets a new generation)."""
        if not sessions:
            return set()
        with mapped_errors():
            pipe = self._connector.client().pipeline(transaction=False)
            for session_id, _ in sessions:
                pipe.hmget(self._keys.session(SessionRef(user.tenant, session_id)).meta, ["user", "gen"])
            replies = pipe.execute()
        return {
            session_id
            for (session_id, generation), (bound, now) in zip(sessions, replies, strict=True)
            if bound == user.id and now == generation
        }

    def list_user_sessions(
        self, user: UserRef, *, namespace: str | None, offset: int, limit: int
    ) -> tuple[list[str], int]:
        """A page of the user's session ids, least recently written first (as the tenant's listing), and the total;
        with ``namespace``, only those listed under it. Each id of the page is checked to be bound to the user; one
        that is not (a stale entry: a write that failed halfway on a cluster) is left out and dropped from the
        listing."""
        listing = self._keys.user_sessions(user)
        if namespace is None and not self._connector.is_cluster():
            return self._user_page(user, offset=offset, limit=limit)
        if namespace is None:

            def commands(pipe: Pipeline) -> None:
                pipe.zrange(listing, offset, offset + limit - 1)
                pipe.zcard(listing)

            ids, total = self._connector.pipelined(commands)
            page, total = [str(i) for i in ids], int(total)
        with mapped_errors():
            client = self._connector.client()
            if namespace is not None:
                every = [
                    str(i)
                    for i in self._connector.pipelined(lambda pipe: pipe.zrange(listing, 0, MAX_USER_SESSIONS - 1))[0]
                ]
                scores = client.zmscore(self._keys.sessions_index(user.tenant, namespace), every) if every else []
                kept = [session_id for session_id, score in zip(every, scores, strict=True) if score is not None]
                page, total = kept[offset : offset + limit], len(kept)
            if not page:
                return [], total
            pipe = client.pipeline(transaction=False)
            for session_id in page:
                pipe.hget(self._keys.session(SessionRef(user.tenant, session_id)).meta, "user")
            owners = pipe.execute()
            stale = [session_id for session_id, owner in zip(page, owners, strict=True) if owner != user.id]
            if stale:
                self._drop_stale(user, stale)
        return [session_id for session_id in page if session_id not in stale], total - len(stale)

    def _drop_stale(self, user: UserRef, stale: Sequence[str]) -> None:
        """Unlist from the user's listing sessions found not bound to the user, on a cluster (the listing and a
        session's meta are on different slots). A first write lists its session before it binds it and lists it
        again after: an entry read before the binding and dropped after the second listing would leave a session
        bound to the user unlisted (out of the user's pages, searches and deletion), so each dropped entry's binding
        is read again after, and one bound by then is listed back with its score (unless listed anew meanwhile)."""
        listing = self._keys.user_sessions(user)
        client = self._connector.client()
        pipe = client.pipeline(transaction=False)
        pipe.zmscore(listing, list(stale))
        pipe.zrem(listing, *stale)
        scores, _ = pipe.execute()
        pipe = client.pipeline(transaction=False)
        for session_id in stale:
            pipe.hget(self._keys.session(SessionRef(user.tenant, session_id)).meta, "user")
        bound_now = {
            session_id: score
            for session_id, score, owner in zip(stale, scores, pipe.execute(), strict=True)
            if owner == user.id and score is not None
        }
        if bound_now:
            client.zadd(listing, bound_now, nx=True)

    def _user_page(self, user: UserRef, *, offset: int, limit: int) -> tuple[list[str], int]:
        """``list_user_sessions`` without a namespace on a server without slots: the page and the bindings in one
        script (again, with the tags it lacked, when it did not know some of the listed sessions' tags)."""
        listing, tags = self._keys.user_sessions(user), self._keys.user_session_tags(user)
        args = [offset, limit, self._keys.session_head(user.tenant), session_key_suffix("meta"), user.id]
        given: dict[str, str] = {}
        for _ in range(2):
            total, raw_ids, used, bound = self._connector.run_script(
                _USER_PAGE, [listing, tags], [*args, *given_args(given)]
            )
            ids = [str(i) for i in raw_ids]
            owned = {session_id: int(b) == 1 for session_id, b in zip(ids, bound, strict=True)}
            given = wrong_tags(user.tenant, ids, [str(tag) for tag in used])
            if not given:
                break
        with mapped_errors():
            client = self._connector.client()
            if given:  # new ids listed twice in a row while it was read: checked as a cluster checks them
                pipe = client.pipeline(transaction=False)
                for session_id in given:
                    pipe.hget(self._keys.session(SessionRef(user.tenant, session_id)).meta, "user")
                owned.update({i: owner == user.id for i, owner in zip(given, pipe.execute(), strict=True)})
            stale = [session_id for session_id in ids if not owned[session_id]]
            if stale:  # a stale entry (a write that failed halfway on a cluster) is dropped from the listing
                pipe = client.pipeline(transaction=False)
                pipe.zrem(listing, *stale)
                pipe.hdel(tags, *stale)
                pipe.execute()
        return [session_id for session_id in ids if owned[session_id]], int(total) - len(stale)

    def delete_user(self, user: UserRef) -> tuple[int, bool]:
        """Delete every session bound to the user, and its listing: how many sessions were deleted, and whether none
        is left (at most ``MAX_DELETE_ROUNDS`` batches per call, so one request stays well inside its timeout; call
        again to go on). Each batch is unlisted from the user first, then each session deleted only if still bound to
        the user (atomically, on its slot) and unlisted from its namespaces; the listing is read again until it is
        empty, so a session a concurrent write bound meanwhile is deleted too."""
        listing = self._keys.user_sessions(user)
        deleted = 0
        with mapped_errors():
            client = self._connector.client()
            for _ in range(MAX_DELETE_ROUNDS):
                batch = [str(i) for i in client.zrange(listing, 0, DELETE_BATCH - 1)]
                if not batch:  # no session listed: the tags of the listing go too (a read stores none then)
                    client.delete(self._keys.user_session_tags(user))
                    return deleted, True
                sessions = [SessionRef(user.tenant, session_id) for session_id in batch]
                pipe = client.pipeline(transaction=False)
                pipe.zrem(listing, *batch)
                pipe.hdel(self._keys.user_session_tags(user), *batch)
                for session in sessions:
                    keys = self._keys.session(session)
                    pipe.hget(keys.meta, "user")
                    pipe.smembers(keys.namespaces)
                replies = pipe.execute()[2:]
                owned = [
                    (session, {str(ns) for ns in replies[2 * n + 1]} | {DEFAULT_NAMESPACE})
                    for n, session in enumerate(sessions)
                    if replies[2 * n] == user.id
                ]
                if not owned:
                    continue
                pipe = client.pipeline(transaction=False)
                for session, namespaces in owned:
                    for ns in sorted(namespaces):
                        pipe.zrem(self._keys.sessions_index(user.tenant, ns), session.id)
                pipe.execute()
                usage = "" if self._connector.is_cluster() else self._keys.tenant_usage(user.tenant)
                calls = [
                    (self._keys.session(session).all(), [self._keys.session(session).doc_prefix, user.id, usage])
                    for session, _ in owned
                ]
                results = self._connector.run_script_many(DELETE_SESSION, calls)
                deleted += sum(1 for result in results if int(result[0]) >= 0)
                if not usage:
                    self._uncount(user.tenant, results)
            return deleted, not client.exists(listing)

    def list_sessions(self, tenant: str, *, namespace: str, offset: int, limit: int) -> tuple[list[str], int]:
        index = self._keys.sessions_index(tenant, namespace)

        def commands(pipe: Pipeline) -> None:
            pipe.zrange(index, offset, offset + limit - 1)
            pipe.zcard(index)

        ids, total = self._connector.pipelined(commands)
        return list(ids), int(total)

    def release_summary_lease(self, session: SessionRef) -> None:
        with mapped_errors():
            self._connector.client().hdel(self._keys.session(session).meta, "job_at")

    def release_index_lease(self, session: SessionRef, *, only_if_idle: bool) -> bool:
        keys = self._keys.session(session)
        with mapped_errors():
            if not only_if_idle:
                self._connector.client().hdel(keys.meta, "idx_at")
                return True
            return bool(self._connector.run_script(_RELEASE_INDEX_LEASE, (keys.pending, keys.meta), []))

    def pending(self, session: SessionRef, *, limit: int) -> tuple[str, list[StoredMessage]]:
        keys = self._keys.session(session)
        with mapped_errors():
            pipe = self._connector.client().pipeline(transaction=False)
            pipe.hget(keys.meta, "gen")
            pipe.zrange(keys.pending, 0, limit - 1)
            generation, values = pipe.execute()
        return generation or "", [decode(raw) for raw in values]

    def ack_indexed(self, session: SessionRef, generation: str, ids: list[int]) -> None:
        keys = self._keys.session(session)
        if ids:
            self._connector.run_script(_ACK_INDEXED, (keys.meta, keys.pending), [generation, min(ids), max(ids)])

    def fold_input(self, session: SessionRef, *, window: int, keep: int) -> FoldInput | None:
        keys = self._keys.session(session)
        count, context, version, members = self._connector.run_script(
            _FOLD_INPUT, (keys.messages, keys.meta), [window, keep]
        )
        if not members:
            return None
        return FoldInput(
            context=context, version=version or "", messages=[decode(raw) for raw in members], count=int(count)
        )

    def commit_fold(self, session: SessionRef, *, start: FoldInput, folded: Folded) -> bool:
        keys = self._keys.session(session)
        flag, ctx = ("1", folded.context) if folded.context is not None else ("0", "")
        committed = self._connector.run_script(
            _COMMIT_FOLD,
            (keys.messages, keys.meta),
            [
                start.version,
                new_version(),
                flag,
                ctx,
                folded.tokens,
                start.messages[0].id,
                start.messages[-1].id,
                len(start.messages),
            ],
        )
        return bool(committed)


def _quota_message(name: str, quotas: Quotas) -> str:
    limits = {"sessions": quotas.sessions, "messages": quotas.messages, "bytes": quotas.bytes}
    limit = limits.get(name, quotas.namespaces)
    what = {"sessions": "sessions", "messages": "messages", "bytes": "bytes stored", "namespaces": "namespaces"}
    return f"this tenant's quota of {limit} {what.get(name, name)} is used up; nothing was stored"


def new_version() -> str:
    """A summary version token: unique across sessions, deletions and re-creations."""
    return uuid.uuid4().hex
