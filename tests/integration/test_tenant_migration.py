"""Turning auth on over existing data: `adopt` moves the sessions stored with MOTORHEAD_AUTH=none under one tenant.

Sessions are written the way a deployment without auth wrote them (the real functions, MOTORHEAD_AUTH=none), adopted
through the admin handler, then read back with MOTORHEAD_AUTH=api-key and a key of that tenant: GET, the session
lists and retrieval must answer exactly what the tenant-less caller got before, on plain Redis, on Redis with the
search module (search documents re-tagged) and on a 3-node cluster (sources and copies in different slots).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from devserver.embedded_redis import EmbeddedRedis, EmbeddedRedisCluster
from devserver.lambda_runtime import FakeLambdaContext
from devserver.local_sqs import LocalSqs, SqsPoller
from motorhead.adapters.redis_db import tenant_migration
from motorhead.adapters.redis_db.keys import Keys, tenant_tag
from motorhead.composition.access import api_keys, session_adopter
from motorhead.composition.memory import redis_store
from motorhead.core.values import NewMessage
from motorhead.entrypoints.admin.handler import admin_handler
from motorhead.errors import StoreUnavailableError
from motorhead.settings import get_settings
from tests.integration.conftest import fresh_queue
from tests.integration.test_retrieval import CONVERSATION, retrieval_event
from tests.support import Api, body, cold_start, get_event, load_event, post_event, ref

KEYS = Keys("mh")
TENANT = "acme"
ODD_ID = "odd {id}:*?"  # braces, a colon and glob characters: none may reach another session's keys


@dataclass
class Server:
    kind: str
    url: str
    nodes: list[redis.Redis]  # every primary, decoding
    raw: list[redis.Redis]  # the same, returning bytes

    def keys(self, pattern: str = "*") -> set[str]:
        return {str(key) for node in self.nodes for key in node.scan_iter(match=pattern)}

    def snapshot(self, pattern: str = "*") -> dict[str, bytes]:
        """Every key matching ``pattern`` and its serialized value: equal snapshots mean nothing changed."""
        found: dict[str, bytes] = {}
        for node in self.raw:
            for key in node.scan_iter(match=pattern):
                found[key.decode()] = node.dump(key)  # type: ignore[assignment]
        return found


def _server(kind: str, url: str, ports: list[int]) -> Iterator[Server]:
    nodes = [redis.Redis(port=port, decode_responses=True) for port in ports]
    raw = [redis.Redis(port=port) for port in ports]
    for node in nodes:
        node.flushall()
    yield Server(kind, url, nodes, raw)
    for node in nodes + raw:
        node.close()


@pytest.fixture(params=["plain", "search", pytest.param("cluster", marks=pytest.mark.cluster)])
def server(
    request: pytest.FixtureRequest,
    redis_server: EmbeddedRedis,
    search_server: EmbeddedRedis,
    redis_cluster: EmbeddedRedisCluster,
) -> Iterator[Server]:
    """Plain Redis, Redis with the search module, and a 3-node cluster; emptied."""
    if request.param == "cluster":
        yield from _server("cluster", redis_cluster.url, [node.port for node in redis_cluster.nodes])
    else:
        chosen = redis_server if request.param == "plain" else search_server
        yield from _server(request.param, chosen.url, [chosen.port])


@pytest.fixture
def plain(redis_server: EmbeddedRedis) -> Iterator[Server]:
    """Plain Redis only: the cases about the steps of the move, not about where the keys live."""
    yield from _server("plain", redis_server.url, [redis_server.port])


def admin(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """The admin handler wired as the admin function should wire it (``functions/admin/app.py``; see
    ``test_admin_function_given_adopt_runs_it``), invoked under the current environment."""
    handler = admin_handler(lambda: api_keys(get_settings()), lambda: session_adopter(get_settings()))
    return handler(event, context if context is not None else FakeLambdaContext(function_name="AdminFunction"))


class Caller:
    """The memory API through the real functions, as one caller: tenant-less, or with an API key."""

    def __init__(self, api: Api, key: str | None = None) -> None:
        self.api = api
        self.key = key

    def _send(self, function_id: str, event: dict[str, Any]) -> dict[str, Any]:
        if self.key is not None:
            event["headers"]["authorization"] = f"Bearer {self.key}"
        response = self.api.invoke(function_id, event)
        assert response["statusCode"] == 200, response
        return response

    def post(self, session_id: str, texts: list[str], *, context: str | None = None, namespace: str = "") -> None:
        payload: dict[str, Any] = {"messages": [{"role": "Human", "content": text} for text in texts]}
        if context is not None:
            payload["context"] = context
        query = f"namespace={namespace}" if namespace else ""
        self._send("PostMemoryFunction", post_event(session_id, payload, query=query))

    def get(self, session_id: str) -> Any:
        return body(self._send("GetMemoryFunction", get_event(session_id)))

    def sessions(self, namespace: str = "") -> Any:
        event = copy.deepcopy(load_event("list_sessions-ok"))
        query = {"page": "1", "size": "100", **({"namespace": namespace} if namespace else {})}
        event["queryStringParameters"] = query
        event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in query.items())
        return body(self._send("ListSessionsFunction", event))

    def retrieve(self, session_id: str, text: str) -> Any:
        return body(self._send("RetrievalFunction", retrieval_event(session_id, {"text": text, "k": 5})))

    def view(self, session_ids: list[str], namespaces: list[str]) -> dict[str, Any]:
        """What this caller sees: each session's memory and each namespace's list."""
        return {
            "memory": {session_id: self.get(session_id) for session_id in session_ids},
            "lists": {namespace: self.sessions(namespace) for namespace in namespaces},
        }


def write_tenantless(caller: Caller) -> None:
    """Sessions as a deployment without auth stored them: plain, with a summary, listed in two namespaces, odd id."""
    caller.post("plain", ["hello", "how are you?"])
    caller.post("summarized", ["the old part"], context="a summary of what came before")
    caller.post("two-lists", ["in the default list"])
    caller.post("two-lists", ["and in the work list"], namespace="work")
    caller.post(ODD_ID, ["an id that is not a plain word"], namespace="work")


SESSIONS = ["plain", "summarized", "two-lists", ODD_ID]
NAMESPACES = ["", "work"]


def key_of(api: Api, tenant: str = TENANT) -> str:
    answer = api.admin({"action": "create", "tenant": tenant})
    assert answer["ok"], answer
    return str(answer["key"])


def tenantless_keys(server: Server) -> set[str]:
    """Keys of tenant-less sessions (``mh:{D}:...``), their lists and their search documents (a 32-digit tag)."""
    docs = {key for key in server.keys("mh:doc:*") if len(key.split("{", 1)[1].split("}", 1)[0]) == 32}
    return server.keys("mh:{*") | server.keys("mh:sessions:*") | docs


def secure(server: Server, **env: str | None) -> AbstractContextManager[Api]:
    """The functions with auth on (API keys, no cache), on ``server``."""
    return cold_start(REDIS_URL=server.url, MOTORHEAD_AUTH="api-key", MOTORHEAD_API_KEY_CACHE_SECONDS="0", **env)


def test_adopt_given_tenantless_sessions_the_tenant_reads_exactly_what_was_there(server: Server) -> None:
    # Given sessions written with MOTORHEAD_AUTH=none, and what a tenant-less caller saw of them
    with cold_start(REDIS_URL=server.url) as api:
        write_tenantless(Caller(api))
        before = Caller(api).view(SESSIONS, NAMESPACES)
        # When a tenant adopts them
        answer = admin({"action": "adopt", "tenant": TENANT})
    # Then every session moved, and none was skipped or in conflict
    assert answer == {
        "ok": True,
        "tenant": TENANT,
        "dry_run": False,
        "sessions_moved": 4,
        "documents_moved": 0,
        "skipped": 0,
        "conflicts": [],
        "complete": True,
    }
    # And with auth on, a key of the tenant sees exactly what the tenant-less caller saw
    with secure(server) as api:
        assert Caller(api, key_of(api)).view(SESSIONS, NAMESPACES) == before
        # And another tenant sees none of it
        other = Caller(api, key_of(api, "other"))
        assert other.sessions() == [] and other.get("plain")["messages"] == []
    # And no tenant-less key is left
    assert tenantless_keys(server) == set()


def test_adopt_given_a_second_run_moves_nothing(server: Server) -> None:
    # Given tenant-less sessions, adopted once
    with cold_start(REDIS_URL=server.url) as api:
        write_tenantless(Caller(api))
        assert admin({"action": "adopt", "tenant": TENANT})["sessions_moved"] == 4
        after_first = server.snapshot()
        # When the adoption runs again (for this tenant, or for another one)
        again = admin({"action": "adopt", "tenant": TENANT})
        elsewhere = admin({"action": "adopt", "tenant": "other"})
    # Then nothing moves and nothing changes
    for answer in (again, elsewhere):
        assert (answer["sessions_moved"], answer["skipped"], answer["conflicts"]) == (0, 0, [])
    assert server.snapshot() == after_first


def test_adopt_given_dry_run_counts_and_changes_nothing(server: Server) -> None:
    # Given tenant-less sessions
    with cold_start(REDIS_URL=server.url) as api:
        write_tenantless(Caller(api))
        before = server.snapshot()
        # When a dry run is asked for
        answer = admin({"action": "adopt", "tenant": TENANT, "dry_run": True})
    # Then it counts what would move (a session in two lists once), and not one key changed
    assert (answer["dry_run"], answer["sessions_moved"], answer["skipped"], answer["complete"]) == (True, 4, 0, True)
    assert server.snapshot() == before


def test_adopt_given_other_tenants_never_touches_their_data(server: Server) -> None:
    # Given another tenant's sessions (one with an id a tenant-less session has too) and tenant-less sessions
    with secure(server) as api:
        other = Caller(api, key_of(api, "other"))
        other.post("plain", ["other's own plain"])
        other.post("theirs", ["other's only"], namespace="work")
    theirs = f"mh:t:{{{tenant_tag('other')}}}*"
    before = server.snapshot(theirs)
    with cold_start(REDIS_URL=server.url) as api:
        write_tenantless(Caller(api))
        # When "acme" adopts the tenant-less sessions
        assert admin({"action": "adopt", "tenant": TENANT})["sessions_moved"] == 4
    # Then not one key of the other tenant changed
    assert server.snapshot(theirs) == before


def test_adopt_given_the_tenant_already_has_a_session_of_that_id_leaves_both_alone(plain: Server) -> None:
    # Given a tenant that, with auth already on, wrote a session "plain" of its own, and tenant-less sessions
    with secure(plain) as api:
        key = key_of(api)
        Caller(api, key).post("plain", ["the tenant's own"])
    with cold_start(REDIS_URL=plain.url) as api:
        write_tenantless(Caller(api))
        tenantless_plain = Caller(api).get("plain")
        # When the tenant adopts the tenant-less sessions
        answer = admin({"action": "adopt", "tenant": TENANT})
        # Then the clash is reported and the tenant-less session is still there
        assert (answer["sessions_moved"], answer["conflicts"]) == (3, ["plain"])
        assert Caller(api).get("plain") == tenantless_plain
    # And the tenant's own session is untouched
    with secure(plain) as api:
        assert [m["content"] for m in Caller(api, key).get("plain")["messages"]] == ["the tenant's own"]


def test_adopt_given_a_crash_after_copying_finishes_on_the_next_run(
    plain: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given tenant-less sessions and a first run that dies right after copying its first session (Redis lost)
    with cold_start(REDIS_URL=plain.url) as api:
        write_tenantless(Caller(api))
        before = Caller(api).view(SESSIONS, NAMESPACES)
        real_copy = tenant_migration.RedisSessionAdopter._copy_keys

        def copy_then_die(self: tenant_migration.RedisSessionAdopter, *args: Any) -> None:
            real_copy(self, *args)
            raise StoreUnavailableError("redis unavailable: ConnectionError")

        monkeypatch.setattr(tenant_migration.RedisSessionAdopter, "_copy_keys", copy_then_die)
        assert admin({"action": "adopt", "tenant": TENANT}) == {
            "ok": False,
            "error": "redis unavailable: ConnectionError",
        }
        marks = [plain.nodes[0].hget(key, tenant_migration.MARK) for key in plain.keys("mh:t:*:meta")]
        assert marks == [tenant_tag(TENANT)]  # one copy, partial and marked as an adoption's
        monkeypatch.undo()
        # When the adoption runs again
        answer = admin({"action": "adopt", "tenant": TENANT})
    # Then it copies over its own partial copy (no conflict), and the tenant reads what was there
    assert (answer["sessions_moved"], answer["conflicts"]) == (4, [])
    with secure(plain) as api:
        assert Caller(api, key_of(api)).view(SESSIONS, NAMESPACES) == before
    assert tenantless_keys(plain) == set()
    assert all(not plain.nodes[0].hexists(key, tenant_migration.MARK) for key in plain.keys("mh:t:*:meta"))


def test_adopt_given_a_crash_before_unlisting_finishes_on_the_next_run(
    plain: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a first run that dies after deleting its first session's source, before moving its list entries
    with cold_start(REDIS_URL=plain.url) as api:
        write_tenantless(Caller(api))
        before = Caller(api).view(SESSIONS, NAMESPACES)
        real_unmark = tenant_migration._UNMARK
        monkeypatch.setattr(tenant_migration, "_UNMARK", "return redis.error_reply('ERR injected failure')")
        answer = admin({"action": "adopt", "tenant": TENANT})
        assert answer == {"ok": False, "error": "redis refused a step of the adoption: injected failure"}
        monkeypatch.setattr(tenant_migration, "_UNMARK", real_unmark)
        # When the adoption runs again
        answer = admin({"action": "adopt", "tenant": TENANT})
    # Then the half-moved session counts as skipped (only its list entries were left), the rest moved
    assert (answer["sessions_moved"], answer["skipped"], answer["conflicts"]) == (3, 1, [])
    with secure(plain) as api:
        assert Caller(api, key_of(api)).view(SESSIONS, NAMESPACES) == before
    assert tenantless_keys(plain) == set()


class Budget:
    """A Lambda context with time for ``sessions`` more sessions, then none."""

    def __init__(self, sessions: int) -> None:
        self.left = sessions

    def get_remaining_time_in_millis(self) -> int:
        self.left -= 1
        return 10_000 if self.left >= 0 else 500


def test_adopt_given_the_time_budget_runs_out_stops_and_goes_on_when_invoked_again(plain: Server) -> None:
    # Given tenant-less sessions and an invocation with time for one session only
    with cold_start(REDIS_URL=plain.url) as api:
        write_tenantless(Caller(api))
        before = Caller(api).view(SESSIONS, NAMESPACES)
        # When it runs, then runs again until complete
        first = admin({"action": "adopt", "tenant": TENANT}, Budget(1))
        answers = [first]
        while not answers[-1]["complete"]:
            answers.append(admin({"action": "adopt", "tenant": TENANT}, Budget(2)))
    # Then the first stopped early after one session, and the runs moved every session once
    assert (first["sessions_moved"], first["complete"]) == (1, False)
    assert sum(a["sessions_moved"] for a in answers) == 4 and sum(a["skipped"] for a in answers) == 0
    with secure(plain) as api:
        assert Caller(api, key_of(api)).view(SESSIONS, NAMESPACES) == before


def test_adopt_given_a_session_no_list_shows_still_moves_it(plain: Server) -> None:
    # Given a tenant-less session that no list shows any more (a DELETE that unlisted it, then failed) and one listed
    with cold_start(REDIS_URL=plain.url) as api:
        Caller(api).post("unlisted", ["still readable by id"])
        Caller(api).post("listed", ["listed"])
        plain.nodes[0].zrem(KEYS.sessions_index("", ""), "unlisted")
        before = Caller(api).view(["unlisted", "listed"], [""])
        # When the tenant adopts them
        answer = admin({"action": "adopt", "tenant": TENANT})
    # Then both moved, and the tenant sees the same: the unlisted one by id only
    assert answer["sessions_moved"] == 2
    with secure(plain) as api:
        assert Caller(api, key_of(api)).view(["unlisted", "listed"], [""]) == before


def test_adopt_given_hundreds_of_sessions_in_big_lists_moves_each_once(plain: Server) -> None:
    # Given 300 tenant-less sessions (lists past Redis's compact encoding: ZSCAN then walks a hash table while the
    # adoption removes entries), a third of them listed in a second namespace too
    with cold_start(REDIS_URL=plain.url):
        store = redis_store(get_settings())
        for i in range(300):
            for namespace in ["", "work"] if i % 3 == 0 else [""]:
                store.append(ref(f"s{i}"), [NewMessage("Human", f"m{i}")], context=None, namespace=namespace, now_ms=i)
        lists = {ns: plain.nodes[0].zrange(KEYS.sessions_index("", ns), 0, -1, withscores=True) for ns in NAMESPACES}
        assert plain.nodes[0].object("encoding", KEYS.sessions_index("", "")) != "listpack"
        # When an invocation with time for 150 sessions runs, then one with time for all
        first = admin({"action": "adopt", "tenant": TENANT}, Budget(150))
        second = admin({"action": "adopt", "tenant": TENANT})
    # Then each session moved exactly once, and the tenant's lists hold the same ids with the same scores
    assert (first["sessions_moved"], first["complete"]) == (150, False)
    assert (second["sessions_moved"], second["skipped"], second["complete"]) == (150, 0, True)
    for ns, entries in lists.items():
        assert plain.nodes[0].zrange(KEYS.sessions_index(TENANT, ns), 0, -1, withscores=True) == entries
    assert tenantless_keys(plain) == set()


@pytest.mark.parametrize(
    ("event", "error"),
    [
        ({"action": "adopt"}, "tenant: Field required"),
        ({"action": "adopt", "tenant": "a/b"}, "a tenant is 1 to 64 characters"),
        ({"action": "adopt", "tenant": ""}, "a tenant is 1 to 64 characters"),
        ({"action": "adopt", "tenant": "acme", "dry_run": "yes"}, "dry_run: Input should be a valid boolean"),
        ({"action": "adopt", "tenant": "acme", "everything": True}, "everything: Extra inputs are not permitted"),
    ],
)
def test_adopt_given_bad_input_answers_an_error_and_changes_nothing(
    plain: Server, event: dict[str, Any], error: str
) -> None:
    # Given tenant-less sessions
    with cold_start(REDIS_URL=plain.url) as api:
        write_tenantless(Caller(api))
        before = plain.snapshot()
        # When adopt is invoked with a bad event
        answer = admin(event)
    # Then it answers an error, and nothing changed
    assert answer["ok"] is False and error in answer["error"], answer
    assert plain.snapshot() == before


def test_adopt_given_a_handler_without_a_migration_says_it_is_not_available(plain: Server) -> None:
    with cold_start(REDIS_URL=plain.url):
        handler = admin_handler(lambda: api_keys(get_settings()))
        answer = handler({"action": "adopt", "tenant": TENANT}, FakeLambdaContext())
    assert answer == {"ok": False, "error": "adopt is not available: this admin function has no migration"}


def test_admin_function_given_adopt_runs_it(plain: Server) -> None:
    # Given the template's admin function / When adopt is invoked / Then it runs (a dry run here)
    with cold_start(REDIS_URL=plain.url) as api:
        answer = api.admin({"action": "adopt", "tenant": TENANT, "dry_run": True})
    assert answer["ok"] is True, answer


def printed(output: str) -> list[str]:
    """What a command printed for its user: its lines without the functions' JSON logs and metrics."""
    return [line for line in output.splitlines() if not line.startswith("{")]


