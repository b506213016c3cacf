"""The session store on Redis (standalone or cluster). Writes to one session are one Lua script on its slot."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from redis import exceptions as redis_errors

from motorhead.errors import StoreUnavailableError
from motorhead.keys import DEFAULT_NAMESPACE, Keys
from motorhead.ports import SessionSnapshot, StoredMessage
from motorhead.redis_client import RedisConnector

# KEYS: messages, meta, namespaces. ARGV: session id, now ms, namespace, has-context flag, context, then one JSON
# object per message without its id. Ids come from the session's own counter, so they are unique and increasing,
# and every message of the call is stored, or none is.
_APPEND = """
local n = #ARGV - 5
local last = redis.call('HINCRBY', KEYS[2], 'seq', n)
if n > 0 then
  local args = {}
  for i = 1, n do
    local id = last - n + i
    args[#args + 1] = id
    args[#args + 1] = '{"id":' .. id .. ',' .. string.sub(ARGV[5 + i], 2)
  end
  redis.call('ZADD', KEYS[1], unpack(args))
end
redis.call('HSETNX', KEYS[2], 'id', ARGV[1])
redis.call('HSETNX', KEYS[2], 'created_at', ARGV[2])
redis.call('HSET', KEYS[2], 'updated_at', ARGV[2])
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[2], 'context', ARGV[5])
end
redis.call('SADD', KEYS[3], ARGV[3])
return redis.call('ZCARD', KEYS[1])
"""

_UNAVAILABLE = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
)


@contextmanager
def _mapped_errors() -> Iterator[None]:
    try:
        yield
    except _UNAVAILABLE as exc:
        raise StoreUnavailableError(f"redis unavailable: {type(exc).__name__}") from exc


class RedisMemoryStore:
    """Implements ``motorhead.ports.MemoryStore``."""

    def __init__(self, connector: RedisConnector, keys: Keys) -> None:
        self._connector = connector
        self._keys = keys
        self._append_script: Callable[..., Any] | None = None

    def append(
        self,
        session_id: str,
        messages: Sequence[tuple[str, str]],
        *,
        context: str | None,
        namespace: str,
        now_ms: int,
    ) -> int:
        keys = self._keys.session(session_id)
        bodies = [json.dumps({"role": role, "content": content, "created_at": now_ms}) for role, content in messages]
        flag, ctx = ("1", context) if context is not None else ("0", "")
        with _mapped_errors():
            client = self._connector.client()
            # The index first: if the session write then fails, a retried POST lands in the same place.
            client.zadd(self._keys.sessions_index(namespace), {session_id: now_ms})
            if self._append_script is None:
                self._append_script = client.register_script(_APPEND)
            count = self._append_script(keys=list(keys.all()), args=[session_id, now_ms, namespace, flag, ctx, *bodies])
        return int(count)

    def read(self, session_id: str, *, limit: int) -> SessionSnapshot:
        keys = self._keys.session(session_id)
        with _mapped_errors():
            pipe = self._connector.client().pipeline(transaction=False)
            pipe.zrevrange(keys.messages, 0, limit - 1)
            pipe.hmget(keys.meta, ["context", "tokens"])
            raw_messages, (context, tokens) = pipe.execute()
        return SessionSnapshot(
            messages=[_decode(raw) for raw in raw_messages], context=context, tokens=int(tokens or 0)
        )

    def delete(self, session_id: str, *, namespace: str) -> None:
        keys = self._keys.session(session_id)
        with _mapped_errors():
            client = self._connector.client()
            namespaces: set[str] = {str(ns) for ns in client.smembers(keys.namespaces)} | {namespace, DEFAULT_NAMESPACE}
            # Unlist first, then drop the data: if the second step fails, a retried DELETE still finds the list
            # of namespaces and finishes the job.
            pipe = client.pipeline(transaction=False)
            for ns in sorted(namespaces):
                pipe.zrem(self._keys.sessions_index(ns), session_id)
            pipe.execute()
            client.delete(*keys.all())

    def list_sessions(self, *, namespace: str, offset: int, limit: int) -> tuple[list[str], int]:
        index = self._keys.sessions_index(namespace)
        with _mapped_errors():
            pipe = self._connector.client().pipeline(transaction=False)
            pipe.zrange(index, offset, offset + limit - 1)
            pipe.zcard(index)
            ids, total = pipe.execute()
        return list(ids), int(total)


def _decode(raw: str) -> StoredMessage:
    data = json.loads(raw)
    return StoredMessage(
        id=int(data["id"]), role=data["role"], content=data["content"], created_at=int(data["created_at"])
    )
