"""Every Redis key the project uses is built here, and only here.

Layout (``P`` is the key prefix, ``MOTORHEAD_KEY_PREFIX``; ``S`` is the session's base, below)::

    S:messages         sorted set  message JSON, scored by its per-session sequence number (id)
    S:meta             hash        id, context, tokens, seq, created_at, updated_at, version, gen, leases
    S:namespaces       set         namespaces whose index lists the session
    S:pending          sorted set  message JSON scored by id, stored but not yet indexed (the durable queue)
    S:requests         sorted set  the last 64 POST call tokens, scored by the last id each stored (resends)
    S:vectors          string      `exact` backend: the session's float32 vectors, one row per indexed message
    S:docs             list        `exact` backend: the message JSON of each row, in row order
    S:indexed          bitmap      bit `id` set once message `id` is indexed (either backend): indexing is idempotent
    S:doc_ids          set         `search` backend: ids that have a document P:doc:{D}:<id>
    P:doc:{D}:ID       hash        `search` backend: one message and its vector, in the shared search index
    L:sessions:NS      sorted set  the tenant's session ids scored by the unix ms of their last POST ("" = no namespace)
    L:u:{U}:sessions   sorted set  the ids of the sessions bound to user U, scored by the unix ms of their last POST
    L:u:{U}:sessions:tags  hash    listed session id -> its tag D, so that one script reads a user's listing and its
                                   sessions (a server without slots; written by those reads, bounded; see listed.py)
    P:ltm              hash        the long-term index's embedder identity and dimensions
    P:idx              -           the `search` backend's index (FT.CREATE ... PREFIX P:doc:)
    P:apikey:ID        hash        one API key: tenant, SHA-256 of its secret, scopes, created_at, label
    P:apikeys          set         the ids of every API key
    P:apikeys:rev      string      a counter every key creation and deletion bumps (the directory's revision)
    P:apikeys:changes  sorted set  `<revision>:<key id>` of the last 10,000 creations and deletions, scored by revision
    L:rate             string      the tenant's request-rate bucket (tokens and time), when rate limiting is on

A session is the pair (tenant, session id), and every key of it is derived from both:

- with no tenant (``MOTORHEAD_AUTH=none``): ``S = P:{D}`` with ``D = sha256(id)[:32]``, and ``L = P`` — the layout
  that existed before tenants, so an existing deployment's data stays readable;
- for tenant ``t``: ``S = P:t:{H}:{D}`` with ``H = sha256(t)[:16]`` and ``D = H + sha256(t, id)[:32]``, and
  ``L = P:t:{H}``. A tenant's keys can never equal another tenant's, nor the tenant-less ones (another shape).

A user is the pair (tenant, user id) too: ``U = sha256(t, user id)[:32]``, so a user's key never holds the id (often
an e-mail address) and two tenants' same user id are two keys. The binding itself is the session's ``S:meta`` field
``user``, written by the append script on the session's slot; ``L:u:{U}:sessions`` is the user's listing, on a slot
of its own: a user's sessions are spread over the cluster like any sessions, and a user-level read visits each one's
slot.

``D`` (the session's *tag*) is a digest, never the id itself: ids may hold ``{``, ``}``, ``:``, ``*``, spaces or
unicode, and a digest can neither break the hash tag nor collide with another session's keys. All keys of one session
share ``{D}``, so they live in one Redis Cluster slot and one Lua script can change them atomically. ``D`` is also the
session's TAG in the search index and its SQS message group.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from motorhead.core.values import DEFAULT_NAMESPACE, NO_TENANT, SessionRef, UserRef


def _hex(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:  # length-prefixed, so ("ab", "c") and ("a", "bc") differ
        data = part.encode("utf-8")
        digest.update(len(data).to_bytes(4, "big") + data)
    return digest.hexdigest()


def tenant_tag(tenant: str) -> str:
    """64 bits of a tenant's digest: what its keys carry instead of its name."""
    return _hex("tenant", tenant)[:16]


def session_tag(session: SessionRef) -> str:
    """The session's digest: its hash tag, its search TAG and its SQS message group (hex only)."""
    if session.tenant == NO_TENANT:
        return hashlib.sha256(session.id.encode("utf-8")).hexdigest()[:32]
    return tenant_tag(session.tenant) + _hex("session", session.tenant, session.id)[:32]


def user_tag(user: UserRef) -> str:
    """The user's digest: what its listing's key carries instead of the id (hex only)."""
    return _hex("user", user.tenant, user.id)[:32]


SESSION_TAIL = "}:"  # between a session's tag and the name of one of its keys (``Keys.session_head``)
USER_TAGS_SUFFIX = ":tags"  # a user's listing's name and this: the tags of its sessions (``Keys.user_session_tags``)
_SESSION_KEY_NAMES = ("messages", "meta", "namespaces", "pending", "requests", "vectors", "docs", "indexed", "doc_ids")