def test_adopt_command_given_a_stop_for_time_goes_on_to_the_end(
    plain: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import devserver.keys

    # Given tenant-less sessions, and an admin function with time for two sessions per invocation
    with cold_start(REDIS_URL=plain.url) as api:
        write_tenantless(Caller(api))
    monkeypatch.setenv("REDIS_URL", plain.url)
    # the command quiets the functions' logs and metrics in its own process's environment: undone after this test
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "ERROR")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setattr(devserver.keys, "invoke_admin", lambda event: admin(event, Budget(2)))
    # When `make adopt-sessions TENANT=acme DRY_RUN=1`, then `make adopt-sessions TENANT=acme` run
    with cold_start(REDIS_URL=plain.url):
        assert devserver.keys.main(["adopt", "--tenant", TENANT, "--dry-run"]) == 0
        dry = printed(capsys.readouterr().out)
        assert devserver.keys.main(["adopt", "--tenant", TENANT]) == 0
        done = printed(capsys.readouterr().out)
    # Then the dry run says what would move (as far as one invocation got), and the real one moves it all
    assert dry == [
        "tenant acme: would move 2 sessions and 0 search documents; 0 skipped (no data left to move, only list "
        "entries)",
        "stopped early: run the same command again to go on",
    ]
    assert done == [
        "tenant acme: moved 4 sessions and 0 search documents; 0 skipped (no data left to move, only list entries)"
    ]
    assert tenantless_keys(plain) == set()


