"""`make key`, `make keys`, `make revoke-key` as users run them: `python -m devserver.keys` in its own process, against
REDIS_URL, against the Redis of a running `make run`, or against the data folder with no server running.

What matters to a user: the new key is alone on the last line (scripts take it with `tail -1`), it works at once, a
listing never shows a key or its hash, a revoked key stops working, and bad input fails with one clear line and
writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from devserver.embedded_redis import EmbeddedRedis, free_port
from devserver.keys import URL_FILE, admin_redis
from motorhead.composition.access import api_keys
from motorhead.core.auth import ALL_SCOPES, Caller, Credential
from motorhead.errors import AuthenticationError
from motorhead.settings import get_settings
from tests.make_run import make_run, user_environment
from tests.support import REPO, cold_start, environment, get_event

KEY_LINE = re.compile(r"^mhk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$")


def keys_command(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m devserver.keys ARGS`` as the Makefile runs it (its PYTHONPATH), with only ``env`` of ours set."""
    return subprocess.run(
        [sys.executable, "-m", "devserver.keys", *args],
        cwd=REPO,
        env=user_environment(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def created_key(result: subprocess.CompletedProcess[str]) -> str:
    """The key a ``create`` printed: its last line, alone."""
    assert result.returncode == 0, result.stderr
    last = result.stdout.splitlines()[-1]
    assert KEY_LINE.fullmatch(last), result.stdout
    return last


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    """What a command printed last (the admin function's JSON logs come before it, on stdout as on Lambda)."""
    lines = result.stdout.splitlines()
    return lines[-1] if lines else ""


def authenticate(redis_url: str, key: str) -> Caller:
    """Check ``key`` as a function would, with no cache (a revocation is seen at once)."""
    with environment(REDIS_URL=redis_url, MOTORHEAD_AUTH="api-key", MOTORHEAD_API_KEY_CACHE_SECONDS="0"):
        return api_keys(get_settings()).authenticate(Credential(kind="bearer", secret=key))


def secret_hash(key: str) -> str:
    return hashlib.sha256(key.split("_", 2)[2].encode()).hexdigest()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis, redis_client: redis.Redis) -> str:
    """The URL of the (emptied) test server."""
    return redis_server.url


# --- against REDIS_URL ----------------------------------------------------------------------------------------------


def test_create_given_a_tenant_prints_the_key_alone_on_the_last_line_and_it_works(redis_url: str) -> None:
    # Given a Redis / When `make key TENANT=acme` runs
    result = keys_command("create", "--tenant", "acme", REDIS_URL=redis_url)
    # Then the key is alone on the last line, and it authenticates as the tenant with every scope
    key = created_key(result)
    caller = authenticate(redis_url, key)
    assert (caller.tenant, caller.scopes, caller.key_id) == ("acme", ALL_SCOPES, key.split("_")[1])
    # And the hash of its secret is printed nowhere
    assert secret_hash(key) not in result.stdout + result.stderr


def test_create_given_a_key_the_functions_accept_it_and_refuse_requests_without_it(redis_url: str) -> None:
    # Given a key made by the command
    key = created_key(keys_command("create", "--tenant", "acme", "--scopes", "read", REDIS_URL=redis_url))
    with cold_start(REDIS_URL=redis_url, MOTORHEAD_AUTH="api-key") as api:
        # When the GET memory function is called with it, and without it
        event = get_event("s")
        without = api.invoke("GetMemoryFunction", get_event("s"))
        event["headers"]["authorization"] = f"Bearer {key}"
        with_key = api.invoke("GetMemoryFunction", event)
    # Then the key gets in, and no key gets a 401
    assert (with_key["statusCode"], without["statusCode"]) == (200, 401)


def test_list_given_keys_shows_ids_tenants_and_scopes_never_a_key_or_its_hash(redis_url: str) -> None:
    # Given no key yet / Then the listing says so
    empty = keys_command("list", REDIS_URL=redis_url)
    assert (empty.returncode, last_line(empty)) == (0, "no keys")
    # Given two keys of two tenants
    acme = created_key(keys_command("create", "--tenant", "acme", "--label", "chat backend", REDIS_URL=redis_url))
    other = created_key(keys_command("create", "--tenant", "other", "--scopes", "read,list", REDIS_URL=redis_url))
    # When `make keys` runs, then `make keys TENANT=acme`
    everything = keys_command("list", REDIS_URL=redis_url)
    only_acme = keys_command("list", "--tenant", "acme", REDIS_URL=redis_url)
    # Then the listing shows each key's id, tenant, scopes and label
    assert everything.returncode == 0 and only_acme.returncode == 0
    listed = {entry["key_id"]: entry for entry in json.loads(everything.stdout)}
    assert {key_id: (e["tenant"], e["scopes"]) for key_id, e in listed.items()} == {
        acme.split("_")[1]: ("acme", ["delete", "list", "read", "write"]),
        other.split("_")[1]: ("other", ["list", "read"]),
    }
    assert listed[acme.split("_")[1]]["label"] == "chat backend"
    # And the filter keeps the tenant's keys only
    assert [e["key_id"] for e in json.loads(only_acme.stdout)] == [acme.split("_")[1]]
    # And neither a key, nor its secret, nor the hash of its secret appears anywhere in the output
    output = everything.stdout + everything.stderr + only_acme.stdout + only_acme.stderr
    for key in (acme, other):
        assert key not in output and key.split("_", 2)[2] not in output and secret_hash(key) not in output


def test_revoke_given_a_key_id_the_key_stops_working_and_a_second_revoke_says_no_key(redis_url: str) -> None:
    # Given a key that works, and another one
    key = created_key(keys_command("create", "--tenant", "acme", REDIS_URL=redis_url))
    kept = created_key(keys_command("create", "--tenant", "acme", REDIS_URL=redis_url))
    key_id = key.split("_")[1]
    assert authenticate(redis_url, key).tenant == "acme"
    # When `make revoke-key KEY_ID=...` runs
    first = keys_command("revoke", "--key-id", key_id, REDIS_URL=redis_url)
    # Then it says so, and the key is refused (by a process without a cache) while the other still works
    assert (first.returncode, last_line(first)) == (0, f"revoked {key_id}")
    with pytest.raises(AuthenticationError):
        authenticate(redis_url, key)
    assert authenticate(redis_url, kept).tenant == "acme"
    # And revoking it again says there is no such key
    again = keys_command("revoke", "--key-id", key_id, REDIS_URL=redis_url)
    assert (again.returncode, last_line(again)) == (0, f"no key {key_id}")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "--tenant", "a/b"], "motorhead: a tenant is 1 to 64 characters"),
        (["create", "--tenant", "acme", "--scopes", "read,admin"], "motorhead: scopes are among delete, list, read"),
        (["revoke", "--key-id", "not-an-id"], "motorhead: revoke.key_id: String should match pattern '^[0-9a-f]{16}$'"),
    ],
)
def test_command_given_bad_input_exits_non_zero_with_one_line_and_writes_nothing(
    redis_url: str, redis_client: redis.Redis, args: list[str], message: str
) -> None:
    # Given an empty Redis / When a command gets bad input
    result = keys_command(*args, REDIS_URL=redis_url)
    # Then it fails with one clear line on stderr, prints nothing else, and wrote nothing
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith(message), result.stderr
    assert result.stdout == ""
    assert redis_client.dbsize() == 0


