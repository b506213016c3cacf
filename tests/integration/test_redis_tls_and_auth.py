"""Redis over TLS (``rediss://``) and Redis passwords (``AUTH``, read per connection, from Secrets Manager too),
against real servers: a TLS-only redis-server with a throwaway CA, and servers started with ``--requirepass``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import boto3
import pytest
import redis
from redis.cluster import RedisCluster
from redis.connection import SSLConnection

from devserver.embedded_redis import EmbeddedRedis, EmbeddedRedisCluster, TlsFiles
from motorhead.adapters.redis_db.connector import RedisConnector
from motorhead.adapters.redis_db.keys import Keys
from motorhead.adapters.redis_db.store import RedisMemoryStore
from motorhead.composition.memory import redis_connector
from motorhead.core.values import NewMessage
from motorhead.errors import ConfigError, SecretUnavailableError, StoreUnavailableError
from motorhead.settings import Settings
from tests.support import ref

PASSWORD = "s3cret-Pa55word-4-redis"
ROTATED = "r0tated-Pa55word-4-redis"
SECRET_NAME = "redis/pw"


# -- helpers and fixtures ----------------------------------------------------------------------------------------


def settings_for(url: str, **more: str) -> Settings:
    """Timeouts that fail a test that hangs well inside its budget, yet leave room for a TLS handshake on a busy
    2-core machine (a refused connection fails at once whatever they are)."""
    values = {"REDIS_URL": url, "MOTORHEAD_REDIS_CONNECT_TIMEOUT": "5", "MOTORHEAD_REDIS_SOCKET_TIMEOUT": "5"}
    return Settings(**{**values, **more})  # type: ignore[arg-type]


def round_trip(connector: RedisConnector, session: str = "s") -> list[str]:
    """Append one message through the store and read the session back: what a POST then a GET do."""
    store = RedisMemoryStore(connector, Keys("mh"))
    store.append(ref(session), [NewMessage("Human", "hi")], context=None, namespace="", now_ms=1)
    return [message.content for message in store.read(ref(session), limit=10).messages]


def texts_of(exc: BaseException) -> str:
    """The messages and reprs of ``exc`` and of every exception chained to it (what a log or traceback shows)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return "\n".join(f"{error!s} {error!r}" for error in seen)


class PasswordHolder:
    """A password getter whose answer a test changes (a rotated secret), counting how often it is asked."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return self.value


@pytest.fixture
def password_server() -> Iterator[EmbeddedRedis]:
    """A fresh Redis started with ``--requirepass``, for one test (rotation changes its password)."""
    with EmbeddedRedis(extra_args=("--requirepass", PASSWORD)) as server:
        yield server


@pytest.fixture
def admin(password_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    """A client authenticated the ordinary way, to look at and reconfigure the password server."""
    client = redis.Redis(host=password_server.host, port=password_server.port, password=PASSWORD)
    yield client
    client.close()


@pytest.fixture
def aws(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared moto fixture, with powertools' caches expiring at once (a rotated password is read again)."""
    monkeypatch.setenv("POWERTOOLS_PARAMETERS_MAX_AGE", "0")


# -- TLS ---------------------------------------------------------------------------------------------------------


def test_store_given_a_rediss_url_with_the_ca_writes_and_reads_over_verified_tls(
    tls_redis_server: EmbeddedRedis,
) -> None:
    # Given a TLS-only server (no plain port) and the URL form a deployment uses for a private CA
    ca = quote(str(tls_redis_server.tls.ca_file if tls_redis_server.tls else ""), safe="/")
    url = f"rediss://127.0.0.1:{tls_redis_server.port}/0?ssl_ca_certs={ca}&ssl_cert_reqs=required"
    connector = RedisConnector(settings_for(url))
    with tls_redis_server.client(decode_responses=True) as admin:
        admin.flushall()
        plain_port = admin.config_get("port")["port"]

    # When a message is stored and read back through the store
    try:
        contents = round_trip(connector)
        pool = connector.client().connection_pool  # type: ignore[union-attr]
    finally:
        connector.close()

    # Then it round-trips, over TLS connections that verify the certificate and its host name
    assert contents == ["hi"]
    assert plain_port == "0"
    assert pool.connection_class is SSLConnection
    assert pool.connection_kwargs["ssl_cert_reqs"] == "required"
    assert pool.connection_kwargs.get("ssl_check_hostname", True) is True