# --- long-term memory: vectors, the `exact` rows and the `search` documents ----------------------------------------


@pytest.fixture(params=["plain", "search"])
def ltm_server(
    request: pytest.FixtureRequest, redis_server: EmbeddedRedis, search_server: EmbeddedRedis
) -> Iterator[Server]:
    chosen = redis_server if request.param == "plain" else search_server
    yield from _server(request.param, chosen.url, [chosen.port])


def test_adopt_given_long_term_memory_retrieval_finds_the_same_messages(
    ltm_server: Server, local_sqs: LocalSqs
) -> None:
    server = ltm_server
    index_queue = fresh_queue(local_sqs, "IndexerFunction")
    ltm_env: dict[str, str | None] = {
        "MOTORHEAD_LONG_TERM_MEMORY": "true",
        "MOTORHEAD_INDEX_QUEUE_URL": index_queue.url,
        "MOTORHEAD_SUMMARY_QUEUE_URL": None,
        "MOTORHEAD_EMBEDDER": "local",
        "MOTORHEAD_VECTOR_BACKEND": "auto",  # `search` on the search server, `exact` on plain Redis
    }
    questions = ["dancing to EDM", "food allergy", "where do we sleep"]

    def indexer(api: Api) -> SqsPoller:
        return SqsPoller(local_sqs, index_queue, handler=api.consumer("IndexerFunction"), max_backoff=0)

    # Given a tenant-less conversation, indexed, and what retrieval found in it
    with cold_start(REDIS_URL=server.url, **ltm_env) as api:
        caller = Caller(api)
        caller.post("trip", [text for _, text in CONVERSATION])
        assert indexer(api).drain() == 1
        before = {question: caller.retrieve("trip", question) for question in questions}
        memory = caller.get("trip")
        old_docs = server.keys(f"{KEYS.session(ref('trip')).doc_prefix}*")
        # When the tenant adopts it
        answer = admin({"action": "adopt", "tenant": TENANT})
    # Then the search documents moved with it (the `search` backend has one per message; `exact` keeps rows)
    assert answer["sessions_moved"] == 1
    assert answer["documents_moved"] == len(old_docs) == (len(CONVERSATION) if server.kind == "search" else 0)
    copied = KEYS.session(ref("trip", TENANT))
    assert len(server.keys(f"{copied.doc_prefix}*")) == len(old_docs)
    # And with auth on, the tenant's retrieval finds the same messages, in the same order, and GET is the same
    with secure(server, **ltm_env) as api:
        caller = Caller(api, key_of(api))
        assert {question: caller.retrieve("trip", question) for question in questions} == before
        assert caller.get("trip") == memory
        # And the session goes on: a new message is indexed under the tenant and found
        caller.post("trip", ["We also want to see the salt cathedral in Zipaquirá."])
        assert indexer(api).drain() == 1
        assert caller.retrieve("trip", "salt cathedral")[0]["content"].startswith("We also want to see")
    assert tenantless_keys(server) == set()
    if server.kind == "search":  # the shared index finds the copy's documents under the new TAG, none under the old
        index = server.nodes[0].ft(KEYS.search_index())
        assert index.search(f"@session:{{{copied.tag}}}").total == len(CONVERSATION) + 1
        assert index.search(f"@session:{{{KEYS.session(ref('trip')).tag}}}").total == 0