# --- without REDIS_URL: the embedded Redis of `make run` ------------------------------------------------------------


def test_create_given_no_redis_url_and_no_server_uses_the_data_folder_and_the_key_persists(tmp_path: Path) -> None:
    # Given no REDIS_URL and no `make run` running / When a key is created
    key = created_key(keys_command("create", "--tenant", "acme", MOTORHEAD_DATA_DIR=str(tmp_path)))
    # Then it went to an embedded Redis on the data folder, stopped since (no URL of a running server left behind)
    marker = tmp_path / "redis" / "running-server.url"
    assert (tmp_path / "redis").is_dir() and not marker.exists()
    # And `make run` started later on that folder (MOTORHEAD_AUTH unset) has it: the append-only file was flushed
    with make_run(tmp_path, free_port()) as server:
        assert server.stdout is not None
        first = server.stdout.readline()
        assert authenticate(marker.read_text().strip(), key).tenant == "acme"
    # And `make run`'s first line warns that it runs without authentication
    assert first.startswith("motorhead: MOTORHEAD_AUTH=none: no authentication"), first


def test_create_given_make_run_is_running_talks_to_its_redis_and_the_key_works_at_once(tmp_path: Path) -> None:
    # Given `make run` with MOTORHEAD_AUTH=api-key on a data folder
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with make_run(tmp_path, port, MOTORHEAD_AUTH="api-key") as server:
        # Then its first line says which authentication it runs with
        assert server.stdout is not None
        assert server.stdout.readline().startswith("motorhead: MOTORHEAD_AUTH=api-key: every request needs an API key")
        assert requests.get(base + "/sessions/s/memory", timeout=5).status_code == 401
        # When a key is created with no REDIS_URL, for the same data folder
        key = created_key(keys_command("create", "--tenant", "acme", MOTORHEAD_DATA_DIR=str(tmp_path)))
        # Then the running server accepts it at once (the command used its Redis, not a second one on the folder)
        headers = {"Authorization": "Bearer " + key}
        assert requests.get(base + "/sessions/s/memory", headers=headers, timeout=5).status_code == 200
        assert requests.get(base + "/sessions/s/memory", timeout=5).status_code == 401
        listed = keys_command("list", MOTORHEAD_DATA_DIR=str(tmp_path))
        assert [e["key_id"] for e in json.loads(listed.stdout)] == [key.split("_")[1]]


