"""Attacks on access control, through the real functions behind the local gateway (and, where the gateway would hide
what API Gateway does, through Lambda events): records and headers an attacker could shape, JWT forgeries, hostile
session ids and tenant names, scope escalation under both prefixes, the rate limit, the admin function, revocation
with the key cache on, and what answers and logs give away.

Each test states what an attacker tries and what must hold: the exact status and body, and that nothing outside the
attacker's own keys changed in Redis (every key's DUMP before and after).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import logging
import re
import socket
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import redis

from devserver.embedded_redis import EmbeddedRedis
from devserver.template import load_routes
from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.key_store import RedisKeyStore
from motorhead.adapters.redis_db.keys import Keys, tenant_tag
from motorhead.adapters.redis_db.rate_limiter import RedisRateLimiter
from motorhead.core.api_keys import StoredKey
from motorhead.core.auth import ALL_SCOPES
from motorhead.core.clock import now_ms
from motorhead.errors import ConfigError
from motorhead.settings import Settings
from tests.integration.conftest import SecureApi, serving
from tests.jwks_server import (
    JwksServer,
    SigningKey,
    b64url,
    ec_key,
    hmac_with_public_key,
    in_seconds,
    mint,
    rsa_key,
    signed_as_is,
    unsigned_token,
)
from tests.support import cold_start, get_event, post_event, with_wrong_secret

PREFIXES = ["", "/motorhead"]
EMPTY: dict[str, Any] = {"messages": [], "context": None, "tokens": 0}
INVALID_KEY = {"error": "invalid API key"}
NO_TENANT_BODY = {"error": "the credential names no valid tenant"}
ISSUER, AUDIENCE = "https://idp.attacks.test/", "motorhead-api"
HASH_TAG = re.compile(rb"\{([^}]*)\}")


# -- plumbing ---------------------------------------------------------------------------------------------------------


class Answer:
    def __init__(self, status: int, headers: dict[str, str], text: str) -> None:
        self.status, self.headers, self.text = status, headers, text

    def json(self) -> Any:
        return json.loads(self.text)

    def __repr__(self) -> str:
        return f"Answer({self.status}, {self.text[:200]!r})"


def send(
    base_url: str,
    method: str,
    path: str,
    headers: list[tuple[str, str]] | dict[str, str] | None = None,
    body: Any = None,
) -> Answer:
    """One request over a fresh connection, the path byte for byte and every header as given (duplicates too)."""
    where = urlsplit(base_url)
    connection = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=15)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers.items() if isinstance(headers, dict) else headers or []:
            connection.putheader(name, value)
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            connection.putheader("content-type", "application/json")
        connection.putheader("content-length", str(len(data or b"")))
        connection.endheaders(data)
        response = connection.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode())
    finally:
        connection.close()


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def refused(answer: Answer, status: int, body: dict[str, str] | None = None) -> None:
    """A refusal: that status, a JSON body of one ``error`` (that one when given), a challenge on a 401."""
    assert answer.status == status, answer
    assert answer.headers["content-type"] == "application/json", answer.headers
    assert set(answer.json()) == {"error"}, answer
    if body is not None:
        assert answer.json() == body, answer
    if status == 401:
        assert answer.headers["www-authenticate"].startswith("Bearer realm="), answer.headers


def snapshot(raw: redis.Redis) -> dict[bytes, Any]:
    """Every key's serialized value and TTL sign (a missing key is absent)."""
    names = sorted(raw.scan_iter(count=1000))
    pipe = raw.pipeline(transaction=False)
    for name in names:
        pipe.dump(name)
        pipe.pttl(name)
    values = pipe.execute()
    return {name: (values[2 * i], values[2 * i + 1] > 0) for i, name in enumerate(names)}


def changed(before: dict[bytes, Any], after: dict[bytes, Any]) -> set[bytes]:
    return {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}


def space(tenant: str) -> bytes:
    """What every key of ``tenant``'s sessions, lists and rate bucket starts with."""
    return f"mh:t:{tenant_tag(tenant)}:".encode()


