"""Every Redis key the project uses is built here, and only here.

Layout (``P`` is the key prefix, ``MOTORHEAD_KEY_PREFIX``, room for a tenant later; ``T`` is the session tag)::

    P:{T}:messages     sorted set  message JSON, scored by its per-session sequence number (id)
    P:{T}:meta         hash        id, context, tokens, seq, created_at, updated_at
    P:{T}:namespaces   set         namespaces whose index lists the session
    P:{T}:pending      sorted set  message JSON scored by id, stored but not yet indexed (the durable queue)
    P:{T}:vectors      string      `exact` backend: the session's float32 vectors, one row per indexed message
    P:{T}:docs         list        `exact` backend: the message JSON of each row, in row order
    P:{T}:indexed      bitmap      bit `id` set once message `id` is indexed (either backend): indexing is idempotent
    P:{T}:doc_ids      set         `search` backend: ids that have a document P:doc:{T}:<id>
    P:doc:{T}:ID       hash        `search` backend: one message and its vector, in the shared search index
    P:sessions:NS      sorted set  session ids scored by the unix ms of their last POST ("" = no namespace)
    P:ltm              hash        the long-term index's embedder identity and dimensions
    P:idx              -           the `search` backend's index (FT.CREATE ... PREFIX P:doc:)

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
    pending: str
    vectors: str
    docs: str
    indexed: str
    doc_ids: str

    def all(self) -> tuple[str, ...]:
        """Every fixed key of the session (the search documents are listed in ``doc_ids``)."""
        return (
            self.messages,
            self.meta,
            self.namespaces,
            self.pending,
            self.vectors,
            self.docs,
            self.indexed,
            self.doc_ids,
        )


@dataclass(frozen=True, slots=True)
class Keys:
    """Builds keys under one prefix."""

    prefix: str = "mh"

    def session(self, session_id: str) -> SessionKeys:
        base = f"{self.prefix}:{{{session_tag(session_id)}}}"
        return SessionKeys(
            messages=f"{base}:messages",
            meta=f"{base}:meta",
            namespaces=f"{base}:namespaces",
            pending=f"{base}:pending",
            vectors=f"{base}:vectors",
            docs=f"{base}:docs",
            indexed=f"{base}:indexed",
            doc_ids=f"{base}:doc_ids",
        )

    def doc_prefix(self, session_id: str) -> str:
        """Prefix of the session's search documents: ``doc_prefix(s) + str(id)``; same hash tag as its other keys."""
        return f"{self.doc_root}{{{session_tag(session_id)}}}:"

    @property
    def doc_root(self) -> str:
        """What every search document key starts with (the search index's PREFIX)."""
        return f"{self.prefix}:doc:"

    def sessions_index(self, namespace: str = DEFAULT_NAMESPACE) -> str:
        return f"{self.prefix}:sessions:{namespace}"

    def ltm_meta(self) -> str:
        return f"{self.prefix}:ltm"

    def search_index(self) -> str:
        return f"{self.prefix}:idx"