def test_admin_redis_given_a_running_server_a_redis_error_of_the_command_reaches_it_and_starts_no_second_redis(
    tmp_path: Path, redis_server: EmbeddedRedis
) -> None:
    # Given the marker a running `make run` leaves, naming a Redis that answers
    (tmp_path / URL_FILE).write_text(redis_server.url, encoding="utf-8")
    # When the command run against it fails with a Redis error
    with pytest.raises(redis.ResponseError, match="from the command"), admin_redis(tmp_path) as url:
        assert url == redis_server.url
        raise redis.ResponseError("from the command")
    # Then the error is the command's own (not taken for "no server": no second Redis was started on the folder)
    assert not (tmp_path / "appendonlydir").exists() and sorted(p.name for p in tmp_path.iterdir()) == [URL_FILE]


# --- the admin handler itself ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"action": "rotate"},
        {"action": "create"},
        {"action": "create", "tenant": "acme", "owner": "me"},
        {"action": "create", "tenant": "acme", "scopes": "read"},
        {"action": "create", "tenant": "a/b"},
        {"action": "list", "tenant": 5},
        {"action": "revoke"},
        {"action": "revoke", "key_id": "0123456789ABCDEF"},
        {"action": "revoke", "key_id": "mhk_0123456789abcdef_" + "x" * 43},
        {"action": "adopt", "tenant": "acme", "dry_run": "yes"},
        [],
        "create",
        None,
    ],
)
def test_admin_handler_given_a_malformed_event_answers_an_error_never_raises(
    redis_url: str, redis_client: redis.Redis, event: Any
) -> None:
    # Given the admin function / When it gets a malformed command
    with cold_start(REDIS_URL=redis_url) as api:
        answer = api.admin(event)
    # Then it answers ok: false with a reason, and wrote nothing
    assert answer["ok"] is False and isinstance(answer["error"], str) and answer["error"], answer
    assert set(answer) == {"ok", "error"}
    assert redis_client.dbsize() == 0
