"""Every Redis key the project uses is built here, and only here.

Layout (``P`` is the key prefix, ``MOTORHEAD_KEY_PREFIX``, room for a tenant later; ``T`` is the session tag)::

    P:{T}:messages     sorted set  message JSON, scored by its per-session sequence number (id)
    P:{T}:meta         hash        id, context, tokens, seq, created_at, updated_at
    P:{T}:namespaces   set         namespaces whose index lists the session
    P:sessions:NS      sorted set  session ids scored by the unix ms of their last POST ("" = no namespace)

``T`` is a digest of the session id, never the id itself: ids may hold ``{``, ``}``, ``:``, ``*``, spaces or unicode,
and a digest can neither break the hash tag nor collide with another session's keys. All keys of one session share
the tag, so they live in one Redis Cluster slot and one Lua script can change them atomically.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

DEFAULT_NAMESPACE = ""


def session_tag(session_id: str) -> str:
    """A fixed-length, charset-safe digest of the session id (first 128 bits of SHA-256, hex)."""
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class SessionKeys:
    """The keys of one session, all in one cluster slot."""

    messages: str
    meta: str
    namespaces: str

    def all(self) -> tuple[str, ...]:
        return (self.messages, self.meta, self.namespaces)


@dataclass(frozen=True, slots=True)
class Keys:
    """Builds keys under one prefix."""

    prefix: str = "mh"

    def session(self, session_id: str) -> SessionKeys:
        base = f"{self.prefix}:{{{session_tag(session_id)}}}"
        return SessionKeys(messages=f"{base}:messages", meta=f"{base}:meta", namespaces=f"{base}:namespaces")

    def sessions_index(self, namespace: str = DEFAULT_NAMESPACE) -> str:
        return f"{self.prefix}:sessions:{namespace}"