@pytest.mark.parametrize("trust", ["another CA", "the system CAs"])
def test_connect_given_a_client_that_does_not_trust_the_ca_raises_store_unavailable(
    tls_redis_server: EmbeddedRedis, tmp_path: Path, trust: str
) -> None:
    # Given a client trusting another CA, or only the machine's public CAs
    query = f"?ssl_ca_certs={TlsFiles.self_signed(tmp_path).ca_file}" if trust == "another CA" else ""
    connector = RedisConnector(settings_for(f"rediss://127.0.0.1:{tls_redis_server.port}/0{query}"))

    # When it is used
    # Then the handshake is refused and the store reports Redis unavailable (a 503)
    with pytest.raises(StoreUnavailableError) as raised:
        round_trip(connector)
    assert "CERTIFICATE_VERIFY_FAILED" in texts_of(raised.value)
    connector.close()


def test_connect_given_a_certificate_for_another_host_raises_store_unavailable(tmp_path: Path) -> None:
    # Given a TLS server whose certificate, signed by a trusted CA, names another host than the one dialled
    files = TlsFiles.self_signed(tmp_path, hosts=("redis.example.internal",))
    with EmbeddedRedis(tls=files) as server:
        connector = RedisConnector(settings_for(f"rediss://127.0.0.1:{server.port}/0?ssl_ca_certs={files.ca_file}"))

        # When it is used
        # Then the host name check refuses it
        with pytest.raises(StoreUnavailableError) as raised:
            round_trip(connector)
        assert "CERTIFICATE_VERIFY_FAILED" in texts_of(raised.value)
        assert "127.0.0.1" in texts_of(raised.value)  # "IP address mismatch, certificate is not valid for ..."
        connector.close()


def test_connect_given_a_plain_redis_url_to_the_tls_port_fails_fast_as_store_unavailable(
    tls_redis_server: EmbeddedRedis,
) -> None:
    # Given a redis:// URL (no TLS) on the TLS port, with 0.5 s connect and socket timeouts
    connector = RedisConnector(settings_for(f"redis://127.0.0.1:{tls_redis_server.port}/0"))

    # When it is used
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError):
        round_trip(connector)
    elapsed = time.monotonic() - started

    # Then it fails within the timeouts (the probe and the command each try twice), not after redis-py's 10 retries
    assert elapsed < 2.5
    connector.close()


def test_store_given_tls_and_a_password_getter_writes_and_reads(
    tls_files: TlsFiles, tls_redis_server: EmbeddedRedis
) -> None:
    # Given a TLS-only server that also asks for a password (ElastiCache with in-transit encryption and AUTH), on
    # the TLS-capable binary the shared TLS server runs (which skips, saying why, where there is none)
    server = EmbeddedRedis(tls=tls_files, binary=tls_redis_server.binary, extra_args=("--requirepass", PASSWORD))
    with server:
        connector = RedisConnector(settings_for(server.url), password=lambda: PASSWORD)

        # When a message is stored and read back
        # Then it round-trips
        assert round_trip(connector) == ["hi"]
        connector.close()


# -- passwords ---------------------------------------------------------------------------------------------------


def test_store_given_a_password_getter_authenticates_each_new_connection(
    password_server: EmbeddedRedis, admin: redis.Redis
) -> None:
    # Given a URL without a password and a getter that knows it
    getter = PasswordHolder(PASSWORD)
    connector = RedisConnector(settings_for(password_server.url), password=getter)

    # When a message is stored and read back
    contents = round_trip(connector)
    connector.close()

    # Then it round-trips, the getter asked once per connection (the auto-mode probe's and the client's)
    assert contents == ["hi"]
    assert getter.calls == 2
    assert admin.dbsize() > 0


