"""The Redis client adapter: one lazily created client (standalone or cluster), bounded timeouts.

TLS comes from the URL alone, as redis-py parses it: ``rediss://host:6379/0`` verifies the server's certificate
against the system's CAs and checks its host name; ``?ssl_ca_certs=/path/ca.pem`` names a private CA bundle.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn, TypeAlias
from urllib.parse import unquote, urlsplit, urlunsplit

from redis import Redis
from redis import exceptions as redis_errors
from redis.backoff import ExponentialBackoff
from redis.client import Pipeline
from redis.cluster import RedisCluster
from redis.credentials import CredentialProvider
from redis.retry import Retry

from motorhead.adapters.redis_db import charge
from motorhead.errors import (
    ConfigError,
    MotorheadError,
    RateLimitedError,
    StoreDegradedError,
    StoreUnavailableError,
)
from motorhead.observability import subsegment
from motorhead.settings import Settings

RedisClient: TypeAlias = "Redis | RedisCluster"

logger = logging.getLogger(__name__)


class PasswordUnavailableError(redis_errors.ConnectionError):
    """The password getter failed while a new connection was authenticating.

    A ``redis.ConnectionError`` on purpose: redis-py closes a fresh socket only when its handshake raises a
    ``RedisError``; anything else would leave the socket open and unauthenticated in the pool (every later command
    failing with ``NOAUTH``). ``mapped_errors`` turns it back into what the getter raised.
    """


_UNREACHABLE = (redis_errors.ConnectionError, redis_errors.TimeoutError)

# Redis answered, but its state refuses the command for now. Told apart by redis-py's exception type where it has
# one (its parser picks the type from the reply's error code)...
_DEGRADED_TYPES = (
    redis_errors.BusyLoadingError,  # LOADING: a ConnectionError to redis-py, so checked first
    redis_errors.OutOfMemoryError,  # OOM: maxmemory reached with a noeviction policy
    redis_errors.ReadOnlyError,  # READONLY: a replica, e.g. the old primary during a failover
    redis_errors.ClusterError,  # CLUSTERDOWN, MASTERDOWN, and a cluster client's "TTL exhausted" after MOVED/ASK storms
    redis_errors.TryAgainError,  # TRYAGAIN: a multi-key command during resharding
    redis_errors.AskError,  # MOVED and ASK reaching a standalone client: a cluster resharding under it
    redis_errors.SlotNotCoveredError,  # a cluster client's view holds no node for the slot (a node lost)
)
# ... and by the reply's error code (its first word) where it has none. Nothing past that word is read: the rest is
# free text that changes between versions.
_DEGRADED_CODES = frozenset(
    {
        "BUSY",  # a script or a module command is running past busy-reply-threshold
        "NOREPLICAS",  # fewer healthy replicas than min-replicas-to-write
        "MISCONF",  # writes stopped because the last RDB save failed (a full disk)
    }
)
# redis-py's own prefix on the error of a pipelined command, before the server's reply; the command it quotes is
# shortened to 100 characters.
_PIPELINE_PREFIX = re.compile(r"Command # \d+ \(.{0,100}?\) of pipeline caused error: ")
_PUBLIC = "redis unavailable"
_DETAIL_CHARS = 300


def reply_code(exc: redis_errors.ResponseError) -> tuple[str, str]:
    """The error code of the server's reply and the rest of it (``("BUSY", "Redis is busy running a script...")``).

    redis-py keeps the code in ``status_code`` for the codes it knows and hands the rest as the message; for the
    others the message is the whole reply. A pipelined command's message starts with redis-py's own prefix, which
    quotes the command (with its arguments: user data, never logged) and is dropped.
    """
    text = str(exc.args[0]) if exc.args else ""
    prefix = _PIPELINE_PREFIX.match(text)
    if prefix is not None:
        text = text[prefix.end() :]
    status: object = getattr(exc, "status_code", None)
    if isinstance(status, str) and status:
        return status, text
    code, _, rest = text.partition(" ")
    return code, rest


def _is_degraded(exc: Exception) -> bool:
    """Whether ``exc`` is Redis refusing the command for a passing state of its own."""
    if isinstance(exc, _DEGRADED_TYPES):
        return True
    return isinstance(exc, redis_errors.ResponseError) and reply_code(exc)[0] in _DEGRADED_CODES


def _describe(exc: Exception) -> str:
    """What the log says of a Redis failure: its type, the reply's code, the rest of the reply (never the command)."""
    if isinstance(exc, redis_errors.ResponseError):
        code, rest = reply_code(exc)
        text = f"{type(exc).__name__} {code}: {rest}"
    else:
        status = getattr(exc, "status_code", None)  # LOADING arrives as a ConnectionError with its code
        text = f"{type(exc).__name__} {status}: {exc}" if status else f"{type(exc).__name__}: {exc}"
    return text[:_DETAIL_CHARS]