def session_key_suffix(name: str) -> str:
    """What follows a session's tag in the name of its key ``name`` (a field of ``SessionKeys``: ``meta``, ``docs``...):
    a script builds the key as ``Keys.session_head(tenant) + tag + session_key_suffix(name)``."""
    if name not in _SESSION_KEY_NAMES:
        raise ValueError(f"a session has no key {name!r}")
    return SESSION_TAIL + name


@dataclass(frozen=True, slots=True)
class SessionKeys:
    """The keys of one session, all in one cluster slot."""

    tag: str
    messages: str
    meta: str
    namespaces: str
    pending: str
    requests: str
    vectors: str
    docs: str
    indexed: str
    doc_ids: str
    doc_prefix: str  # the session's search documents are ``doc_prefix + str(id)``; same hash tag

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
            self.requests,
        )


@dataclass(frozen=True, slots=True)
class Keys:
    """Builds keys under one prefix."""

    prefix: str = "mh"

    def session(self, session: SessionRef) -> SessionKeys:
        tag = session_tag(session)
        head = f"{self.session_head(session.tenant)}{tag}"
        names = {name: head + session_key_suffix(name) for name in _SESSION_KEY_NAMES}
        return SessionKeys(tag=tag, **names, doc_prefix=f"{self.doc_root}{{{tag}}}:")

    def session_head(self, tenant: str) -> str:
        """What the keys of a session of ``tenant`` start with: a key is ``session_head + tag + SESSION_TAIL + name``
        (``name`` as in ``SessionKeys``: ``meta``, ``docs``...). A script that reads a user's listing builds the
        listed sessions' keys from these parts and the tags of ``user_session_tags``."""
        return f"{self._tenant_root(tenant)}:{{"

    def tagged_session_key(self, tenant: str, tag: str, name: str) -> str:
        """The key ``name`` (``meta``, ``docs``...) of the session of ``tenant`` whose tag is ``tag``, for a caller that
        holds the tag alone (what ``session(...).<name>`` is for the session of that tag)."""
        return f"{self.session_head(tenant)}{tag}{session_key_suffix(name)}"

    @property
    def doc_root(self) -> str:
        """What every search document key starts with (the search index's PREFIX)."""
        return f"{self.prefix}:doc:"

    def sessions_index(self, tenant: str, namespace: str = DEFAULT_NAMESPACE) -> str:
        return f"{self._tenant_root(tenant)}:sessions:{namespace}"

    def user_sessions(self, user: UserRef) -> str:
        """The user's listing: the ids of the sessions bound to it."""
        return f"{self._tenant_root(user.tenant)}:u:{{{user_tag(user)}}}:sessions"

    def user_session_tags(self, user: UserRef) -> str:
        """The tags of the sessions in the user's listing (id -> ``SessionKeys.tag``; its name is the listing's and
        ``USER_TAGS_SUFFIX``, so a script that holds the listing's name can name it too)."""
        return self.user_sessions(user) + USER_TAGS_SUFFIX

    def api_key(self, key_id: str) -> str:
        return f"{self.prefix}:apikey:{key_id}"

    def api_keys(self) -> str:
        return f"{self.prefix}:apikeys"

    def tenant_usage(self, tenant: str) -> str:
        """What the tenant keeps (sessions, messages, bytes, namespaces: a hash), beside its namespaces' names (a
        set): one hash tag, so one script on one slot checks and counts them."""
        return f"{self._tenant_root(tenant)}:{{q{tenant_tag(tenant)}}}:usage"

    def tenant_namespaces(self, tenant: str) -> str:
        """The names of the namespaces the tenant has written under (its namespace quota counts them)."""
        return f"{self._tenant_root(tenant)}:{{q{tenant_tag(tenant)}}}:namespaces"

    def api_keys_revision(self) -> str:
        """A counter bumped by every key creation and deletion."""
        return f"{self.prefix}:apikeys:rev"

    def api_keys_changes(self) -> str:
        """The log of the last key creations and deletions: ``<revision>:<key id>`` scored by the revision."""
        return f"{self.prefix}:apikeys:changes"

    def rate_bucket(self, tenant: str) -> str:
        return f"{self._tenant_root(tenant)}:rate"

    def ltm_meta(self) -> str:
        return f"{self.prefix}:ltm"

    def search_index(self) -> str:
        return f"{self.prefix}:idx"

    def _tenant_root(self, tenant: str) -> str:
        return self.prefix if tenant == NO_TENANT else f"{self.prefix}:t:{tenant_tag(tenant)}"
