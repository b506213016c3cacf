"""What each hot route costs Redis: round trips and commands per operation, and the server's CPU per operation,
against a PING-only floor measured in the same run (figures and ratios, never pass/fail).

Each route is the real service code on the real store, wired as the composition root wires it
(``motorhead.composition.memory.redis_store`` / ``memory_limits``, ``motorhead.composition.long_term.vector_index``),
with long-term memory on and both job queues configured (queues that accept every job without a network, so a POST
takes its summary and index leases as it does on AWS), on a fresh ``EmbeddedRedis``:

- ``GET memory``: ``MemoryService.get_memory`` of a session of 14 messages and a context (window 12);
- ``POST 2 messages``: ``MemoryService.add_memory`` of two messages to an existing session, with the template's
  default quotas (on: the tenant's usage checked and counted in the same script); ``POST, no quotas``: the same
  without quotas;
- ``DELETE``: ``MemoryService.delete_memory`` of a session of 14 messages and a context (seeded before each phase,
  outside the measurement; its messages pending for the indexer, as right after a POST);
- ``list sessions``: ``MemoryService.list_sessions`` (page 1 of 10) of a tenant with 200 sessions;
- ``session retrieval``: ``RetrievalService.retrieve`` (k=10, hybrid) of an indexed session, ``exact`` backend; the
  query's vector is computed beforehand, so the figure is retrieval's Redis part and its client-side ranking;
- ``user retrieval``: ``RetrievalService.retrieve_user`` (limit 10) of a user with several indexed sessions, likewise;
- ``API key, cold cache``: ``ApiKeys.authenticate`` on the Redis key store with ``cache_seconds=0`` (every check
  reads the key directory's revision; the directory itself is loaded once, as nothing changes);
- ``PING`` (the floor): one ``PING`` per operation through the same client;
- ``POST's commands, piped`` (a floor of the append, single Redis only): the commands the append script ran for one
  ``POST 2 messages`` (captured once with ``MONITOR``), sent without a script as one plain pipeline per operation,
  spread over as many sessions as the POST route's and grown the same way (each copy's messages get new ids, so it
  adds members as an append does; each copy has a call token of its own and a later time, so it adds its token and
  moves the session's listing as an append does): what the append's reads and writes cost in one round trip with
  nothing else;
- ``POST's commands, scripted`` (the append's one-round-trip floor as a script, single Redis only): the same copies
  run by a script that runs those commands and nothing else (``bare_script``: the keys from ``KEYS``, what differs
  between copies from ``ARGV``, the rest written into the script), one ``EVALSHA`` per operation: what any atomic
  append of these commands in one round trip costs at least, since a write that decides (ids, idempotency, quotas,
  the user's binding) needs a script on Redis; the append is compared with both (``floor_lines``).

Measured per phase (one route, ``clients`` threads sharing the process's one client, as ``clients`` concurrent
callers, doing ``ops`` operations between them):

- round trips, on the client side: every ``send_packed_command`` of redis-py's connections is one (a pipeline sends
  once, a script call once); the commands of each send are parsed back from the packed bytes. A connection's upkeep
  (its handshake, redis-py's health-check ``PING``) is counted apart and left out of the route's figures;
- from the server: ``CONFIG RESETSTAT`` before, ``INFO commandstats`` after. Commands a Lua script runs appear there
  a second time (their time is inside the script's): "scripted" counts them, and the commandstats time of a route
  sums only the calls the client sent (a name also called from scripts gets its share of that name's time by calls);
- the server process's CPU (``INFO cpu``: ``used_cpu_user`` + ``used_cpu_sys``, delta over the phase): unlike
  commandstats it holds what each round trip costs beyond its commands (reading and parsing the request, writing the
  reply, the event loop), which is what a PING is made of.

Each route's CPU per operation is given in µs, as a ratio to the PING floor, and as a ratio to "round trips x PING
floor" (1.0 would mean its commands cost nothing beyond their round trips), each ratio taken within one round. The
routes run interleaved, in a new random order each round; figures are medians over the rounds. With ``--cluster``
(the default) the same routes run on a 3-node ``EmbeddedRedisCluster`` too (CPU summed over the nodes).

Run: ``make bench-redis`` (``ARGS="--quick"`` for a short run, ``--json PATH`` writes the results), or
``PYTHONPATH=layers/shared/python:. .venv/bin/python bench/redis_cost.py [--quick] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import random
import statistics
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import redis
from redis.cluster import RedisCluster

from bench.events import SEED_MESSAGES, WINDOW
from bench.harness import report
from bench.retrieval import generated_messages, load_set
from devserver.embedded_redis import EmbeddedRedis, EmbeddedRedisCluster
from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.key_store import RedisKeyStore
from motorhead.adapters.redis_db.keys import Keys
from motorhead.composition.long_term import retrieval_indexes
from motorhead.composition.memory import memory_limits, redis_store
from motorhead.core.api_keys import ApiKeys
from motorhead.core.auth import Credential
from motorhead.core.memory import MemoryService
from motorhead.core.values import NewMessage, Quotas, SessionJob, SessionRef, UserRef
from motorhead.ltm.indexing import IndexerService
from motorhead.ltm.ports import Vectors
from motorhead.ltm.retrieval import RetrievalService
from motorhead.settings import Settings

TENANT = "bench"
TEMPLATE_QUOTAS = Quotas(sessions=100_000, messages=10_000_000, bytes=2_147_483_648, namespaces=1_000)
LIST_TENANT = "lister"
DIMENSIONS = 384
K = 10
PING = "PING (floor)"
APPEND_FLOOR = "POST's commands, piped"
APPEND_SCRIPTED = "POST's commands, scripted"
ROUTES = (
    "GET memory",
    "POST 2 messages",
    APPEND_FLOOR,
    APPEND_SCRIPTED,
    "POST, no quotas",
    "DELETE",
    "list sessions",
    "session retrieval",
    "user retrieval",
    "API key, cold cache",
    PING,
)
# commands whose first argument names a subcommand in commandstats (``cmdstat_config|resetstat``)
CONTAINERS = frozenset(
    {"acl", "client", "cluster", "command", "config", "function", "latency", "memory", "module", "object", "script"}
)
OBSERVER = Counter({"config|resetstat": 1, "info": 2})  # what the observer sends each node in a phase
# routes whose operations are slow (client-side ranking): they run ``ops // divisor`` operations per round
FEWER_OPS = {"session retrieval": 8, "user retrieval": 16}


@dataclass(frozen=True)
class CostSettings:
    """How much to measure."""

    clients: int  # concurrent client threads
    ops: int  # operations per route per round, shared between the clients
    rounds: int
    cluster_rounds: int
    get_sessions: int  # sessions the GET and POST phases spread over
    list_sessions: int  # sessions of the tenant that is listed
    retrieval_sessions: int
    retrieval_messages: int  # messages per retrieval session
    users: int
    user_sessions: int  # sessions per user
    user_messages: int  # messages per user session


DEFAULT = CostSettings(
    clients=16,
    ops=3_000,
    rounds=5,
    cluster_rounds=3,
    get_sessions=64,
    list_sessions=200,
    retrieval_sessions=8,
    retrieval_messages=200,
    users=4,
    user_sessions=8,
    user_messages=50,
)
QUICK = CostSettings(
    clients=16,
    ops=800,
    rounds=3,
    cluster_rounds=1,
    get_sessions=64,
    list_sessions=200,
    retrieval_sessions=8,
    retrieval_messages=200,
    users=4,
    user_sessions=8,
    user_messages=50,
)


# -- counting on the client side --------------------------------------------------------------------------------------


def command_names(packed: bytes | str | Sequence[bytes | str | memoryview]) -> list[str]:
    """The commands in what redis-py hands ``send_packed_command`` (one command, or a pipeline's), as commandstats
    names them: lower case, ``container|subcommand`` for ``CONFIG``, ``SCRIPT`` and the like."""
    if isinstance(packed, str | bytes):
        parts: Sequence[bytes | str | memoryview] = [packed]
    else:
        parts = packed
    data = b"".join(part.encode() if isinstance(part, str) else bytes(part) for part in parts)
    names: list[str] = []
    at = 0
    while at < len(data):
        if data[at : at + 1] != b"*":
            raise ValueError(f"not a RESP array at byte {at}")
        end = data.index(b"\r\n", at)
        count = int(data[at + 1 : end])
        at = end + 2
        args: list[bytes] = []
        for _ in range(count):
            if data[at : at + 1] != b"$":
                raise ValueError(f"not a RESP bulk string at byte {at}")
            end = data.index(b"\r\n", at)
            size = int(data[at + 1 : end])
            if len(args) < 2:
                args.append(data[end + 2 : end + 2 + size])
            at = end + 2 + size + 2
        name = args[0].decode().lower() if args else ""
        if name in CONTAINERS and len(args) > 1:
            name = f"{name}|{args[1].decode().lower()}"
        names.append(name)
    return names


@dataclass
class Tally:
    """One client thread's sends in one phase: the route's, and its connections' upkeep apart."""

    round_trips: int = 0
    commands: Counter[str] = field(default_factory=Counter)
    upkeep_round_trips: int = 0
    upkeep: Counter[str] = field(default_factory=Counter)


class _ThreadState(threading.local):
    tally: Tally | None = None
    connecting: int = 0


_state = _ThreadState()


@contextmanager
def counted_sends() -> Iterator[None]:
    """While open, each send of a thread that has a ``Tally`` is recorded in it (threads without one, such as the
    observer's, are not). A send made while connecting, or with ``check_health=False`` (the health-check ``PING``,
    ``AUTH``/``HELLO``), is upkeep."""
    connection = redis.connection.AbstractConnection
    send: Callable[..., None] = connection.send_packed_command
    handshake: Callable[..., None] = connection.on_connect_check_health

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        tally = _state.tally
        if tally is not None:
            names = command_names(command)
            if _state.connecting or not check_health:
                tally.upkeep_round_trips += 1
                tally.upkeep.update(names)
            else:
                tally.round_trips += 1
                tally.commands.update(names)
        send(self, command, check_health)

    def connecting(self: Any, check_health: bool = True) -> None:
        _state.connecting += 1
        try:
            handshake(self, check_health)
        finally:
            _state.connecting -= 1

    connection.send_packed_command = counting  # type: ignore[method-assign]
    connection.on_connect_check_health = connecting  # type: ignore[method-assign]
    try:
        yield
    finally:
        connection.send_packed_command = send  # type: ignore[method-assign]
        connection.on_connect_check_health = handshake  # type: ignore[method-assign]


# -- what the server says -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommandStat:
    calls: int
    usec: int
    failed: int = 0


def parse_commandstats(info: Mapping[str, Any]) -> dict[str, CommandStat]:
    """``INFO commandstats`` as redis-py returns it (``cmdstat_get: {calls, usec, ...}``), by command name."""
    return {
        key.removeprefix("cmdstat_"): CommandStat(
            calls=int(value["calls"]), usec=int(value["usec"]), failed=int(value.get("failed_calls", 0))
        )
        for key, value in info.items()
        if key.startswith("cmdstat_")
    }


def merge_stats(stats: Sequence[Mapping[str, CommandStat]]) -> dict[str, CommandStat]:
    merged: dict[str, CommandStat] = {}
    for node in stats:
        for name, stat in node.items():
            seen = merged.get(name, CommandStat(0, 0))
            merged[name] = CommandStat(seen.calls + stat.calls, seen.usec + stat.usec, seen.failed + stat.failed)
    return merged


@dataclass(frozen=True)
class ServerShare:
    """The server's commandstats for what the route's clients sent: calls scripts made, and the route's time."""

    scripted_calls: int  # calls beyond those sent by anyone: commands run by Lua scripts (EVALSHA, FCALL)
    usec: float  # commandstats time of the calls the route sent (a script's own commands inside its time)
    unmatched: list[str]  # names sent that the server did not report (should be empty)


def server_share(
    stats: Mapping[str, CommandStat], sent: Counter[str], upkeep: Counter[str], observer: Counter[str]
) -> ServerShare:
    """Split the server's commandstats into the route's sends, its connections' upkeep and the observer's commands,
    and what is left: the commands scripts ran (counted there a second time: their time is in the script's too).
    A name with calls of several kinds gets each kind's share of its time by calls."""
    usec = 0.0
    scripted = 0
    for name, stat in stats.items():
        outside = sent[name] + upkeep[name] + observer[name]
        scripted += max(0, stat.calls - outside)
        if stat.calls:
            usec += stat.usec * min(sent[name], stat.calls) / stat.calls
    unmatched = sorted(name for name in sent if name not in stats)
    return ServerShare(scripted_calls=scripted, usec=usec, unmatched=unmatched)


def cpu_seconds(info: Mapping[str, Any]) -> float:
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


# -- one phase ------------------------------------------------------------------------------------------------------


@dataclass
class Sample:
    """One route in one round."""

    ops: int
    seconds: float
    round_trips: int
    commands: dict[str, int]
    upkeep_round_trips: int
    upkeep: dict[str, int]
    scripted_calls: int
    commandstats_usec: float
    cpu_usec: float
    failed_calls: int
    unmatched: list[str]

    @property
    def round_trips_per_op(self) -> float:
        return self.round_trips / self.ops

    @property
    def commands_per_op(self) -> float:
        return sum(self.commands.values()) / self.ops

    @property
    def cpu_per_op(self) -> float:
        return self.cpu_usec / self.ops


def split(items: Sequence[Callable[[], object]], parts: int) -> list[list[Callable[[], object]]]:
    """``items`` dealt round-robin into ``parts`` lists (each client gets every ``parts``-th operation)."""
    return [list(items[start::parts]) for start in range(parts)]


def run_phase(operations: Sequence[Callable[[], object]], clients: int, observers: Sequence[redis.Redis]) -> Sample:
    """Run the operations on ``clients`` threads started together; the server's counters are reset just before."""
    shares = split(operations, clients)
    tallies = [Tally() for _ in shares]
    start = threading.Barrier(len(shares) + 1)
    failures: list[BaseException] = []

    def client(index: int) -> None:
        _state.tally = tallies[index]
        try:
            start.wait()
            for operation in shares[index]:
                operation()
        except BaseException as exc:
            failures.append(exc)
        finally:
            _state.tally = None

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(len(shares))]
    for thread in threads:
        thread.start()
    for observer in observers:
        observer.config_resetstat()
    before = [cpu_seconds(observer.info("cpu")) for observer in observers]
    began = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    after = [cpu_seconds(observer.info("cpu")) for observer in observers]
    stats = merge_stats([parse_commandstats(observer.info("commandstats")) for observer in observers])
    if failures:
        raise RuntimeError(f"{len(failures)} client(s) failed") from failures[0]
    sent = sum((t.commands for t in tallies), Counter[str]())
    upkeep = sum((t.upkeep for t in tallies), Counter[str]())
    observer_calls = Counter({name: n * len(observers) for name, n in OBSERVER.items()})
    share = server_share(stats, sent, upkeep, observer_calls)
    return Sample(
        ops=len(operations),
        seconds=seconds,
        round_trips=sum(t.round_trips for t in tallies),
        commands=dict(sent),
        upkeep_round_trips=sum(t.upkeep_round_trips for t in tallies),
        upkeep=dict(upkeep),
        scripted_calls=share.scripted_calls,
        commandstats_usec=share.usec,
        cpu_usec=sum(b - a for a, b in zip(before, after, strict=True)) * 1e6,
        failed_calls=sum(stat.failed for name, stat in stats.items() if sent[name]),
        unmatched=share.unmatched,
    )


