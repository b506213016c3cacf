"""The Redis client adapter: one lazily created client (standalone or cluster), bounded timeouts.

TLS comes from the URL alone, as redis-py parses it: ``rediss://host:6379/0`` verifies the server's certificate
against the system's CAs and checks its host name; ``?ssl_ca_certs=/path/ca.pem`` names a private CA bundle.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn, TypeAlias
from urllib.parse import unquote, urlsplit, urlunsplit

from redis import Redis
from redis import exceptions as redis_errors
from redis.backoff import ExponentialBackoff
from redis.cluster import RedisCluster
from redis.credentials import CredentialProvider
from redis.retry import Retry

from motorhead.errors import ConfigError, MotorheadError, StoreUnavailableError
from motorhead.settings import Settings

RedisClient: TypeAlias = "Redis | RedisCluster"


class PasswordUnavailableError(redis_errors.ConnectionError):
    """The password getter failed while a new connection was authenticating.

    A ``redis.ConnectionError`` on purpose: redis-py closes a fresh socket only when its handshake raises a
    ``RedisError``; anything else would leave the socket open and unauthenticated in the pool (every later command
    failing with ``NOAUTH``). ``mapped_errors`` turns it back into what the getter raised.
    """


_UNAVAILABLE = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
)


@contextmanager
def mapped_errors() -> Iterator[None]:
    """Redis unreachable, silent, loading or resharding becomes ``StoreUnavailableError`` (a 503, or a retried job).

    A wrong password is an unreachable Redis too (redis-py's ``AuthenticationError``; the server's reply never holds
    the password). A password that could not be read surfaces as the getter's own domain error (e.g.
    ``SecretUnavailableError``), which says what actually failed. A cluster that no startup node answers arrives as
    redis-py's ``RedisClusterException`` caused by one of the errors above.
    """
    try:
        yield
    except PasswordUnavailableError as exc:
        _raise_password_failure(exc)
    except _UNAVAILABLE as exc:
        raise StoreUnavailableError(f"redis unavailable: {type(exc).__name__}") from exc
    except redis_errors.RedisClusterException as exc:
        cause = exc.__cause__
        if isinstance(cause, PasswordUnavailableError):
            _raise_password_failure(cause)
        if isinstance(cause, _UNAVAILABLE):
            raise StoreUnavailableError(f"redis unavailable: {type(cause).__name__}") from exc
        raise


def _raise_password_failure(exc: PasswordUnavailableError) -> NoReturn:
    """Raise what the password getter raised if it is a domain error (its own cause kept), else a 503."""
    cause = exc.__cause__
    if isinstance(cause, MotorheadError):
        raise cause from cause.__cause__
    raise StoreUnavailableError(
        f"redis unavailable: the password could not be read ({type(cause).__name__})"
    ) from cause


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
        self._lock = threading.Lock()

    def client(self, *, binary: bool = False) -> Redis | RedisCluster:
        """The shared client; ``binary`` gives one that returns bytes (vectors) instead of decoded text."""
        found = self._clients.get(binary)
        if found is None:
            with self._lock:
                found = self._clients.get(binary)
                if found is None:
                    found = self._clients[binary] = self._connect(decode=not binary)
        return found

    def run_script(self, source: str, keys: Sequence[str], args: Sequence[Any], *, binary: bool = False) -> Any:
        """Run a Lua script (registered once per process; EVALSHA, reloaded if the server lost it), errors mapped."""
        script = self._scripts.get((source, binary))
        with mapped_errors():
            if script is None:
                script = self._scripts[(source, binary)] = self.client(binary=binary).register_script(source)
            return script(keys=list(keys), args=list(args))

    def is_cluster(self) -> bool:
        self.client()
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