def test_adopt_given_sessions_bound_to_users_lists_them_under_the_tenants_same_users(server: Server) -> None:
    # Given tenant-less sessions bound to user ana (and one to nobody)
    payload = {"messages": [{"role": "Human", "content": "I am allergic to peanuts"}]}
    with cold_start(REDIS_URL=server.url) as api:
        for session_id in ("ana-1", "ana-2"):
            response = api.invoke("PostMemoryFunction", post_event(session_id, payload, query="user_id=ana"))
            assert response["statusCode"] == 200
        Caller(api).post("nobody", ["hello"])
        # When the tenant adopts them
        assert admin({"action": "adopt", "tenant": TENANT})["sessions_moved"] == 3
    # Then the tenant's ana has both sessions, no tenant-less user listing is left, and a write naming another user
    # is still refused
    with secure(server) as api:
        key = key_of(api)
        event = copy.deepcopy(load_event("list_sessions-user"))
        event["queryStringParameters"] = {"page": "1", "size": "10", "user_id": "ana"}
        event["rawQueryString"] = "page=1&size=10&user_id=ana"
        event["headers"]["authorization"] = f"Bearer {key}"
        assert sorted(body(api.invoke("ListSessionsFunction", event))) == ["ana-1", "ana-2"]
        refused = post_event("ana-1", payload, query="user_id=bruno")
        refused["headers"]["authorization"] = f"Bearer {key}"
        assert api.invoke("PostMemoryFunction", refused)["statusCode"] == 409
    assert server.keys("mh:u:*") == set()