@contextmanager
def mapped_errors() -> Iterator[None]:
    """The one place where Redis's failures become domain errors, with a fixed message and the detail logged.

    - Unreachable or silent (connection refused or dropped, a timeout; a wrong password too: redis-py's
      ``AuthenticationError``, and the server's reply never holds the password): ``StoreUnavailableError``.
    - Reachable but refusing for now (``_DEGRADED_TYPES``, ``_DEGRADED_CODES``): ``StoreDegradedError``, a kind of
      ``StoreUnavailableError``. Both are a 503 with ``Retry-After``, or a retried job.
    - A password that could not be read: the getter's own domain error (e.g. ``SecretUnavailableError``), which says
      what actually failed.
    - Any other reply error (a wrong type, a Lua bug, a refused command) is a bug of ours, not a passing state: it
      is raised as it is, so the HTTP layer answers a generic 500 and logs it with its trace.

    A cluster that no startup node answers arrives as redis-py's ``RedisClusterException`` caused by one of these.
    Every use is also a traced subsegment ``## redis`` where tracing is on.
    """
    try:
        with subsegment("redis"):
            yield
    except PasswordUnavailableError as exc:
        _raise_password_failure(exc)
    except redis_errors.RedisError as exc:
        _raise_mapped(exc, cause=exc)
        raise
    except redis_errors.RedisClusterException as exc:
        cause = exc.__cause__
        if isinstance(cause, PasswordUnavailableError):
            _raise_password_failure(cause)
        _raise_mapped(exc, cause=exc)
        if isinstance(cause, Exception):
            _raise_mapped(cause, cause=exc)
        raise


def _raise_mapped(exc: Exception, *, cause: BaseException) -> None:
    """Raise the domain error of ``exc`` (chained to ``cause``, the exception caught) and log why; return when
    ``exc`` has none."""
    if _is_degraded(exc):  # first: LOADING is a ConnectionError to redis-py
        detail = _describe(exc)
        logger.warning("redis refuses commands for now", extra={"error": detail})
        raise StoreDegradedError(_PUBLIC, detail=detail) from cause
    if isinstance(exc, _UNREACHABLE):
        detail = _describe(exc)
        logger.warning("redis unavailable", extra={"error": detail})
        raise StoreUnavailableError(_PUBLIC, detail=detail) from cause


def _raise_password_failure(exc: PasswordUnavailableError) -> NoReturn:
    """Raise what the password getter raised if it is a domain error (its own cause kept), else a 503."""
    cause = exc.__cause__
    if isinstance(cause, MotorheadError):
        raise cause from cause.__cause__
    detail = f"the password could not be read ({type(cause).__name__})"
    logger.warning("redis unavailable", extra={"error": detail})
    raise StoreUnavailableError(_PUBLIC, detail=detail) from cause


class _PasswordProvider(CredentialProvider):
    """Asks ``password`` on every new connection (redis-py calls it while authenticating one), so a rotated
    password reaches the next connection without a cold start; the connections already open stay authenticated."""

    def __init__(self, password: Callable[[], str], username: str | None) -> None:
        self._password = password
        self._username = username

    def get_credentials(self) -> tuple[str] | tuple[str, str]:
        try:
            secret = self._password()
        except Exception as exc:
            raise PasswordUnavailableError("the redis password could not be read") from exc
        return (self._username, secret) if self._username else (secret,)


def _url_and_credentials(url: str, password: Callable[[], str] | None) -> tuple[str, _PasswordProvider | None]:
    """The URL to hand to redis-py and, with a password getter, the credential provider using it.

    redis-py refuses a credential provider next to a user name or password taken from the URL, so the user name
    moves from the URL into the provider. A URL that carries a password as well is a configuration error: two
    sources for one password would hide which one is in use.
    """
    if password is None:
        return url, None
    parts = urlsplit(url)
    if parts.password is not None:
        raise ConfigError(
            "REDIS_URL: holds a password while one is read elsewhere (MOTORHEAD_REDIS_PASSWORD_SECRET); keep only one"
        )
    if "@" not in parts.netloc:
        return url, _PasswordProvider(password, None)
    userinfo, _, hostport = parts.netloc.rpartition("@")
    username = unquote(userinfo) or None
    return urlunsplit(parts._replace(netloc=hostport)), _PasswordProvider(password, username)


def _rate_limited(wait_ms: int) -> RateLimitedError:
    return RateLimitedError("too many requests for this tenant; retry later", retry_after=wait_ms / 1000)


