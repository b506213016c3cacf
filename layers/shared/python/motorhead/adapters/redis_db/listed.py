"""A user's listing and its sessions in one script (a server without slots): how the script finds the sessions' keys.

A session's keys carry its tag (``SessionKeys.tag``, a SHA-256 digest of the tenant and the id) that Lua cannot
compute. So the tags of the listed sessions are kept beside the listing (``Keys.user_session_tags``: id -> tag) and
the script builds each listed session's keys from ``Keys.session_head``, the tag and ``SESSION_TAIL``. That hash is a
cache of a pure function, written by these reads:

- every tag the script used comes back with what it read, and the caller checks it against the tag it computes
  (``wrong_tags``); a missing or wrong one (never seen, or written by anything else) makes the caller run the script
  again with the tags it computed (``given``), which the script uses and stores. What was read under a wrong tag is
  never used, so the hash can cost a round trip, never an answer;
- the script stores a given tag only for an id listed at that instant, and a deletion removes the session's entry
  with its listing entry (``store._DELETE_LISTED``, ``delete_user``); the hash is emptied whenever it holds more than
  twice the listing's entries and 64 (stale entries: a session unlisted by a cluster's clean-up or a migration), so it
  stays bounded by its listing.
"""

from __future__ import annotations

from collections.abc import Sequence

from motorhead.adapters.redis_db.keys import session_tag
from motorhead.core.values import SessionRef

# KEYS[1] the listing, KEYS[2] its tags. ``known_tags(ids, given)``: each listed id's tag (false when unknown or not
# hex only), ``given`` (id -> tag, from the caller) used and stored instead of what the hash holds.
TAGS_LUA = """
local function known_tags(ids, given)
  local tags = redis.call('HMGET', KEYS[2], unpack(ids))
  local write = {}
  for i, id in ipairs(ids) do
    local tag = given[id]
    if tag then
      if tags[i] ~= tag then
        write[#write + 1] = id
        write[#write + 1] = tag
      end
      tags[i] = tag
    elseif tags[i] and not string.find(tags[i], '^%x+$') then
      tags[i] = false
    end
  end
  if #write > 0 then
    if redis.call('HLEN', KEYS[2]) > 2 * redis.call('ZCARD', KEYS[1]) + 64 then
      redis.call('DEL', KEYS[2])
    end
    redis.call('HSET', KEYS[2], unpack(write))
  end
  return tags
end
"""


def wrong_tags(tenant: str, ids: Sequence[str], tags: Sequence[str]) -> dict[str, str]:
    """The listed ids whose tag the script used (``tags``, "" for none) is not theirs, each with its own tag."""
    wrong: dict[str, str] = {}
    for session_id, used in zip(ids, tags, strict=True):
        tag = session_tag(SessionRef(tenant, session_id))
        if used != tag:
            wrong[session_id] = tag
    return wrong


def given_args(given: dict[str, str]) -> list[str]:
    """``given`` as the script's trailing arguments: id, tag, id, tag..."""
    return [part for pair in given.items() for part in pair]
