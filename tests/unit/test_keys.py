"""The Redis key layout is pinned here: changing it strands existing data, so it must be a deliberate change."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from motorhead.adapters.redis_db.keys import USER_TAGS_SUFFIX, Keys, session_key_suffix, session_tag, user_tag
from motorhead.core.values import NO_TENANT, SessionRef, UserRef
from tests.support import ref

HOSTILE_IDS = [
    "session-42",
    "user@example.com",
    "a:b:c",
    "{braces}",
    "}{",
    "*",
    "with spaces  ",
    "ünïcödé 会话 🧠",
    "x" * 256,
]


def test_session_keys_given_an_id_have_the_pinned_shapes() -> None:
    # Given the default prefix / When the keys of a session are built
    keys = Keys("mh").session(ref("session-42"))
    tag = session_tag(ref("session-42"))
    # Then they have exactly these shapes
    assert len(tag) == 32
    assert keys.messages == f"mh:{{{tag}}}:messages"
    assert keys.meta == f"mh:{{{tag}}}:meta"
    assert keys.namespaces == f"mh:{{{tag}}}:namespaces"
    assert Keys("mh").sessions_index(NO_TENANT, "support") == "mh:sessions:support"
    assert Keys("mh").sessions_index(NO_TENANT) == "mh:sessions:"


def test_session_tag_is_the_sha256_prefix_of_the_id() -> None:
    # Given a known id / Then its tag is the first 32 hex digits of its SHA-256 (pinned)
    assert session_tag(ref("session-42")) == "92e76c732d82ec49fb40ff0bb444430c"


@pytest.mark.parametrize("session_id", HOSTILE_IDS)
def test_session_keys_given_hostile_id_share_one_cluster_slot(session_id: str) -> None:
    # Given any session id / When its keys are built
    keys = Keys("tenant-a").session(ref(session_id))
    # Then all of them hash to the same cluster slot, and the id itself never appears in a key
    assert len({key_slot(key.encode()) for key in keys.all()}) == 1
    assert all(session_id not in key for key in keys.all() if len(session_id) > 3)
    assert all(key.count("{") == 1 and key.count("}") == 1 for key in keys.all())


def test_session_keys_given_different_ids_never_overlap() -> None:
    # Given many distinct ids / When their keys are built / Then no key is shared
    seen: set[str] = set()
    for session_id in HOSTILE_IDS + [f"s{i}" for i in range(1000)]:
        keys = set(Keys("mh").session(ref(session_id)).all())
        assert not keys & seen
        seen |= keys


def test_keys_given_another_prefix_are_disjoint_from_the_default() -> None:
    # Given two prefixes (room for tenants) / Then the same session id maps to different keys
    assert not set(Keys("mh").session(ref("s")).all()) & set(Keys("tenant-b").session(ref("s")).all())


@pytest.mark.parametrize("user_id", HOSTILE_IDS)
def test_user_sessions_key_given_a_user_has_the_pinned_shape_and_never_holds_the_id(user_id: str) -> None:
    # Given a user of no tenant and of a tenant / When its listing's key is built
    plain = Keys("mh").user_sessions(UserRef(NO_TENANT, user_id))
    tenant = Keys("mh").user_sessions(UserRef("acme", user_id))
    tag = user_tag(UserRef(NO_TENANT, user_id))
    # Then it is the pinned shape, a digest in place of the id, one slot; two tenants' same user are two keys
    assert plain == f"mh:u:{{{tag}}}:sessions" and len(tag) == 32 and all(c in "0123456789abcdef" for c in tag)
    assert tenant.startswith("mh:t:") and tenant.endswith(f":u:{{{user_tag(UserRef('acme', user_id))}}}:sessions")
    assert plain != tenant and user_id not in plain.replace(tag, "")
    assert key_slot(plain.encode()) == key_slot(tag.encode())


@pytest.mark.parametrize("tenant", [NO_TENANT, "acme"])
def test_session_keys_given_the_parts_a_script_gets_are_the_keys_the_store_builds(tenant: str) -> None:
    # Given a session, and what a script that reads a user's listing is given: the tenant's head and the suffixes
    session = SessionRef(tenant, "chat-1")
    keys = Keys("mh").session(session)
    head = Keys("mh").session_head(tenant)
    # When the script builds the session's keys from its tag / Then they are the store's, byte for byte
    for name in ("messages", "meta", "namespaces", "pending", "requests", "vectors", "docs", "indexed", "doc_ids"):
        assert head + keys.tag + session_key_suffix(name) == getattr(keys, name)
    with pytest.raises(ValueError):
        session_key_suffix("usage")


def test_user_session_tags_key_given_a_user_is_its_listing_and_the_suffix() -> None:
    # Given a user of a tenant / When the key of its listed sessions' tags is built
    user = UserRef("acme", "ana@example.com")
    tags = Keys("mh").user_session_tags(user)
    # Then it is the listing's name and ":tags" (a script holding meta.ulist names it), on the listing's slot
    assert tags == Keys("mh").user_sessions(user) + USER_TAGS_SUFFIX
    assert USER_TAGS_SUFFIX == ":tags"
    assert tags.endswith(":u:{" + user_tag(user) + "}:sessions:tags")
    assert key_slot(tags.encode()) == key_slot(Keys("mh").user_sessions(user).encode())
    assert "ana" not in tags


@pytest.mark.parametrize("tenant", [NO_TENANT, "acme"])
@pytest.mark.parametrize("name", ["meta", "docs", "messages", "vectors"])
def test_tagged_session_key_given_a_session_s_tag_names_the_same_key_as_the_session(tenant: str, name: str) -> None:
    keys, session = Keys("mh"), SessionRef(tenant, "chat:{1}")
    assert keys.tagged_session_key(tenant, keys.session(session).tag, name) == getattr(keys.session(session), name)