def _one_retry() -> Retry:
    """One quick retry (a dropped idle connection is reopened at once), so a failure costs about one timeout."""
    return Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=1)


class RedisConnector:
    """Creates the client on first use, so a cold start never blocks on the network.

    ``MOTORHEAD_REDIS_MODE=auto`` asks the server (``INFO cluster``) whether it runs in cluster mode, which is what
    MemoryDB and ElastiCache cluster-mode endpoints need; ``standalone``/``cluster`` skip that question.

    ``password``, when given, is called for each new connection (the cluster-mode probe's included) and its answer
    sent with ``AUTH``, together with the URL's user name if it has one (ACL users); the URL must then carry no
    password. Reading it per connection, not once, lets a rotated secret in without a cold start.
    """

    def __init__(self, settings: Settings, *, password: Callable[[], str] | None = None) -> None:
        if not settings.redis_url:
            raise ConfigError("REDIS_URL: not set (e.g. redis://host:6379/0, rediss:// for TLS)")
        self._url, credentials = _url_and_credentials(settings.redis_url, password)
        self._mode = settings.redis_mode
        self._options: dict[str, object] = {
            "decode_responses": True,
            "socket_connect_timeout": settings.redis_connect_timeout,
            "socket_timeout": settings.redis_socket_timeout,
            "health_check_interval": 30,
        }
        if credentials is not None:
            self._options["credential_provider"] = credentials
        self._clients: dict[bool, Redis | RedisCluster] = {}
        self._scripts: dict[tuple[str, bool], Callable[..., Any]] = {}
        self._is_cluster: bool | None = None
        self._acquire_loaded = False
        self._lock = threading.Lock()

    def client(self, *, binary: bool = False) -> Redis | RedisCluster:
        """The shared client; ``binary`` gives one that returns bytes (vectors) instead of decoded text. A request
        whose rate charge is still owed (``charge.py``) pays it first, in a round trip of its own: whatever the caller
        does with the client next, the tenant's token was taken before (``run_script`` and ``pipelined`` carry it in
        their own round trip instead)."""
        owed = charge.take()
        if owed is not None:
            self._pay_now(owed)
        return self._client(binary=binary)

    def _client(self, *, binary: bool = False) -> Redis | RedisCluster:
        found = self._clients.get(binary)
        if found is None:
            with self._lock:
                found = self._clients.get(binary)
                if found is None:
                    found = self._clients[binary] = self._connect(decode=not binary)
        return found

    def run_script(
        self, source: str, keys: Sequence[str], args: Sequence[Any], *, binary: bool = False, charged: bool = True
    ) -> Any:
        """Run a Lua script (registered once per process; EVALSHA, reloaded if the server lost it), errors mapped.
        The request's rate charge, if owed, rides on it (on a single Redis: the script runs only if the tenant had a
        token, else ``RateLimitedError``); ``charged=False`` leaves it owed."""
        owed = charge.take() if charged else None
        if owed is not None and self.is_cluster():
            self._pay_now(owed)
            owed = None
        if owed is not None:
            source, keys, args = charge.charged(source), [*keys, owed.key], [*args, *owed.arguments()]
        script = self._scripts.get((source, binary))
        with mapped_errors():
            if script is None:
                script = self._scripts[(source, binary)] = self._client(binary=binary).register_script(source)
            try:
                return script(keys=list(keys), args=list(args))
            except redis_errors.ResponseError as exc:
                if owed is not None and str(exc).startswith(charge.REFUSED + " "):
                    raise _rate_limited(int(str(exc).split()[1])) from None
                raise

    def run_script_beside(
        self,
        source: str,
        keys: Sequence[str],
        args: Sequence[Any],
        beside: Callable[[Pipeline], object],
        *,
        binary: bool = False,
    ) -> tuple[Any, list[Any]]:
        """A script (first) and the commands ``beside`` queues, in one pipeline on a server without slots: the
        script's reply (errors raised, the request's rate charge carried as ``run_script`` carries it) and the other
        commands' replies (an error among them is returned, not raised, for the caller to handle)."""
        owed = charge.take()
        if owed is not None:
            source, keys, args = charge.charged(source), [*keys, owed.key], [*args, *owed.arguments()]
        sha = hashlib.sha1(source.encode("utf-8")).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1
        with mapped_errors():
            client = self._client(binary=binary)
            for attempt in range(2):
                pipe = client.pipeline(transaction=False)
                pipe.evalsha(sha, len(keys), *keys, *args)
                beside(pipe)
                replies: list[Any] = pipe.execute(raise_on_error=False)
                first = replies[0]
                if attempt == 0 and isinstance(first, redis_errors.NoScriptError):
                    client.script_load(source)
                    continue
                if isinstance(first, redis_errors.ResponseError):
                    if owed is not None and str(first).startswith(charge.REFUSED + " "):
                        raise _rate_limited(int(str(first).split()[1]))
                    raise first
                if isinstance(first, Exception):
                    raise first
                return first, replies[1:]
        raise AssertionError("unreachable")  # pragma: no cover

    def pipelined(self, commands: Callable[[Pipeline], object], *, binary: bool = False) -> list[Any]:
        """The replies of the commands ``commands`` queues on a pipeline (not a transaction), errors mapped; the
        request's rate charge, if owed, is sent first in the same round trip, and a refusal raises
        ``RateLimitedError`` (the commands were reads or ran anyway: only read-only commands belong here)."""
        owed = charge.take()
        with mapped_errors():
            if owed is not None and self.is_cluster():
                self._pay_now(owed)
                owed = None
            client = self._client(binary=binary)
            pipe = client.pipeline(transaction=False)
            if owed is not None:
                pipe.evalsha(self._acquire_sha(), 1, owed.key, *owed.arguments())
            commands(pipe)
            replies: list[Any] = pipe.execute(raise_on_error=owed is None)
            if owed is None:
                return replies
            paid, rest = replies[0], replies[1:]
            if isinstance(paid, redis_errors.NoScriptError):  # the server lost it: load it, pay in a trip of its own
                self._acquire_loaded = False
                paid = self._pay_now(owed)
            elif isinstance(paid, Exception):
                raise paid
            elif int(paid) > 0:
                raise _rate_limited(int(paid))
            for reply in rest:
                if isinstance(reply, Exception):
                    raise reply
            return rest

    def _acquire_sha(self) -> str:
        """The rate charge's script, loaded once per process (its SHA-1 is what a pipeline sends)."""
        sha = hashlib.sha1(charge.ACQUIRE.encode("utf-8")).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1
        if not self._acquire_loaded:
            self._client().script_load(charge.ACQUIRE)
            self._acquire_loaded = True
        return sha

    def _pay_now(self, owed: charge.Charge) -> int:
        """Take the charge's token in a round trip of its own; refused: ``RateLimitedError``."""
        wait = int(owed.pay(owed))
        if wait > 0:
            raise _rate_limited(wait)
        return 0

    def run_script_many(
        self, source: str, calls: Sequence[tuple[Sequence[str], Sequence[Any]]], *, binary: bool = False
    ) -> list[Any]:
        """Run a Lua script once per ``(keys, args)`` in one pipeline (EVALSHA), errors mapped; the replies in order. A
        server that lost the script gets it again. redis-py's cluster pipeline refuses scripts: on a cluster each call
        is its own round trip (each is on its own slot anyway)."""
        if not calls:
            return []
        if len(calls) == 1:  # the request's rate charge, if owed, rides on it
            return [self.run_script(source, calls[0][0], calls[0][1], binary=binary)]
        owed = charge.take()
        if owed is not None:  # several scripts: the token first, in a trip of its own, so none runs without it
            self._pay_now(owed)
        with mapped_errors():
            cluster = self.is_cluster()
        if cluster:
            return [self.run_script(source, keys, args, binary=binary) for keys, args in calls]
        sha = hashlib.sha1(source.encode("utf-8")).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1
        with mapped_errors():
            client = self._client(binary=binary)
            for attempt in range(2):
                pipe = client.pipeline(transaction=False)
                for keys, args in calls:
                    pipe.evalsha(sha, len(keys), *keys, *args)
                replies: list[Any] = pipe.execute(raise_on_error=False)
                if attempt == 0 and any(isinstance(reply, redis_errors.NoScriptError) for reply in replies):
                    client.script_load(source)  # on a cluster, every primary
                    continue
                for reply in replies:
                    if isinstance(reply, Exception):
                        raise reply
                return replies
        raise AssertionError("unreachable")  # pragma: no cover

    def is_cluster(self) -> bool:
        self._client()
        return bool(self._is_cluster)

    def _connect(self, *, decode: bool) -> Redis | RedisCluster:
        options = {**self._options, "decode_responses": decode}
        if self._is_cluster is None:
            if self._mode == "cluster":
                self._is_cluster = True
            elif self._mode == "standalone":
                self._is_cluster = False
            else:
                # redis-py's default retry (10 attempts, up to 1 s apart) would hold a request for seconds when
                # Redis is down or refuses the password: the probe retries as little as the standalone client.
                with Redis.from_url(self._url, retry=_one_retry(), **options) as probe:
                    self._is_cluster = int(probe.info("cluster").get("cluster_enabled", 0)) == 1
        if self._is_cluster:
            return RedisCluster.from_url(self._url, **options)
        return Redis.from_url(self._url, retry=_one_retry(), **options)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