def fresh(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


@contextmanager
def deployed(server: EmbeddedRedis, **env: str) -> Iterator[SecureApi]:
    with cold_start(REDIS_URL=server.url, MOTORHEAD_MAX_WINDOW_SIZE="4", **env) as api, serving(api) as url:
        yield SecureApi(base_url=url, api=api)


@pytest.fixture
def raw(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    """A binary client on the emptied test server (DUMP values are bytes)."""
    client = redis.Redis(port=redis_server.port)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def keyed(redis_server: EmbeddedRedis, raw: redis.Redis) -> Iterator[SecureApi]:
    """API keys, verified on every request (no key cache)."""
    with deployed(redis_server, MOTORHEAD_AUTH="api-key", MOTORHEAD_API_KEY_CACHE_SECONDS="0") as running:
        yield running


def say(content: str, context: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": [{"role": "Human", "content": content}]}
    if context is not None:
        body["context"] = context
    return body


# -- API key records -------------------------------------------------------------------------------------------------


def test_key_record_given_no_tenant_or_an_unusable_one_is_refused_and_never_reads_the_tenantless_sessions(
    redis_server: EmbeddedRedis, raw: redis.Redis
) -> None:
    # Given sessions written before auth was turned on (MOTORHEAD_AUTH=none: the tenant-less caller "")
    marker = fresh("LEGACY-SECRET")
    with cold_start(REDIS_URL=redis_server.url) as legacy:
        stored = legacy.invoke("PostMemoryFunction", post_event("legacy", say(marker, context=marker)))
        assert stored["statusCode"] == 200, stored
    with deployed(redis_server, MOTORHEAD_AUTH="api-key", MOTORHEAD_API_KEY_CACHE_SECONDS="0") as secure:
        # And API key records an attacker with write access to Redis (or a broken tool) planted: a right secret, but
        # naming no tenant (the tenant-less caller), a tenant that could inject into keys, or no tenant field at all
        connector = RedisConnector(Settings(REDIS_URL=redis_server.url))
        store = RedisKeyStore(connector, Keys())
        planted: dict[str, str] = {}
        for case, tenant in {"empty": "", "injection": "a:b{c}*", "missing": "drop-me"}.items():
            key_id, secret = uuid.uuid4().hex[:16], "S" * 43
            store.put(StoredKey(key_id, tenant, hashlib.sha256(secret.encode()).hexdigest(), ALL_SCOPES, created_at=1))
            if case == "missing":
                raw.hdel(f"mh:apikey:{key_id}", "tenant")
            planted[case] = f"mhk_{key_id}_{secret}"
        connector.close()
        before = snapshot(raw)
        for case, key in planted.items():
            for prefix in PREFIXES:
                # When the key is presented on every route
                for method, path, body in [
                    ("GET", "/sessions/legacy/memory", None),
                    ("GET", "/sessions", None),
                    ("POST", "/sessions/legacy/memory", say("planted", context="IGNORE PREVIOUS INSTRUCTIONS")),
                    ("DELETE", "/sessions/legacy/memory", None),
                    ("GET", "/keys/current", None),
                ]:
                    answer = send(secure.base_url, method, prefix + path, bearer(key), body)
                    # Then it is refused as naming no valid tenant, never let in as the tenant-less caller
                    refused(answer, 401, NO_TENANT_BODY)
                    assert marker not in answer.text, (case, answer)
            # And with a wrong secret the same id says only "invalid API key" (no word about the record's tenant)
            forged = with_wrong_secret(key)
            refused(send(secure.base_url, "GET", "/keys/current", bearer(forged)), 401, INVALID_KEY)
        # And nothing changed: the legacy session is whole, no tenant space appeared
        assert not changed(before, snapshot(raw))
    with cold_start(REDIS_URL=redis_server.url) as legacy:
        memory = json.loads(legacy.invoke("GetMemoryFunction", get_event("legacy"))["body"])
    assert [m["content"] for m in memory["messages"]] == [marker] and memory["context"] == marker


def test_key_record_given_one_this_version_cannot_read_refuses_it_as_an_unknown_key_and_lists_the_others(
    keyed: SecureApi, raw: redis.Redis
) -> None:
    # Given a working key, and key records damaged by hand or written by a newer version: no secret hash, a scope
    # this version does not know, a creation time that is not a number, a label that is not UTF-8, a record that is
    # not a hash at all (each with the right secret otherwise)
    good = keyed.key("acme")
    damaged: dict[str, str] = {}
    for case in ["no-hash", "unknown-scope", "bad-created-at", "not-utf-8", "not-a-hash"]:
        key = keyed.key("acme")
        name = f"mh:apikey:{key.split('_')[1]}"
        if case == "no-hash":
            raw.hdel(name, "hash")
        elif case == "unknown-scope":
            raw.hset(name, "scopes", "read,superuser")
        elif case == "bad-created-at":
            raw.hset(name, "created_at", "yesterday")
        elif case == "not-utf-8":
            raw.hset(name, "label", b"\xff\xfe")
        else:
            raw.delete(name)
            raw.rpush(name, "a list")
        damaged[case] = key
    for case, key in damaged.items():
        for method, path in [("GET", "/sessions/a/memory"), ("GET", "/sessions"), ("GET", "/keys/current")]:
            # When such a key is presented
            answer = send(keyed.base_url, method, path, bearer(key))
            # Then it is refused as an invalid key (401), never a 500
            assert answer.status == 401, (case, method, path, answer)
            refused(answer, 401, INVALID_KEY)
    # And the working key still works, and listing the keys shows it (the damaged ones are skipped, not fatal)
    assert send(keyed.base_url, "GET", "/keys/current", bearer(good)).status == 200
    listed = keyed.api.admin({"action": "list", "tenant": "acme"})
    assert [entry["key_id"] for entry in listed["keys"]] == [good.split("_")[1]], listed


@pytest.mark.parametrize("change", ["create", "revoke"])
def test_key_store_given_a_change_bumps_the_revision_only_after_the_change_is_written(
    redis_server: EmbeddedRedis, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    # Given the Redis key store, and every request it sends recorded (on a cluster the record, the id set and the
    # revision are on three nodes: a revision sent beside the change could land first, and a process reading it then
    # would hold a revoked key under the new revision until the next change)
    connector = RedisConnector(Settings(REDIS_URL=redis_server.url))
    store = RedisKeyStore(connector, Keys())
    key = StoredKey(uuid.uuid4().hex[:16], "acme", hashlib.sha256(b"S").hexdigest(), ALL_SCOPES, created_at=1)
    if change == "revoke":
        store.put(key)
    sends: list[bytes] = []
    original: Callable[..., None] = redis.connection.AbstractConnection.send_packed_command

    def recording(self: Any, command: Any, check_health: bool = True) -> None:
        parts = [command] if isinstance(command, str | bytes) else command
        sends.append(b"".join(p.encode() if isinstance(p, str) else bytes(p) for p in parts))
        original(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", recording)
    # When a key is created or revoked
    store.put(key) if change == "create" else store.delete(key.key_id)
    monkeypatch.undo()
    connector.close()
    # Then the revision's INCR is a request of its own, sent after the one that wrote the change
    bumps = [n for n, sent in enumerate(sends) if b"INCR" in sent]
    writes = [n for n, sent in enumerate(sends) if (b"HSET" if change == "create" else b"SREM") in sent]
    assert len(bumps) == 1 and len(writes) == 1 and writes[0] < bumps[0], sends
    assert b"HSET" not in sends[bumps[0]] and b"SREM" not in sends[bumps[0]] and b"DEL" not in sends[bumps[0]]


def test_key_record_given_an_unreadable_one_presented_again_and_again_logs_it_once(
    redis_server: EmbeddedRedis, raw: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a key record with no secret hash
    connector = RedisConnector(Settings(REDIS_URL=redis_server.url))
    store = RedisKeyStore(connector, Keys())
    key_id = uuid.uuid4().hex[:16]
    store.put(StoredKey(key_id, "acme", hashlib.sha256(b"S").hexdigest(), ALL_SCOPES, created_at=1))
    raw.hdel(f"mh:apikey:{key_id}", "hash")
    caplog.clear()
    # When it is read a hundred times (a caller presenting it on every request)
    found = [store.get(key_id) for _ in range(100)]
    connector.close()
    # Then it is refused every time, and the operator reads one line naming it, not a hundred
    assert found == [None] * 100
    warned = [r for r in caplog.records if r.getMessage() == "unreadable API key record: refused"]
    assert len(warned) == 1 and getattr(warned[0], "key_id", None) == key_id


def test_keys_given_unknown_forged_or_malformed_answer_one_body_so_nothing_tells_them_apart(keyed: SecureApi) -> None:
    # Given a real key, and an attacker who knows its public id (ids are in logs and listings)
    key = keyed.key(fresh("acme"))
    key_id = key.split("_")[1]
    attempts = {
        "unknown-id": f"mhk_{'0' * 16}_{'x' * 43}",
        "known-id-wrong-secret": f"mhk_{key_id}_{'x' * 43}",
        "known-id-short-secret": f"mhk_{key_id}_{'x' * 42}",
        "upper-case-id": f"mhk_{key_id.upper()}_{key.split('_', 2)[2]}",
        "other-prefix": "mhK" + key[3:],
        "trailing-junk": key + "x",
        "space-inside": key[:20] + " " + key[20:],
    }
    for name, attempt in attempts.items():
        # When each is presented / Then the same 401 body, whichever part was wrong
        answer = send(keyed.base_url, "GET", "/keys/current", {"x-api-key": attempt})
        refused(answer, 401, INVALID_KEY)
        assert key_id not in answer.text, name
    # And the real key still works
    assert send(keyed.base_url, "GET", "/keys/current", bearer(key)).status == 200


# -- headers ---------------------------------------------------------------------------------------------------------


def test_credentials_given_duplicate_headers_refuse_the_request_as_api_gateway_does(
    keyed: SecureApi, raw: redis.Redis
) -> None:
    # Given two tenants' keys
    alice, bob = keyed.key(fresh("alice")), keyed.key(fresh("bob"))
    assert send(keyed.base_url, "POST", "/sessions/s/memory", bearer(alice), say("alice's")).status == 200
    before = snapshot(raw)
    malformed_basic = {"error": "malformed Basic credentials"}
    duplicates = {
        "junk-then-valid": [("Authorization", "Bearer junk"), ("Authorization", f"Bearer {bob}")],
        "valid-then-junk": [("Authorization", f"Bearer {bob}"), ("Authorization", "Bearer junk")],
        "two-tenants": [("Authorization", f"Bearer {alice}"), ("Authorization", f"Bearer {bob}")],
        "same-key-twice": [("Authorization", f"Bearer {bob}"), ("authorization", f"Bearer {bob}")],
        "mixed-case-names": [("AUTHORIZATION", "Basic Og=="), ("authorization", f"Bearer {bob}")],
        "x-api-key-twice": [("x-api-key", "junk"), ("x-api-key", bob)],
        "metal-twice": [("x-metal-api-key", bob), ("X-Metal-Api-Key", alice)],
    }
    for name, headers in duplicates.items():
        for prefix in PREFIXES:
            # When a request repeats a credential header (API Gateway joins the values with commas)
            answer = send(keyed.base_url, "DELETE", f"{prefix}/sessions/s/memory", headers)
            # Then it is refused, never "the last (or first) one wins"
            refused(answer, 401, malformed_basic if name == "mixed-case-names" else INVALID_KEY)
            assert "alice" not in answer.text and "bob" not in answer.text, name
    # And what API Gateway hands the function for such a request is refused the same way
    event = post_event("s", say("planted"))
    event["headers"] = {**event["headers"], "authorization": f"Bearer junk,Bearer {bob}"}
    invoked = keyed.api.invoke("PostMemoryFunction", event)
    assert invoked["statusCode"] == 401 and json.loads(invoked["body"]) == INVALID_KEY
    # And nothing changed
    assert not changed(before, snapshot(raw))


def test_credentials_given_several_different_headers_authorization_wins_and_a_bad_one_never_falls_through(
    keyed: SecureApi,
) -> None:
    # Given two tenants' keys, and a read-only one
    alice_tenant, bob_tenant = fresh("alice"), fresh("bob")
    alice, bob = keyed.key(alice_tenant), keyed.key(bob_tenant, scopes="read")

    def who(headers: dict[str, str]) -> Answer:
        return send(keyed.base_url, "GET", "/keys/current", headers)

    # When a request carries several kinds of credential header / Then one fixed order decides: Authorization, then
    # x-api-key, then x-metal-api-key (it cannot pick another tenant by adding a header)
    assert who(bearer(alice) | {"x-api-key": bob}).json()["tenant"] == alice_tenant
    assert who({"x-api-key": alice, "x-metal-api-key": bob}).json()["tenant"] == alice_tenant
    assert who({"x-metal-api-key": bob, "x-metal-client-id": alice}).json()["tenant"] == bob_tenant
    # And a malformed or refused Authorization is final: a valid key in another header is not looked at
    for authorization in ("Token abc", "Bearer", "Basic !!!", "Bearer junk", f"Bearer {alice}x"):
        refused(who({"Authorization": authorization, "x-api-key": alice, "x-metal-api-key": alice}), 401)
    # And an empty x-api-key is refused even beside a valid x-metal-api-key
    refused(who({"x-api-key": "", "x-metal-api-key": alice}), 401, {"error": "empty credential"})


def test_authorization_given_scheme_and_encoding_tricks_takes_only_a_well_formed_key(keyed: SecureApi) -> None:
    # Given a key
    tenant = fresh("acme")
    key = keyed.key(tenant)

    def basic(userinfo: str) -> str:
        return "Basic " + base64.b64encode(userinfo.encode()).decode()

    accepted = {
        "mixed-case-scheme": f"bEaReR {key}",
        "extra-spaces": f"Bearer    {key}   ",
        "basic-any-user": basic(f"anyone:{key}"),
        "basic-empty-user": basic(f":{key}"),
    }
    for name, authorization in accepted.items():
        answer = send(keyed.base_url, "GET", "/keys/current", {"Authorization": authorization})
        assert answer.status == 200 and answer.json()["tenant"] == tenant, (name, answer)
    refusals = {
        "basic-empty-password": (basic(f"{key}:"), "empty credential"),
        "basic-key-as-user-only": (basic(key), "malformed Basic credentials: expected user:key"),
        "basic-no-padding": (basic(f"uu:{key}").rstrip("="), "malformed Basic credentials"),  # (it had two)
        "basic-not-base64": (basic(f"u:{key}")[:-4] + "-_!=", "malformed Basic credentials"),
        "tab-separator": (f"Bearer\t{key}", "unsupported Authorization scheme: use Bearer or Basic"),
        "two-tokens": (f"Bearer {key} {key}", "invalid API key"),
        "key-then-comma": (f"Bearer {key},", "invalid API key"),
        "bearer-basic-blend": (f"Bearer {basic('u:' + key)}", "invalid API key"),
        "too-long": ("Bearer " + "k" * 8_193, "credential too long"),
    }
    for name, (authorization, message) in refusals.items():
        # When the key is sent in a malformed or ambiguous way / Then 401, and the answer never echoes the key
        answer = send(keyed.base_url, "GET", "/keys/current", {"Authorization": authorization})
        refused(answer, 401, None if message is None else {"error": message})
        assert key not in answer.text and key.split("_")[1] not in answer.text, name


def test_authorization_given_basic_credentials_that_are_not_ascii_answers_401_on_every_route(keyed: SecureApi) -> None:
    # Given an Authorization header whose Basic part is not ASCII (bytes no base64 has), with no key at all
    for method, path, body in [
        ("GET", "/sessions/a/memory", None),
        ("POST", "/sessions/a/memory", {"messages": [{"role": "Human", "content": "x"}]}),
        ("DELETE", "/sessions/a/memory", None),
        ("POST", "/sessions/a/retrieval", {"text": "x"}),
        ("GET", "/sessions", None),
        ("GET", "/keys/current", None),
    ]:
        # When it is sent / Then it is refused as malformed (401), never a 500
        answer = send(keyed.base_url, method, path, {"Authorization": "Basic \u00e9\u00e9"}, body)
        refused(answer, 401, {"error": "malformed Basic credentials"})


def raw_exchange(base_url: str, request: bytes) -> tuple[int, dict[str, str], bytes, bytes]:
    """``request`` as bytes on a new connection: the first answer's status, headers and body, and whatever the
    server sent after it before closing the connection."""
    where = urlsplit(base_url)
    with socket.create_connection((where.hostname or "127.0.0.1", where.port or 80), timeout=15) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    length = int(headers["content-length"])
    return int(status_line.split()[1]), headers, rest[:length], rest[length:]


@pytest.mark.parametrize(
    ("framing", "status", "error"),
    [
        (b"Content-Length: abc\r\n", 400, "invalid Content-Length"),
        (b"Content-Length: -5\r\n", 400, "invalid Content-Length"),
        (b"Content-Length: 5\r\nContent-Length: 50\r\n", 400, "invalid Content-Length"),
        (b"Content-Length: 1000000000000\r\n", 413, "request body is over API Gateway's limit of 10485760 bytes"),
        (b"Transfer-Encoding: chunked\r\n", 411, "chunked request bodies are not supported: send Content-Length"),
    ],
)
def test_gateway_given_a_body_framed_ambiguously_answers_json_unread_and_closes_so_nothing_is_smuggled(
    keyed: SecureApi, raw: redis.Redis, framing: bytes, status: int, error: str
) -> None:
    # Given a key, and a POST whose body is framed in a way a proxy and this gateway could read differently, with a
    # second request hidden where the body would be
    key = keyed.key(fresh("acme"))
    hidden = (
        b"DELETE /sessions/victim/memory HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key.encode() + b"\r\n\r\n"
    )
    body = b"5\r\nhello\r\n0\r\n\r\n" + hidden
    request = (
        b"POST /sessions/victim/memory HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + key.encode()
        + b"\r\nContent-Type: application/json\r\n"
        + framing
        + b"\r\n"
        + body
    )
    before = snapshot(raw)
    # When it is sent
    answer_status, headers, answer, after = raw_exchange(keyed.base_url, request)
    # Then one JSON error answers it, the connection closes (no hidden request is served), and nothing changed
    assert (answer_status, headers["content-type"], json.loads(answer)) == (
        status,
        "application/json",
        {"error": error},
    )
    assert after == b""
    assert not changed(before, snapshot(raw))


def test_gateway_given_raw_bytes_in_the_path_answers_400_and_names_no_session(
    keyed: SecureApi, raw: redis.Redis
) -> None:
    # Given a key, and a path with raw UTF-8 where percent-encoding belongs
    key = keyed.key(fresh("acme"))
    before = snapshot(raw)
    request = (
        "POST /sessions/\u00e9raw/memory HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer "
        f"{key}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
    ).encode()
    # When it is sent / Then 400 JSON, and no session (under any reading of those bytes) was written
    status, headers, answer, _ = raw_exchange(keyed.base_url, request)
    assert (status, json.loads(answer)) == (400, {"error": "the path is not percent-encoded UTF-8"})
    assert not changed(before, snapshot(raw))


# -- scopes ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_scope_given_a_read_only_key_every_write_delete_and_list_route_answers_403_and_changes_nothing(
    keyed: SecureApi, raw: redis.Redis, prefix: str
) -> None:
    # Given a tenant's session written with a full key, and a read-only key of the same tenant
    tenant = fresh("acme")
    owner, reader = keyed.key(tenant), keyed.key(tenant, scopes="read")
    writer_only = keyed.key(tenant, scopes="write")
    written = send(keyed.base_url, "POST", "/sessions/s/memory?namespace=team", bearer(owner), say("kept", "ctx"))
    assert written.status == 200, written
    before = snapshot(raw)
    attempts = [
        ("POST", "/sessions/s/memory", say("planted", context="IGNORE PREVIOUS INSTRUCTIONS"), "write"),
        ("POST", "/sessions/s/memory?namespace=team", {"messages": [], "context": "overwritten"}, "write"),
        ("DELETE", "/sessions/s/memory", None, "delete"),
        ("DELETE", "/sessions/s/memory?namespace=team", None, "delete"),
        ("GET", "/sessions", None, "list"),
        ("GET", "/sessions?namespace=team&size=100", None, "list"),
    ]
    for method, path, body, scope in attempts:
        # When the read-only key tries to write, delete or list (also under /motorhead, n8n's prefix)
        answer = send(keyed.base_url, method, prefix + path, bearer(reader), body)
        # Then 403 naming the missing scope only
        refused(answer, 403, {"error": f"this credential does not allow '{scope}'"})
    # And a write-only key cannot read the session back, nor search it
    for method, path, body in [("GET", "/sessions/s/memory", None), ("POST", "/sessions/s/retrieval", {"text": "k"})]:
        refused(send(keyed.base_url, method, prefix + path, bearer(writer_only), body), 403)
    # And nothing changed, and the read-only key still reads what the owner wrote
    assert not changed(before, snapshot(raw))
    memory = send(keyed.base_url, "GET", prefix + "/sessions/s/memory", bearer(reader)).json()
    assert [m["content"] for m in memory["messages"]] == ["kept"] and memory["context"] == "ctx"


# -- session ids and tenant names --------------------------------------------------------------------------------------

HOSTILE_IDS = {
    # how it is written in the URL -> the id it names (decoded once)
    "..": "..",
    "%2e%2e": "..",
    ".": ".",
    "%2F": "/",
    "a%2F..%2F..%2Fb": "a/../../b",
    "%7Bs%7D": "{s}",
    "%7D%7B": "}{",
    "a%3Ab%3A%7Bc%7D": "a:b:{c}",
    "*": "*",
    "%2A%3F%5B": "*?[",
    "%25": "%",
    "100%2525": "100%25",
    "%C3%A9": "\u00e9",  # é, NFC
    "e%CC%81": "e\u0301",  # é, NFD: another id
    "%E2%80%AEtxt": "\u202etxt",
    "%00": "\x00",
    "%20": " ",
    "x" * 256: "x" * 256,
}


def test_session_ids_given_hostile_forms_name_sessions_inside_the_callers_tenant_only(
    keyed: SecureApi, raw: redis.Redis
) -> None:
    # Given two tenants, and ids that break naive key building, paths, globs or hash tags
    alice_tenant, bob_tenant = fresh("alice"), fresh("bob")
    alice, bob = keyed.key(alice_tenant), keyed.key(bob_tenant)
    # When Alice writes to each (the URL form), then reads it back
    for written, session_id in HOSTILE_IDS.items():
        path = f"/sessions/{written}/memory"
        assert send(keyed.base_url, "POST", path, bearer(alice), say(f"alice:{session_id!r}")).status == 200, written
    for written, session_id in HOSTILE_IDS.items():
        memory = send(keyed.base_url, "GET", f"/motorhead/sessions/{written}/memory", bearer(alice)).json()
        # Then each URL form names the id decoded once: ".." and "%2e%2e" are one session, NFC and NFD two
        assert [m["content"] for m in memory["messages"]] == [f"alice:{session_id!r}"] * (
            2 if written in ("..", "%2e%2e") else 1
        ), written
    assert unicodedata.normalize("NFC", "e\u0301") == "\u00e9"  # (the two forms really are one text, normalized)
    listed = send(keyed.base_url, "GET", "/sessions?size=100", bearer(alice)).json()
    assert sorted(listed) == sorted(set(HOSTILE_IDS.values()))
    # And every key written lives in Alice's space, behind a hex digest: no id reached a key name or a hash tag
    written_keys = [name for name in raw.scan_iter(count=1000) if not name.startswith(b"mh:apikey")]
    assert written_keys and all(name.startswith(space(alice_tenant)) for name in written_keys), written_keys
    assert all(re.fullmatch(rb"[0-9a-f]{48}", tag) for name in written_keys for tag in HASH_TAG.findall(name))
    # And Bob, on the very same URLs, sees and lists nothing
    before = snapshot(raw)
    for written in HOSTILE_IDS:
        answer = send(keyed.base_url, "GET", f"/sessions/{written}/memory", bearer(bob))
        assert answer.status == 200 and answer.json() == EMPTY, (written, answer)
        assert send(keyed.base_url, "DELETE", f"/sessions/{written}/memory", bearer(bob)).status == 200
    assert send(keyed.base_url, "GET", "/sessions", bearer(bob)).json() == []
    assert {name for name in changed(before, snapshot(raw)) if not name.startswith(space(bob_tenant))} == set()


def test_session_ids_given_no_credential_answer_401_before_any_check_of_the_id(keyed: SecureApi) -> None:
    # Given ids a validator would refuse (too long), and ids that would be fine
    tenant = fresh("acme")
    key = keyed.key(tenant)
    too_long = quote("é" * 129, safe="")  # 258 bytes
    # When they are sent without a credential / Then 401 first: no 400 tells an anonymous caller anything
    for written in (too_long, "ok", "%7B%7D", "x" * 300):
        refused(send(keyed.base_url, "GET", f"/sessions/{written}/memory"), 401)
    # And with a credential, an id over 256 bytes is a 400 that quotes only sizes
    answer = send(keyed.base_url, "POST", f"/sessions/{too_long}/memory", bearer(key), say("x"))
    refused(answer, 400, {"error": "session id is 258 bytes; the limit is 256"})


def test_tenant_names_given_hostile_ones_are_refused_by_the_admin_and_never_reach_a_key_name(
    keyed: SecureApi, raw: redis.Redis
) -> None:
    before = snapshot(raw)
    # Given tenant names that would inject into keys, hash tags, globs, logs or the tenant-less space
    hostile = ["", " ", "a:b", "{acme}", "acme}", "*", "acme\n", "a b", "é", "-lead", ".lead", "x" * 65, "a/..", "t:"]
    for tenant in hostile:
        # When the admin is asked for a key of each / Then refused, and nothing written
        answer = keyed.api.admin({"action": "create", "tenant": tenant})
        assert answer == {
            "ok": False,
            "error": "a tenant is 1 to 64 characters from A-Z a-z 0-9 . _ - (starting with a letter or digit)",
        }, tenant
    assert not changed(before, snapshot(raw))
    # And an acceptable but unusual name works, and appears in no key name: only its digest does
    tenant = "Acme.Corp_" + uuid.uuid4().hex[:8] + "-x"
    key = keyed.key(tenant)
    assert send(keyed.base_url, "POST", "/sessions/s/memory", bearer(key), say("hi")).status == 200
    names = list(raw.scan_iter(count=1000))
    assert not [name for name in names if tenant.encode() in name or tenant.lower().encode() in name.lower()]
    assert any(name.startswith(space(tenant)) for name in names)
    # And the same name in another case is another tenant, seeing nothing of the first
    other = keyed.key(tenant.upper())
    assert send(keyed.base_url, "GET", "/sessions/s/memory", bearer(other)).json() == EMPTY


# -- the admin function ------------------------------------------------------------------------------------------------


def test_admin_given_injection_or_escalation_attempts_refuses_them_and_changes_nothing(
    keyed: SecureApi, raw: redis.Redis
) -> None:
    # Given a key
    tenant = fresh("acme")
    key = keyed.key(tenant, scopes="read")
    key_id = key.split("_")[1]
    before = snapshot(raw)
    attempts: list[dict[str, Any]] = [
        {"action": "revoke", "key_id": "*"},
        {"action": "revoke", "key_id": key_id + "\n"},
        {"action": "revoke", "key_id": key_id.upper()},
        {"action": "revoke", "key_id": f"{key_id}:x"},
        {"action": "revoke", "key_id": "../apikeys"},
        {"action": "create", "tenant": tenant, "scopes": ["admin"]},
        {"action": "create", "tenant": tenant, "scopes": []},
        {"action": "create", "tenant": tenant, "scopes": ["read", "*"]},
        {"action": "create", "tenant": tenant, "key_id": key_id},  # choose its own id...
        {"action": "create", "tenant": tenant, "hash": "0" * 64},  # ...or its own hash
        {"action": "create", "tenant": tenant, "label": "x" * 129},
        {"action": "adopt", "tenant": ""},
        {"action": "adopt", "tenant": tenant, "dry_run": "no"},
        {"action": "grant", "key_id": key_id, "scopes": ["write"]},
        {"action": ["revoke"], "key_id": key_id},
    ]
    # When each is invoked / Then it answers ok: false with one line, never raises, and writes nothing
    for event in attempts:
        answer = keyed.api.admin(event)
        assert answer["ok"] is False and isinstance(answer["error"], str) and answer["error"], event
        assert "\n" not in answer["error"] and key not in answer["error"], answer
    assert not changed(before, snapshot(raw))
    # And listing shows ids, tenants and scopes, never a key or a hash
    listing = keyed.api.admin({"action": "list", "tenant": tenant})
    secret_hash = hashlib.sha256(key.split("_", 2)[2].encode()).hexdigest()
    assert listing["ok"] and [k["key_id"] for k in listing["keys"]] == [key_id]
    assert key not in json.dumps(listing) and secret_hash not in json.dumps(listing)
    # And a glob as a tenant filter lists nothing
    assert keyed.api.admin({"action": "list", "tenant": "*"}) == {"ok": True, "keys": []}


def test_admin_function_given_the_template_has_no_http_route_to_it(keyed: SecureApi) -> None:
    # Given the template's routes / Then none reaches the admin function, and the local gateway has no such path
    assert "AdminFunction" not in {route.function_id for route in load_routes()}
    for method, path in [("POST", "/admin"), ("POST", "/keys"), ("GET", "/keys"), ("POST", "/motorhead/keys/current")]:
        answer = send(keyed.base_url, method, path, {}, {"action": "create", "tenant": "evil"})
        assert answer.status in (404, 405), (method, path, answer)
    assert keyed.api.admin({"action": "list", "tenant": "evil"}) == {"ok": True, "keys": []}


# -- revocation with the key cache on ----------------------------------------------------------------------------------


def test_key_cache_given_a_revoked_key_stops_on_every_route_within_the_cache_period(
    redis_server: EmbeddedRedis, raw: redis.Redis
) -> None:
    # Given functions that remember a verified key for 1 s, and a key they have all just verified
    with deployed(redis_server, MOTORHEAD_AUTH="api-key", MOTORHEAD_API_KEY_CACHE_SECONDS="1") as secure:
        key = secure.key(fresh("acme"))
        routes = [
            ("GET", "/sessions/s/memory", None),
            ("POST", "/sessions/s/memory", say("x")),
            ("GET", "/sessions", None),
            ("DELETE", "/sessions/s/memory", None),
            ("GET", "/keys/current", None),
        ]
        for method, path, body in routes:
            assert send(secure.base_url, method, path, bearer(key), body).status == 200
        # When the admin function (another process, with its own cache) revokes it
        secure.revoke(key)
        revoked_at = time.monotonic()
        time.sleep(1.1)
        # Then once the cache period is over, every route under both prefixes refuses it
        for prefix in PREFIXES:
            for method, path, body in routes:
                refused(send(secure.base_url, method, prefix + path, bearer(key), body), 401, INVALID_KEY)
        assert time.monotonic() - revoked_at < 60
    # And no deployment may cache a key for longer than 60 s: it refuses to start
    too_long = {"MOTORHEAD_AUTH": "api-key", "MOTORHEAD_API_KEY_CACHE_SECONDS": "61"}
    with (
        pytest.raises(ConfigError, match="MOTORHEAD_API_KEY_CACHE_SECONDS"),
        cold_start(REDIS_URL=redis_server.url, **too_long),
    ):
        pass


# -- rate limit ------------------------------------------------------------------------------------------------------


def test_rate_limit_given_a_tenant_over_its_bucket_cannot_escape_it_with_other_keys_or_prefixes(
    redis_server: EmbeddedRedis, raw: redis.Redis
) -> None:
    with deployed(
        redis_server, MOTORHEAD_AUTH="api-key", MOTORHEAD_RATE_LIMIT_RPS="0.1", MOTORHEAD_RATE_LIMIT_BURST="3"
    ) as limited:
        # Given a tenant with two keys, a calm tenant, and a read-only key of a third tenant
        busy_tenant, calm_tenant, quiet_tenant = fresh("busy"), fresh("calm"), fresh("quiet")
        busy = [limited.key(busy_tenant), limited.key(busy_tenant)]
        calm, quiet = limited.key(calm_tenant), limited.key(quiet_tenant, scopes="read")
        # When the busy tenant spreads requests over both keys, both prefixes and several routes
        statuses = [
            send(limited.base_url, "GET", f"{PREFIXES[i % 2]}{path}", bearer(busy[i % 2])).status
            for i, path in enumerate(["/sessions/a/memory", "/sessions", "/keys/current", "/sessions/b/memory"] * 2)
        ]
        # Then they all take from one bucket: the burst passes, the rest is 429 with Retry-After
        assert statuses == [200, 200, 200] + [429] * 5
        over = send(limited.base_url, "GET", "/motorhead/keys/current", bearer(busy[1]))
        refused(over, 429, {"error": "too many requests for this tenant; retry later"})
        assert int(over.headers["retry-after"]) >= 1
        # And another tenant is not slowed down
        assert [send(limited.base_url, "GET", "/keys/current", bearer(calm)).status for _ in range(3)] == [200] * 3
        # And refused requests take no token: 403s of the read-only key and 401s of unknown keys
        for _ in range(5):
            refused(send(limited.base_url, "GET", "/sessions", bearer(quiet)), 403)
            refused(send(limited.base_url, "GET", "/keys/current", bearer(f"mhk_{'1' * 16}_{'z' * 43}")), 401)
        assert [send(limited.base_url, "GET", "/keys/current", bearer(quiet)).status for _ in range(3)] == [200] * 3
        # And the buckets are the admitted tenants' own keys, named by digest, never by the tenant's name
        buckets = sorted(raw.scan_iter(match=b"*:rate"))
        assert buckets == sorted(space(t) + b"rate" for t in (busy_tenant, calm_tenant, quiet_tenant))


def test_rate_limit_given_requests_stamped_out_of_order_never_credits_an_interval_twice(
    redis_server: EmbeddedRedis, raw: redis.Redis
) -> None:
    # Given a bucket of 1 request per second, burst 1, and instances whose clocks read differently
    clock = {"now": 10_000}
    connector = RedisConnector(Settings(REDIS_URL=redis_server.url))
    limiter = RedisRateLimiter(connector, Keys(), rate=1, burst=1, now_ms=lambda: clock["now"])
    assert limiter.acquire("acme") == 0  # the bucket is empty now
    # When a request stamped 1 s earlier arrives (taken before a concurrent one, or on a lagging instance)
    clock["now"] = 9_000
    assert limiter.acquire("acme") > 0
    # Then the bucket's time does not go back: at 10 000 ms again, nothing was refilled
    clock["now"] = 10_000
    assert limiter.acquire("acme") == pytest.approx(1.0)
    clock["now"] = 11_000
    assert limiter.acquire("acme") == 0
    connector.close()


def test_rate_limit_given_concurrent_instances_with_skewed_clocks_admits_no_more_than_the_rate(
    redis_server: EmbeddedRedis, raw: redis.Redis
) -> None:
    # Given two instances whose clocks are 20 ms apart, at 5 requests per second with a burst of 1
    def clock(skew: int) -> Callable[[], int]:
        return lambda: now_ms() - skew

    connectors = [RedisConnector(Settings(REDIS_URL=redis_server.url)) for _ in range(2)]
    limiters = [
        RedisRateLimiter(connector, Keys(), rate=5, burst=1, now_ms=clock(skew))
        for connector, skew in zip(connectors, (0, 20), strict=True)
    ]
    admitted, lock = [0], threading.Lock()
    started = time.monotonic()
    deadline = started + 1.0

    def hammer(worker: int) -> None:
        while time.monotonic() < deadline:
            if limiters[worker % 2].acquire("acme") == 0:
                with lock:
                    admitted[0] += 1

    # When one tenant hammers both at once for a second
    workers = [threading.Thread(target=hammer, args=(n,)) for n in range(12)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for connector in connectors:
        connector.close()
    # Then no more than the burst plus the rate over that time got in (the bucket's time never went back)
    elapsed = time.monotonic() - started
    assert 1 <= admitted[0] <= 1 + 5 * elapsed + 1, (admitted[0], elapsed)


# -- JWT ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def idp_keys() -> dict[str, SigningKey]:
    return {"rsa": rsa_key("rsa-1"), "ec": ec_key("ec-1"), "attacker": rsa_key("attacker-1")}


@pytest.fixture
def jwt_api(
    idp_keys: dict[str, SigningKey], redis_server: EmbeddedRedis, raw: redis.Redis
) -> Iterator[tuple[SecureApi, JwksServer, JwksServer]]:
    """JWT deployment: the IdP publishes its RSA and EC keys; an attacker serves a JWKS of its own elsewhere."""
    with (
        JwksServer(idp_keys["rsa"], idp_keys["ec"]) as jwks,
        JwksServer(idp_keys["attacker"]) as attacker_jwks,
        deployed(
            redis_server,
            MOTORHEAD_AUTH="jwt",
            MOTORHEAD_JWT_ISSUER=ISSUER,
            MOTORHEAD_JWT_AUDIENCE=AUDIENCE,
            MOTORHEAD_JWT_JWKS_URL=jwks.url,
        ) as running,
    ):
        yield running, jwks, attacker_jwks


def claims(**overrides: Any) -> dict[str, Any]:
    """A good token's claims for tenant acme with every scope, with ``overrides`` (``...``: leave the claim out)."""
    values = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "exp": in_seconds(300),
        "tenant": "acme",
        "scope": "motorhead:read motorhead:write motorhead:delete motorhead:list",
        **overrides,
    }
    return {name: value for name, value in values.items() if value is not ...}


def test_jwt_given_forged_confused_or_stale_tokens_answers_401_and_writes_nothing(
    jwt_api: tuple[SecureApi, JwksServer, JwksServer], idp_keys: dict[str, SigningKey], raw: redis.Redis
) -> None:
    secure, jwks, attacker_jwks = jwt_api
    rsa, ec, attacker = idp_keys["rsa"], idp_keys["ec"], idp_keys["attacker"]
    # Given the victim tenant's session, written with a good token
    good = mint(claims(), key=rsa)
    assert send(secure.base_url, "POST", "/sessions/s/memory", bearer(good), say("acme's")).status == 200
    before = snapshot(raw)
    forgeries: dict[str, tuple[str, str]] = {
        "alg-none": (unsigned_token(claims(), kid="rsa-1"), "token algorithm not allowed"),
        "alg-none-capitalized": (
            f"{b64url(json.dumps({'alg': 'None', 'kid': 'rsa-1'}).encode())}.{b64url(json.dumps(claims()).encode())}.",
            "token algorithm not allowed",
        ),
        "hs256-with-rsa-public-key": (hmac_with_public_key(claims(), key=rsa), "token algorithm not allowed"),
        "hs256-with-ec-public-key": (hmac_with_public_key(claims(), key=ec), "token algorithm not allowed"),
        "rs256-header-on-the-ec-kid": (mint(claims(), key=attacker, kid="ec-1"), "token algorithm not allowed"),
        "es256-header-on-the-rsa-kid": (mint(claims(), key=ec, kid="rsa-1"), "token algorithm not allowed"),
        "rs384": (mint(claims(), key=rsa, alg="RS384"), "token algorithm not allowed"),
        "attacker-key-known-kid": (mint(claims(), key=attacker, kid="rsa-1"), "token signature invalid"),
        "attacker-key-unknown-kid": (mint(claims(), key=attacker), "token signed with an unknown key"),
        "kid-path": (mint(claims(), key=attacker, kid="../rsa-1"), "token signed with an unknown key"),
        "kid-padded": (mint(claims(), key=rsa, kid="rsa-1 "), "token signed with an unknown key"),
        "embedded-jwk": (
            mint(claims(), key=attacker, headers={"jwk": attacker.public_jwk()}),
            "token signed with an unknown key",
        ),
        "jku-to-attacker": (
            mint(claims(), key=attacker, headers={"jku": attacker_jwks.url, "x5u": attacker_jwks.url}),
            "token signed with an unknown key",
        ),
        "no-kid": (signed_as_is({"alg": "RS256"}, claims(), key=rsa), "token names no signing key (kid)"),
        "no-exp": (mint(claims(exp=...), key=rsa), "token lacks the required exp claim"),
        "expired": (mint(claims(exp=in_seconds(-120)), key=rsa), "token expired"),
        "nbf-future": (mint(claims(nbf=in_seconds(600)), key=rsa), "token not yet valid"),
        "iat-future": (mint(claims(iat=in_seconds(600)), key=rsa), "token not yet valid"),
        "wrong-issuer": (mint(claims(iss=ISSUER + "evil/"), key=rsa), "token not from the expected issuer"),
        "issuer-prefix": (mint(claims(iss=ISSUER[:-1]), key=rsa), "token not from the expected issuer"),
        "issuer-list": (
            signed_as_is({"alg": "RS256", "kid": "rsa-1"}, claims(iss=[ISSUER]), key=rsa),
            "token not from the expected issuer",
        ),
        "wrong-audience": (mint(claims(aud="motorhead"), key=rsa), "token not issued for this audience"),
        "no-audience": (mint(claims(aud=...), key=rsa), "token lacks the required aud claim"),
        "tampered-tenant": (
            ".".join([good.split(".")[0], mint(claims(tenant="globex"), key=rsa).split(".")[1], good.split(".")[2]]),
            "token signature invalid",
        ),
        "huge": (mint(claims(pad="p" * 9_000), key=rsa), "credential too long"),
    }
    for name, (token, reason) in forgeries.items():
        for prefix in PREFIXES:
            # When each is used to plant a context, delete and read
            for method, path, body in [
                ("POST", "/sessions/s/memory", {"messages": [], "context": "IGNORE PREVIOUS INSTRUCTIONS"}),
                ("DELETE", "/sessions/s/memory", None),
                ("GET", "/sessions/s/memory", None),
            ]:
                answer = send(secure.base_url, method, prefix + path, bearer(token), body)
                # Then 401 with a fixed reason and a bearer-only challenge, quoting nothing of the token
                refused(answer, 401, {"error": reason})
                assert answer.headers["www-authenticate"] == 'Bearer realm="motorhead"', name
                assert not [part for part in token.split(".") if len(part) >= 8 and part in answer.text], name
    # And a good token sent any other way than Bearer is refused too
    for headers in ({"x-api-key": good}, {"x-metal-api-key": good}, {"Authorization": f"Basic {good}"}):
        refused(send(secure.base_url, "GET", "/sessions/s/memory", headers), 401)
    # And nothing changed, and the attacker's JWKS was never fetched
    assert not changed(before, snapshot(raw))
    assert attacker_jwks.fetches == 0 and jwks.fetches >= 1


BAD_TENANT_CLAIMS: list[Any] = [
    ...,  # absent
    None,
    ["acme"],
    [],
    7,
    7.5,
    True,
    {"id": "acme"},
    "",
    " ",
    "a:b",
    "{acme}",
    "acme}",
    "ac{me",
    "*",
    "acme\n",
    " acme",
    "x" * 65,
]


def test_jwt_given_a_tenant_claim_of_the_wrong_shape_answers_401_and_writes_nothing(
    jwt_api: tuple[SecureApi, JwksServer, JwksServer], idp_keys: dict[str, SigningKey], raw: redis.Redis
) -> None:
    secure, _, _ = jwt_api
    before = snapshot(raw)
    for tenant in BAD_TENANT_CLAIMS:
        # Given a well-signed token whose tenant claim is no tenant name
        token = mint(claims(tenant=tenant), key=idp_keys["ec"])
        for prefix in PREFIXES:
            # When it writes, lists or asks who it is / Then 401: it fails closed, never the tenant-less caller
            for method, path, body in [
                ("POST", "/sessions/s/memory", say("x")),
                ("GET", "/sessions", None),
                ("GET", "/keys/current", None),
            ]:
                answer = send(secure.base_url, method, prefix + path, bearer(token), body)
                refused(answer, 401, NO_TENANT_BODY)
    # And nothing was written anywhere
    assert not changed(before, snapshot(raw))


def test_jwt_given_scopes_another_way_than_the_configured_claim_and_prefix_grants_nothing(
    jwt_api: tuple[SecureApi, JwksServer, JwksServer], idp_keys: dict[str, SigningKey], raw: redis.Redis
) -> None:
    secure, _, _ = jwt_api
    before = snapshot(raw)
    # Given tokens whose scopes are unprefixed, in another case, in another claim, or of the wrong type
    tokens = {
        "unprefixed": claims(scope="read write delete list"),
        "upper-case": claims(scope="MOTORHEAD:WRITE Motorhead:delete motorhead:LIST"),
        "admin": claims(scope="motorhead:admin motorhead:* motorhead:"),
        "other-claim": claims(scope=..., scp=["motorhead:write", "motorhead:list"]),
        "prefix-glued": claims(scope="motorhead:read,motorhead:write openid:motorhead:list"),
        "wrong-type": claims(scope={"motorhead:write": True}),
    }
    for name, values in tokens.items():
        token = mint(values, key=idp_keys["rsa"])
        # When they try to write, delete or list / Then 403 (authenticated, but allowed nothing)
        for method, path, body, scope in [
            ("POST", "/motorhead/sessions/s/memory", say("x"), "write"),
            ("DELETE", "/sessions/s/memory", None, "delete"),
            ("GET", "/motorhead/sessions", None, "list"),
        ]:
            answer = send(secure.base_url, method, path, bearer(token), body)
            refused(answer, 403, {"error": f"this credential does not allow '{scope}'"})
        who = send(secure.base_url, "GET", "/keys/current", bearer(token)).json()
        assert who == {"auth": "jwt", "tenant": "acme", "key_id": None, "scopes": []}, (name, who)
    assert not changed(before, snapshot(raw))


# -- what answers and logs give away -----------------------------------------------------------------------------------


def test_answers_and_logs_given_jwt_attacks_never_carry_a_token_or_the_victims_tenant(
    jwt_api: tuple[SecureApi, JwksServer, JwksServer],
    idp_keys: dict[str, SigningKey],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secure, _, _ = jwt_api
    victim_tenant = fresh("victim-corp")
    caplog.set_level(logging.DEBUG)
    capsys.readouterr()
    # Given the victim's token, and tokens an attacker derives from it or forges in the victim's name
    victim = mint(claims(tenant=victim_tenant), key=idp_keys["rsa"])
    header, payload, signature = victim.split(".")
    derived = {
        "tampered-signature": f"{header}.{payload}.{signature[:-2]}AA",
        "forged-in-the-victims-name": mint(claims(tenant=victim_tenant), key=idp_keys["attacker"], kid="rsa-1"),
        "expired": mint(claims(tenant=victim_tenant, exp=in_seconds(-600)), key=idp_keys["rsa"]),
        "read-only": mint(claims(tenant=victim_tenant, scope="motorhead:read"), key=idp_keys["rsa"]),
        "bad-tenant-claim": mint(claims(tenant=victim_tenant + ":x"), key=idp_keys["rsa"]),
    }
    answers = [send(secure.base_url, "POST", "/sessions/s/memory", bearer(t), say("x")).text for t in derived.values()]
    answers.append(send(secure.base_url, "GET", "/sessions/s/memory", bearer(victim)).text)
    # Then no answer and no log line holds a token, a token's signature or payload, or the victim's tenant name
    logged = caplog.text + capsys.readouterr().out
    for token in [victim, *derived.values()]:
        for text in [*answers, logged]:
            assert token not in text
            assert token.split(".")[1] not in text and token.split(".")[2] not in text
    assert victim_tenant not in "".join(answers) and victim_tenant not in logged


def test_answers_and_logs_given_refusals_of_api_keys_never_carry_a_key_its_hash_or_a_tenant(
    redis_server: EmbeddedRedis,
    raw: redis.Redis,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with deployed(
        redis_server, MOTORHEAD_AUTH="api-key", MOTORHEAD_RATE_LIMIT_RPS="0.1", MOTORHEAD_RATE_LIMIT_BURST="1"
    ) as secure:
        # Given a victim's full key and an attacker's read-only key
        victim_tenant, attacker_tenant = fresh("victim-corp"), fresh("attacker-llc")
        victim, attacker = secure.key(victim_tenant), secure.key(attacker_tenant, scopes="read")
        hashes = [hashlib.sha256(k.split("_", 2)[2].encode()).hexdigest() for k in (victim, attacker)]
        caplog.set_level(logging.DEBUG)
        capsys.readouterr()
        # When the attacker causes every kind of refusal: 401 (victim's id, another secret), 403, 429, 400
        answers = [
            send(secure.base_url, "GET", "/sessions/s/memory", bearer(with_wrong_secret(victim, 3))),
            send(secure.base_url, "POST", "/sessions/s/memory", bearer(attacker), say("x")),
            send(secure.base_url, "GET", "/keys/current", bearer(attacker)),
            send(secure.base_url, "GET", "/keys/current", bearer(attacker)),
            send(secure.base_url, "GET", "/sessions/" + "x" * 300 + "/memory", bearer(victim)),
        ]
        # Then each answered as it should
        assert [a.status for a in answers] == [401, 403, 200, 429, 400]
        # And no answer and no log line holds a key, a hash or a tenant name (the caller's own /keys/current aside)
        logged = caplog.text + capsys.readouterr().out
        for text in [a.text for a in answers if a.status != 200] + [logged]:
            for secret in [victim, attacker, victim.split("_", 2)[2], attacker.split("_", 2)[2], *hashes]:
                assert secret not in text
            assert victim_tenant not in text and attacker_tenant not in text