# -- the routes, on the real services -------------------------------------------------------------------------------


class AcceptingQueue:
    """Implements ``JobQueue``: takes every job (as SQS does) and keeps only their number."""

    def __init__(self) -> None:
        self.sent = 0

    def send(self, job: SessionJob) -> None:
        self.sent += 1


class HashedWords:
    """Implements ``Embedder``: a hashed bag of words, L2-normalised, the same vector for the same text; the queries'
    vectors are computed once and then looked up, so a search costs no embedding (``prepare``)."""

    def __init__(self, dimensions: int = DIMENSIONS) -> None:
        self._dimensions = dimensions
        self._known: dict[str, Vectors] = {}

    @property
    def identity(self) -> str:
        return f"bench:hashed-words:{self._dimensions}"

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def prepare(self, texts: Sequence[str]) -> None:
        for text, row in zip(texts, self._compute(texts), strict=True):
            self._known[text] = row[None, :]

    def embed(self, texts: Sequence[str]) -> Vectors:
        if len(texts) == 1 and texts[0] in self._known:
            return self._known[texts[0]]
        return self._compute(texts)

    def _compute(self, texts: Sequence[str]) -> Vectors:
        rows = np.zeros((len(texts), self._dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                rows[row, zlib.crc32(word.strip(".,!?").encode()) % self._dimensions] += 1.0
        norms = np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
        return np.asarray(rows / norms, dtype=np.float32)


def seed_messages(index: int) -> list[NewMessage]:
    return [
        NewMessage("Human" if i % 2 == 0 else "AI", f"message {index}.{i}: " + "lorem ipsum dolor sit amet " * 4)
        for i in range(SEED_MESSAGES)
    ]


CONTEXT = "The user likes electronic music and asked about DJs from Colombia."
POST_PAIR = [NewMessage("Human", "what did we say about the trip?"), NewMessage("AI", "You chose Bogota.")]


def monitor_arguments(line: str) -> list[bytes]:
    """The arguments of one ``MONITOR`` line (``1700000000.1 [0 lua] "ZADD" "k" "1" "m"``): each is quoted, with
    ``\\``, ``\\"``, ``\\n``, ``\\r``, ``\\t``, ``\\a``, ``\\b`` and ``\\xHH`` escapes (Redis's ``sdscatrepr``)."""
    escapes = {"n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b", '"': '"', "\\": "\\"}
    args: list[bytes] = []
    at = line.index("] ") + 2
    while at < len(line):
        if line[at] != '"':
            at += 1
            continue
        at += 1
        chars: list[str] = []
        while line[at] != '"':
            if line[at] == "\\":
                if line[at + 1] == "x":
                    chars.append(chr(int(line[at + 2 : at + 4], 16)))
                    at += 4
                    continue
                chars.append(escapes[line[at + 1]])
                at += 2
                continue
            chars.append(line[at])
            at += 1
        args.append("".join(chars).encode("latin-1"))  # every byte past ASCII came as \\xHH
        at += 1
    return args


def call_values(commands: Sequence[Sequence[bytes]], session_id: bytes) -> tuple[bytes, bytes]:
    """The time and the call token of a captured append, from its commands: the score the session's listing
    (``ZADD`` of the session id) is given, and the member of the ``ZADD NX`` of its call tokens."""
    now = next((c[2] for c in commands if c[0].upper() == b"ZADD" and len(c) == 4 and c[3] == session_id), None)
    token = next((c[4] for c in commands if c[0].upper() == b"ZADD" and len(c) == 5 and c[2].upper() == b"NX"), None)
    if now is None or token is None:
        raise RuntimeError(f"no listing or no call token among the append's commands: {commands}")
    return now, token


def lua_string(value: bytes) -> str:
    """``value`` as a Lua string literal: letters and digits as they are, every other byte as a decimal escape."""
    return '"' + "".join(chr(b) if chr(b).isascii() and chr(b).isalnum() else f"\\{b:03d}" for b in value) + '"'


def bare_script(
    first: Sequence[Sequence[bytes]], second: Sequence[Sequence[bytes]]
) -> tuple[str, list[tuple[int, int]]]:
    """A Lua script that runs these commands and nothing else, from two copies of them (the same commands on other
    keys, with other values): each command's key (its first argument) from ``KEYS``, every argument that differs
    between the copies from ``ARGV``, the others written into the script as constants (as a script names its fields).
    Returns the script and the (command, argument) positions that ``ARGV`` holds, in order."""
    if len(first) != len(second) or any(len(a) != len(b) for a, b in zip(first, second, strict=True)):
        raise ValueError("the two copies must be the same commands with as many arguments")
    lines: list[str] = []
    varying: list[tuple[int, int]] = []
    for c, (command, other) in enumerate(zip(first, second, strict=True)):
        parts = [lua_string(command[0]), f"KEYS[{c + 1}]"]
        for a in range(2, len(command)):
            if command[a] == other[a]:
                parts.append(lua_string(command[a]))
            else:
                varying.append((c, a))
                parts.append(f"ARGV[{len(varying)}]")
        lines.append(f"redis.call({', '.join(parts)})")
    return "\n".join([*lines, "return 1"]), varying


def scripted_commands(client: redis.Redis, run: Callable[[], object]) -> list[list[bytes]]:
    """The commands Lua scripts ran on the server while ``run`` ran (``MONITOR``'s ``lua`` lines), in order."""
    connection = client.connection_pool.get_connection()
    marker = f"scripted-commands-end-{time.monotonic_ns()}"
    try:
        connection.send_command("MONITOR")  # type: ignore[no-untyped-call]
        if str(connection.read_response()) not in ("OK", "b'OK'"):
            raise RuntimeError("MONITOR refused")
        run()
        client.echo(marker)
        commands: list[list[bytes]] = []
        while True:
            reply = connection.read_response()
            line = reply.decode() if isinstance(reply, bytes) else str(reply)
            if marker in line:
                return commands
            if " lua] " in line:
                commands.append(monitor_arguments(line))
    finally:
        connection.disconnect()  # type: ignore[no-untyped-call]
        client.connection_pool.release(connection)


class Routes:
    """The services of one process on one server (standalone or cluster), the data the routes read, and each route
    as a list of operations."""

    def __init__(self, url: str, settings: CostSettings, *, cluster: bool) -> None:
        self.config = Settings(
            REDIS_URL=url,
            MOTORHEAD_REDIS_MODE="cluster" if cluster else "standalone",
            MOTORHEAD_MAX_WINDOW_SIZE=WINDOW,
            MOTORHEAD_LONG_TERM_MEMORY=True,
            MOTORHEAD_VECTOR_BACKEND="exact",
        )
        self.settings = settings
        self.connector = RedisConnector(self.config)
        keys = Keys(self.config.key_prefix)
        self.summary_jobs, self.index_jobs = AcceptingQueue(), AcceptingQueue()
        store = redis_store(self.config, self.connector)
        limits, jobs = memory_limits(self.config), (self.summary_jobs, self.index_jobs)
        # the template's default quotas (on), and the same service with none
        self.memory = MemoryService(
            store=store, limits=limits, summary_jobs=jobs[0], index_jobs=jobs[1], quotas=TEMPLATE_QUOTAS
        )
        self.unquoted = MemoryService(store=store, limits=limits, summary_jobs=jobs[0], index_jobs=jobs[1])
        self.embedder = HashedWords()
        index, keywords = retrieval_indexes(self.config, self.connector, dimensions=self.embedder.dimensions)
        if index.name != "exact":
            raise RuntimeError(f"asked for the exact backend, got {index.name}")
        self.retrieval = RetrievalService(
            embedder=self.embedder,
            index=index,
            keywords=keywords,
            hybrid=self.config.retrieval_hybrid,
            users=redis_store(self.config, self.connector),
        )
        self.indexer = IndexerService(
            store=redis_store(self.config, self.connector), embedder=self.embedder, index=index
        )
        self.api_keys = ApiKeys(RedisKeyStore(self.connector, keys), cache_seconds=0)
        self.credentials: list[Credential] = []
        self.queries: list[str] = []
        self.deleted = 0
        self.cluster = cluster
        # on a cluster the append's commands span slots (its listings, the tenant's usage): no plain pipeline of them
        self.routes = tuple(route for route in ROUTES if not (cluster and route in (APPEND_FLOOR, APPEND_SCRIPTED)))
        self.append_commands: list[list[bytes]] = []
        self.append_tag = b""
        self.floor_tags: list[bytes] = []
        self.copies = 0  # how many copies of the append the floors have sent
        self.append_now = b""  # the captured append's time and call token, as its commands carry them
        self.append_token = b""
        self.bare_sha = ""  # the append's commands as a script that runs them and nothing else (``bare_script``)
        self.bare_varying: list[tuple[int, int]] = []

    def seed(self, progress: Callable[[str], None]) -> None:
        s = self.settings
        for i in range(s.get_sessions):
            self.memory.add_memory(SessionRef(TENANT, f"get-{i}"), seed_messages(i), context=CONTEXT)
        for i in range(s.list_sessions):
            self.memory.add_memory(SessionRef(LIST_TENANT, f"listed-{i}"), seed_messages(i)[:2])
        conversations = load_set()
        self.queries = [q.text for conv in conversations for q in conv.questions]
        self.embedder.prepare(self.queries)
        texts = generated_messages(conversations, max(s.retrieval_messages, s.user_messages) * 4, seed=17)
        for i in range(s.retrieval_sessions):
            self._indexed(SessionRef(TENANT, f"search-{i}"), texts, offset=i, count=s.retrieval_messages)
        for u in range(s.users):
            for j in range(s.user_sessions):
                session = SessionRef(TENANT, f"user-{u}-session-{j}")
                self._indexed(session, texts, offset=u * 7 + j, count=s.user_messages, user_id=f"user-{u}")
        self.credentials = [
            Credential(kind="bearer", secret=self.api_keys.create(TENANT, label=f"bench {i}")[0])
            for i in range(self.settings.clients)
        ]
        if not self.cluster:  # the append's commands, as its script ran them for a session that exists
            template = SessionRef(TENANT, "floor-template")
            self.memory.add_memory(template, POST_PAIR)
            client = self.connector.client(binary=True)
            assert isinstance(client, redis.Redis)
            self.append_commands = scripted_commands(client, lambda: self.memory.add_memory(template, POST_PAIR))
            self.append_tag = Keys(self.config.key_prefix).session(template).tag.encode()
            self.append_now, self.append_token = call_values(self.append_commands, b"floor-template")
            for i in range(s.get_sessions):  # the floor's sessions, as the POST route's are before it runs
                floor = SessionRef(TENANT, f"floor-{i}")
                self.memory.add_memory(floor, POST_PAIR)
                self.floor_tags.append(Keys(self.config.key_prefix).session(floor).tag.encode())
            if not self.append_commands or not any(self.append_tag in arg for c in self.append_commands for arg in c):
                raise RuntimeError(f"the append's scripted commands were not captured: {self.append_commands}")
            script, self.bare_varying = bare_script(self._floor_commands(0), self._floor_commands(1))
            self.bare_sha = str(client.script_load(script))
        progress("redis cost: seeded")

    def _indexed(
        self,
        session: SessionRef,
        texts: Sequence[tuple[str, str]],
        *,
        offset: int,
        count: int,
        user_id: str | None = None,
    ) -> None:
        last = 0
        chosen = [texts[(offset * 31 + n) % len(texts)] for n in range(count)]
        for at in range(0, count, 100):
            batch = [NewMessage(role, text) for role, text in chosen[at : at + 100]]
            self.memory.add_memory(session, batch, user_id=user_id)
            last = at + len(batch)
        outcome = self.indexer.run(SessionJob(session=session, last_id=last))
        if outcome.indexed != count:
            raise RuntimeError(f"{session.id}: {outcome.indexed} of {count} messages indexed")

    def check(self) -> None:
        """Each route answers what it should, once, before anything is measured."""
        snapshot = self.memory.get_memory(SessionRef(TENANT, "get-0"))
        if len(snapshot.messages) != WINDOW or snapshot.context != CONTEXT:
            raise RuntimeError(f"GET returned {len(snapshot.messages)} messages, context {snapshot.context!r}")
        page = self.memory.list_sessions(LIST_TENANT, page=1, size=10)
        if len(page.session_ids) != 10 or page.total != self.settings.list_sessions:
            raise RuntimeError(f"listing returned {page}")
        if len(self.retrieval.retrieve(SessionRef(TENANT, "search-0"), self.queries[0], K)) != K:
            raise RuntimeError("session retrieval returned fewer than k hits")
        if len(self.retrieval.retrieve_user(UserRef(TENANT, "user-0"), self.queries[0], K)) != K:
            raise RuntimeError("user retrieval returned fewer than k hits")
        if self.api_keys.authenticate(self.credentials[0]).tenant != TENANT:
            raise RuntimeError("the API key did not authenticate")

    def prepare(self, route: str, ops: int) -> list[Callable[[], object]]:
        """The route's ``ops`` operations (for DELETE, the sessions it deletes are seeded here, unmeasured)."""
        s = self.settings
        memory, retrieval = self.memory, self.retrieval
        get_refs = [SessionRef(TENANT, f"get-{i}") for i in range(s.get_sessions)]
        if route == "GET memory":
            return [partial(memory.get_memory, get_refs[i % len(get_refs)]) for i in range(ops)]
        if route in ("POST 2 messages", "POST, no quotas"):
            # sessions of their own for each (a session counted once, with quotas on, stays counted)
            unquoted = route == "POST, no quotas"
            prefix = "post-uncounted" if unquoted else "post"
            post_refs = [SessionRef(TENANT, f"{prefix}-{i}") for i in range(s.get_sessions)]
            writer = self.unquoted if unquoted else memory
            return [partial(writer.add_memory, post_refs[i % len(post_refs)], POST_PAIR) for i in range(ops)]
        if route in (APPEND_FLOOR, APPEND_SCRIPTED):
            client = self.connector.client(binary=True)
            first, self.copies = self.copies, self.copies + ops
            send = self._piped_append if route == APPEND_FLOOR else self._scripted_append
            return [partial(send, client, first + i) for i in range(ops)]
        if route == "DELETE":
            doomed = [SessionRef(TENANT, f"deleted-{self.deleted + i}") for i in range(ops)]
            self.deleted += ops
            for i, ref in enumerate(doomed):
                memory.add_memory(ref, seed_messages(i), context=CONTEXT)
            return [partial(memory.delete_memory, ref) for ref in doomed]
        if route == "list sessions":
            return [partial(memory.list_sessions, LIST_TENANT, page=1, size=10) for _ in range(ops)]
        queries = self.queries
        if route == "session retrieval":
            refs = [SessionRef(TENANT, f"search-{i}") for i in range(s.retrieval_sessions)]
            return [partial(retrieval.retrieve, refs[i % len(refs)], queries[i % len(queries)], K) for i in range(ops)]
        if route == "user retrieval":
            users = [UserRef(TENANT, f"user-{u}") for u in range(s.users)]
            return [
                partial(retrieval.retrieve_user, users[i % len(users)], queries[i % len(queries)], K)
                for i in range(ops)
            ]
        if route == "API key, cold cache":
            keys, credentials = self.api_keys, self.credentials
            return [partial(keys.authenticate, credentials[i % len(credentials)]) for i in range(ops)]
        if route == PING:
            client = self.connector.client()
            if isinstance(client, RedisCluster):
                return [partial(client.ping, target_nodes=RedisCluster.RANDOM) for _ in range(ops)]
            return [client.ping for _ in range(ops)]
        raise ValueError(f"no route {route!r}")

    def _floor_commands(self, copy: int) -> list[list[bytes]]:
        """The append's commands for one copy, on one of ``get_sessions`` sessions grown as the POST route's are (its
        tag and id in place of the captured session's); the messages' ids (scores, and the ``"id":`` each member
        starts with) moved past every earlier copy's, so that each copy adds members as an append does; its call
        token its own and its time later than the copy's before (so the token is added and the listing's score
        moved, as an append does; the copies' token sets are not trimmed, as the append's are once in 16 calls)."""
        tag, name = self.append_tag, b"floor-template"
        target = copy % self.settings.get_sessions
        fresh_tag, fresh_name = self.floor_tags[target], f"floor-{target}".encode()
        shift = 1_000_000 + 2 * copy  # two messages per copy
        # each copy is a call of its own, later than the one before: a new token, a new time
        fresh = {self.append_now: b"%d" % (int(self.append_now) + 1 + copy), self.append_token: b"%032x" % copy}
        commands: list[list[bytes]] = []
        for command in self.append_commands:
            args = [fresh.get(arg) or arg.replace(tag, fresh_tag).replace(name, fresh_name) for arg in command]
            if args[0].upper() == b"ZADD" and len(args) > 3 and args[3].startswith(b'{"id":'):
                for at in range(2, len(args) - 1, 2):  # score, member: a message of the session
                    old = int(args[at])
                    args[at] = b"%d" % (old + shift)
                    args[at + 1] = args[at + 1].replace(b'{"id":%d,' % old, b'{"id":%d,' % (old + shift), 1)
            commands.append(args)
        return commands

    def _piped_append(self, client: redis.Redis | RedisCluster, copy: int) -> None:
        """The append's commands in one plain pipeline (``_floor_commands``)."""
        pipe = client.pipeline(transaction=False)
        for args in self._floor_commands(copy):
            pipe.execute_command(*args)
        pipe.execute()

    def _scripted_append(self, client: redis.Redis | RedisCluster, copy: int) -> None:
        """The same commands run by a script that does nothing else (``bare_script``), in one ``EVALSHA``."""
        commands = self._floor_commands(copy)
        keys = [command[1] for command in commands]
        values = [commands[c][a] for c, a in self.bare_varying]
        client.evalsha(self.bare_sha, len(keys), *keys, *values)

    def close(self) -> None:
        self.connector.close()


# -- the measurement ------------------------------------------------------------------------------------------------


@dataclass
class RouteRow:
    route: str
    round_trips_per_op: float
    commands_per_op: float
    scripted_per_op: float  # commands run by scripts, per op
    commandstats_us_per_op: float
    cpu_us_per_op: float  # less the idle server's CPU over the phase
    cpu_raw_us_per_op: float  # as INFO cpu says it
    x_ping: float  # CPU per op / PING's, within each round (median)
    x_round_trips_ping: float  # CPU per op / (round trips per op x PING's), within each round (median)
    ops_per_s: float
    commands: dict[str, float]  # per op, by name (median round)
    upkeep_round_trips: int  # connection handshakes and health checks, over all rounds (left out)
    failed_calls: int
    unmatched: list[str]
    samples: list[Sample] = field(repr=False)


@dataclass
class ServerResult:
    kind: str  # standalone | cluster
    nodes: int
    rounds: int
    ops: int
    clients: int
    idle_cpu_us_per_s: float  # the server's CPU with no client, per second (its cron; a cluster's bus too)
    rows: list[RouteRow]


@dataclass
class CostResult:
    redis_version: str
    python: str
    cpu_count: int | None
    load_average: list[float]
    settings: CostSettings
    servers: list[ServerResult]


def idle_cpu(observers: Sequence[redis.Redis], seconds: float = 2.0) -> float:
    before = [cpu_seconds(o.info("cpu")) for o in observers]
    time.sleep(seconds)
    after = [cpu_seconds(o.info("cpu")) for o in observers]
    return sum(b - a for a, b in zip(before, after, strict=True)) * 1e6 / seconds


def net_cpu_per_op(sample: Sample, idle_us_per_s: float) -> float:
    """The server's CPU per operation, less what it spends idle (its cron; a cluster's bus) over the phase."""
    return max(0.0, sample.cpu_usec - idle_us_per_s * sample.seconds) / sample.ops


def rows_of(samples: Mapping[str, list[Sample]], idle_us_per_s: float) -> list[RouteRow]:
    floor = [net_cpu_per_op(f, idle_us_per_s) for f in samples[PING]]
    rows: list[RouteRow] = []
    for route, runs in samples.items():
        cpu = [net_cpu_per_op(s, idle_us_per_s) for s in runs]
        x_ping = [c / f for c, f in zip(cpu, floor, strict=True)]
        x_trips = [
            c / (s.round_trips_per_op * f) if s.round_trips else float("nan")
            for s, c, f in zip(runs, cpu, floor, strict=True)
        ]
        middle = sorted(runs, key=lambda s: s.cpu_per_op)[len(runs) // 2]
        rows.append(
            RouteRow(
                route=route,
                round_trips_per_op=statistics.median(s.round_trips_per_op for s in runs),
                commands_per_op=statistics.median(s.commands_per_op for s in runs),
                scripted_per_op=statistics.median(s.scripted_calls / s.ops for s in runs),
                commandstats_us_per_op=statistics.median(s.commandstats_usec / s.ops for s in runs),
                cpu_us_per_op=statistics.median(cpu),
                cpu_raw_us_per_op=statistics.median(s.cpu_per_op for s in runs),
                x_ping=statistics.median(x_ping),
                x_round_trips_ping=statistics.median(x_trips),
                ops_per_s=statistics.median(s.ops / s.seconds for s in runs),
                commands={name: n / middle.ops for name, n in sorted(middle.commands.items())},
                upkeep_round_trips=sum(s.upkeep_round_trips for s in runs),
                failed_calls=sum(s.failed_calls for s in runs),
                unmatched=sorted({name for s in runs for name in s.unmatched}),
                samples=runs,
            )
        )
    return rows


def measure(
    kind: str,
    url: str,
    observers: Sequence[redis.Redis],
    settings: CostSettings,
    rounds: int,
    progress: Callable[[str], None],
) -> ServerResult:
    routes = Routes(url, settings, cluster=kind == "cluster")
    try:
        routes.seed(progress)
        routes.check()
        idle_before = idle_cpu(observers)
        for route in routes.routes:  # warm-up, not recorded: every client's connection open, every script loaded
            run_phase(routes.prepare(route, settings.clients * 4), settings.clients, observers)
        samples: dict[str, list[Sample]] = {route: [] for route in routes.routes}
        for round_no in range(1, rounds + 1):
            for route in random.sample(routes.routes, len(routes.routes)):
                ops = max(settings.clients, settings.ops // FEWER_OPS.get(route, 1))
                samples[route].append(run_phase(routes.prepare(route, ops), settings.clients, observers))
            progress(f"redis cost ({kind}): round {round_no}/{rounds}")
        idle = (idle_before + idle_cpu(observers)) / 2
    finally:
        routes.close()
    return ServerResult(
        kind=kind,
        nodes=len(observers),
        rounds=rounds,
        ops=settings.ops,
        clients=settings.clients,
        idle_cpu_us_per_s=idle,
        rows=rows_of(samples, idle),
    )


def benchmark(settings: CostSettings, progress: Callable[[str], None], *, cluster: bool = True) -> CostResult:
    servers: list[ServerResult] = []
    with counted_sends():
        with EmbeddedRedis() as server, server.client(decode_responses=True) as observer:
            version = str(observer.info("server")["redis_version"])
            servers.append(measure("standalone", server.url, [observer], settings, settings.rounds, progress))
        if cluster:
            with EmbeddedRedisCluster() as nodes:
                observers = [node.client(decode_responses=True) for node in nodes.nodes]
                try:
                    servers.append(
                        measure("cluster", nodes.url, observers, settings, settings.cluster_rounds, progress)
                    )
                finally:
                    for client in observers:
                        client.close()
    return CostResult(
        redis_version=version,
        python=platform.python_version(),
        cpu_count=os.cpu_count(),
        load_average=[round(x, 2) for x in os.getloadavg()],
        settings=settings,
        servers=servers,
    )


def ratio_to(server: ServerResult, route: str, floor: str) -> float | None:
    """The route's CPU per op over the floor route's, within each round (the median of the rounds' ratios); None
    where either did not run."""
    rows = {row.route: row for row in server.rows}
    if route not in rows or floor not in rows:
        return None
    idle = server.idle_cpu_us_per_s
    pairs = zip(rows[route].samples, rows[floor].samples, strict=True)
    return statistics.median(net_cpu_per_op(a, idle) / net_cpu_per_op(b, idle) for a, b in pairs)


def floor_lines(server: ServerResult) -> list[str]:
    """The append against its two one-round-trip floors: its commands sent as a plain pipeline, and the same
    commands run by a script that does nothing else."""
    lines: list[str] = []
    for route in ("POST 2 messages", "POST, no quotas", APPEND_SCRIPTED):
        piped, scripted = ratio_to(server, route, APPEND_FLOOR), ratio_to(server, route, APPEND_SCRIPTED)
        if piped is None:
            continue
        against = f"{piped:.2f}x its commands piped" if route != APPEND_SCRIPTED else f"{piped:.2f}x them piped"
        if route != APPEND_SCRIPTED and scripted is not None:
            against += f", {scripted:.2f}x them in a bare script"
        lines.append(f"{route}: {against}")
    return lines


# -- report ---------------------------------------------------------------------------------------------------------


def table_lines(server: ServerResult) -> list[str]:
    lines = [
        f"{'route':22} {'RT/op':>6} {'cmds/op':>8} {'scripted':>8} {'cmdstat us':>10} {'cpu us':>7} "
        f"{'x PING':>7} {'x RT*PING':>9} {'ops/s':>7}"
    ]
    for row in server.rows:
        lines.append(
            f"{row.route:22} {row.round_trips_per_op:6.2f} {row.commands_per_op:8.2f} {row.scripted_per_op:8.1f} "
            f"{row.commandstats_us_per_op:10.1f} {row.cpu_us_per_op:7.1f} {row.x_ping:6.2f}x "
            f"{row.x_round_trips_ping:8.2f}x {row.ops_per_s:7.0f}"
        )
    return lines


def print_result(result: CostResult, number: int) -> None:
    s = result.settings
    for server in result.servers:
        print(
            f"\n{number}. Redis cost per operation, {server.kind} "
            f"({server.nodes} node{'s' if server.nodes > 1 else ''}, "
            f"Redis {result.redis_version}): {server.clients} client threads, {server.ops} ops per route per round, "
            f"{server.rounds} interleaved round{'s' if server.rounds > 1 else ''} (medians)"
        )
        print(
            "   RT: round trips counted on the client; cmds: commands the client sent; scripted: commands Lua scripts"
            " ran;\n   cmdstat: INFO commandstats time of the commands sent; cpu: the server's used_cpu_user+sys;"
            " x PING: cpu / the PING floor's;\n   x RT*PING: cpu / (RT x the PING floor's), within each round"
        )
        for line in table_lines(server):
            print("   " + line)
        for line in floor_lines(server):
            print("   " + line)
        print(
            f"   cpu is net of the idle server's {server.idle_cpu_us_per_s:.0f} us/s over each phase (measured 2 s"
            " before and after the rounds);\n   retrieval routes run fewer ops per round ("
            + ", ".join(f"{route} 1/{n}" for route, n in FEWER_OPS.items())
            + ")"
        )
        print("   commands per op:")
        for row in server.rows:
            named = ", ".join(f"{name} {n:.2f}" for name, n in row.commands.items())
            notes = []
            if row.upkeep_round_trips:
                notes.append(f"{row.upkeep_round_trips} upkeep round trips left out")
            if row.failed_calls:
                notes.append(f"{row.failed_calls} failed calls")
            if row.unmatched:
                notes.append(f"not in commandstats: {', '.join(row.unmatched)}")
            print(f"   {row.route:22} {named}" + (f"  ({'; '.join(notes)})" if notes else ""))
    print(
        f"   (sessions: GET/POST over {s.get_sessions}, listing of {s.list_sessions}, retrieval of "
        f"{s.retrieval_sessions} x {s.retrieval_messages} messages, {s.users} users x {s.user_sessions} sessions x "
        f"{s.user_messages} messages; load {result.load_average}, {result.cpu_count} CPUs)"
    )


def summary_lines(result: CostResult) -> list[str]:
    lines: list[str] = []
    for server in result.servers:
        ping = next(row for row in server.rows if row.route == PING)
        lines.append(
            f"Redis cost per op, {server.kind} (Redis {result.redis_version}, {server.clients} clients, "
            f"{server.rounds}x{server.ops} ops per route; PING floor {ping.cpu_us_per_op:.1f} us CPU/op; "
            "`make bench-redis`):"
        )
        lines += ["  " + line for line in table_lines(server)]
        lines += ["  " + line for line in floor_lines(server)]
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer ops and rounds (a rough figure in under a minute)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--clients", type=int, help="concurrent client threads (default 16)")
    parser.add_argument("--ops", type=int, help="operations per route per round")
    parser.add_argument("--rounds", type=int, help="interleaved rounds on the standalone server")
    parser.add_argument("--no-cluster", action="store_true", help="skip the 3-node cluster")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("motorhead").setLevel(logging.WARNING)  # the indexer logs each job of the seeding
    base = QUICK if args.quick else DEFAULT
    settings = CostSettings(
        **{
            **asdict(base),
            "clients": max(1, args.clients or base.clients),
            "ops": max(1, args.ops or base.ops),
            "rounds": max(1, args.rounds or base.rounds),
        }
    )
    return report(
        lambda progress: benchmark(settings, progress, cluster=not args.no_cluster),
        print_result,
        summary_lines,
        json_path=args.json,
    )


if __name__ == "__main__":
    sys.exit(main())