def test_store_given_a_wrong_password_raises_store_unavailable_naming_no_password(
    password_server: EmbeddedRedis,
) -> None:
    # Given a getter returning a wrong password
    wrong = "wr0ng-Pa55word-nobody-uses"
    connector = RedisConnector(settings_for(password_server.url), password=lambda: wrong)

    # When the store is used
    with pytest.raises(StoreUnavailableError) as raised:
        round_trip(connector)

    # Then it is the usual "Redis unavailable" (a 503), the kind of failure in the detail (for the log only), and no
    # message in the chain holds either password
    assert str(raised.value) == "redis unavailable"
    assert (raised.value.detail or "").startswith("AuthenticationError")
    assert wrong not in (raised.value.detail or "") and PASSWORD not in (raised.value.detail or "")
    assert wrong not in texts_of(raised.value)
    assert PASSWORD not in texts_of(raised.value)
    connector.close()


def test_store_given_a_rotated_password_authenticates_new_connections_with_it(
    password_server: EmbeddedRedis, admin: redis.Redis
) -> None:
    # Given a connector in use with the current password
    getter = PasswordHolder(PASSWORD)
    connector = RedisConnector(settings_for(password_server.url), password=getter)
    assert round_trip(connector, "before") == ["hi"]

    # When the password is rotated on the server and in the secret, and the open connections drop
    admin.config_set("requirepass", ROTATED)
    getter.value = ROTATED
    admin.client_kill_filter(_type="normal", skipme=True)

    # Then the same connector (no cold start) reconnects with the new password
    assert round_trip(connector, "after") == ["hi"]
    connector.close()
    # and a fresh one does too, while the old password is refused
    fresh = RedisConnector(settings_for(password_server.url), password=lambda: ROTATED)
    assert round_trip(fresh, "fresh") == ["hi"]
    fresh.close()
    stale = RedisConnector(settings_for(password_server.url), password=lambda: PASSWORD)
    with pytest.raises(StoreUnavailableError):
        round_trip(stale)
    stale.close()


def test_store_given_a_user_name_in_the_url_authenticates_as_that_acl_user(
    password_server: EmbeddedRedis, admin: redis.Redis
) -> None:
    # Given an ACL user (ElastiCache RBAC, MemoryDB) named in the URL, its password from the getter
    admin.acl_setuser("app", enabled=True, passwords=[f"+{ROTATED}"], keys=["*"], channels=["*"], commands=["+@all"])
    url = f"redis://app@127.0.0.1:{password_server.port}/0"
    connector = RedisConnector(settings_for(url), password=lambda: ROTATED)

    # When the store is used
    contents = round_trip(connector)
    whoami = connector.client().acl_whoami()
    connector.close()

    # Then the connections are that user's
    assert contents == ["hi"]
    assert whoami == "app"


def test_connector_given_a_url_password_and_a_password_getter_raises_config_error_naming_no_password() -> None:
    # Given a URL that carries a password while a getter is configured too
    settings = settings_for(f"redis://:{PASSWORD}@127.0.0.1:6379/0")

    # When the connector is built (cold start)
    # Then the ambiguity is a configuration error that does not repeat the password
    with pytest.raises(ConfigError) as raised:
        RedisConnector(settings, password=lambda: ROTATED)
    assert PASSWORD not in str(raised.value)


def test_store_given_a_failing_password_getter_raises_its_error_and_leaves_no_open_connection(
    password_server: EmbeddedRedis, admin: redis.Redis
) -> None:
    # Given a getter that fails (Secrets Manager throttled) on its first two calls (the command's try and the
    # client's one retry), then answers
    failures = {"left": 2}

    def getter() -> str:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise SecretUnavailableError("a secret this deployment needs could not be read")
        return PASSWORD

    connector = RedisConnector(settings_for(password_server.url, MOTORHEAD_REDIS_MODE="standalone"), password=getter)

    # When the store is used while the getter fails
    with pytest.raises(SecretUnavailableError) as raised:
        round_trip(connector)

    # Then the getter's own error surfaced with its own cause (none here, not the redis-py wrapper), and the socket
    # opened for it was closed rather than kept in the pool unauthenticated (only the admin's is left on the server)
    assert raised.value.__cause__ is None
    deadline = time.monotonic() + 2
    while len(admin.client_list()) > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(admin.client_list()) == 1
    # and the next use authenticates normally
    assert round_trip(connector) == ["hi"]
    connector.close()


# -- through the composition root, the password in Secrets Manager (moto) -----------------------------------------


def test_redis_connector_given_the_password_in_secrets_manager_writes_and_reads(
    password_server: EmbeddedRedis, aws: None
) -> None:
    # Given the password only in Secrets Manager, named by MOTORHEAD_REDIS_PASSWORD_SECRET
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(Name=SECRET_NAME, SecretString=PASSWORD)
    connector = redis_connector(settings_for(password_server.url, MOTORHEAD_REDIS_PASSWORD_SECRET=SECRET_NAME))

    # When a message is stored and read back
    # Then it round-trips
    assert round_trip(connector) == ["hi"]
    connector.close()


def test_redis_connector_given_a_missing_secret_raises_secret_unavailable_naming_no_secret(
    password_server: EmbeddedRedis, aws: None
) -> None:
    # Given a secret name that does not exist in Secrets Manager
    connector = redis_connector(settings_for(password_server.url, MOTORHEAD_REDIS_PASSWORD_SECRET="redis/absent-pw"))

    # When the store is used
    # Then the failure says a secret is missing (not that Redis is down), without naming it
    with pytest.raises(SecretUnavailableError) as raised:
        round_trip(connector)
    assert "absent" not in str(raised.value)
    connector.close()


# -- a 3-node cluster with a password ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def password_cluster() -> Iterator[EmbeddedRedisCluster]:
    """A 3-node cluster whose nodes all ask for a password (set once formed: the cluster bus needs none)."""
    with EmbeddedRedisCluster() as cluster:
        for node in cluster.nodes:
            with node.client() as client:
                client.config_set("requirepass", PASSWORD)
        yield cluster


@pytest.mark.cluster
@pytest.mark.parametrize("mode", ["auto", "cluster"])
def test_store_given_a_cluster_with_a_password_authenticates_on_every_node(
    password_cluster: EmbeddedRedisCluster, mode: str
) -> None:
    # Given a connector with the password getter, probing the server (auto) or told it is a cluster
    connector = RedisConnector(settings_for(password_cluster.url, MOTORHEAD_REDIS_MODE=mode), password=lambda: PASSWORD)

    # When sessions spread over all the slots are written and read
    contents = [round_trip(connector, f"{mode}-{i}")[0] for i in range(6)]
    is_cluster = isinstance(connector.client(), RedisCluster)
    connector.close()

    # Then the cluster client authenticated on each node it reached
    assert contents == ["hi"] * 6
    assert is_cluster


@pytest.mark.cluster
@pytest.mark.parametrize("mode", ["auto", "cluster"])
def test_store_given_a_cluster_and_a_wrong_password_raises_store_unavailable_naming_no_password(
    password_cluster: EmbeddedRedisCluster, mode: str
) -> None:
    # Given a connector whose getter returns a wrong password
    connector = RedisConnector(settings_for(password_cluster.url, MOTORHEAD_REDIS_MODE=mode), password=lambda: "nope")

    # When the store is used
    # Then it is Redis unavailable (in cluster mode redis-py's "cannot be connected" wraps the refusal)
    with pytest.raises(StoreUnavailableError) as raised:
        round_trip(connector)
    assert "nope" not in texts_of(raised.value)
    assert PASSWORD not in texts_of(raised.value)
    connector.close()
