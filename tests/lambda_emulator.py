"""Runs what ``sam build`` produced as Lambda runs it: the real runtime interface client (``awslambdaric``, the code of
Lambda's managed Python runtime) on Python 3.12, in its own process, talking to a Runtime API that this module serves.

An execution environment here is what Lambda's is, as far as the function can tell:

- ``/var/task`` is the function's built code, ``/opt`` its built layer and ``/var/runtime`` the runtime (awslambdaric
  and the boto3 Lambda provides), each bind-mounted in a private mount namespace (``unshare --mount``), so the
  template's absolute paths (``TIKTOKEN_CACHE_DIR=/opt/python/...``) hold as on AWS. Where mounting is not allowed
  (not root), the same directories are used where they are and those paths are rewritten: said in ``mounted``;
- ``sys.path`` is Lambda's order (task, the layer's ``python/lib/python3.12/site-packages``, its ``python/``, the
  runtime) over a Python 3.12 virtual environment with nothing installed: no package of this machine leaks in;
- the environment is the template's (Globals merged with the function's own, ``!Ref`` resolved) plus the variables
  Lambda sets: ``AWS_LAMBDA_*``, ``_HANDLER``, ``LAMBDA_TASK_ROOT``, ``AWS_EXECUTION_ENV``, the X-Ray daemon's address
  (a UDP socket of this module that collects the segments sent to it) and, per invocation, the trace header;
- an invocation that outlives the function's ``Timeout`` kills the environment, as Lambda does.

The runtime is installed once into ``.build/lambda-python3.12`` from ``tests/lambda_runtime.txt``.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BUILD_DIR = REPO / ".aws-sam" / "build"
RUNTIME_DIR = REPO / ".build" / "lambda-python3.12"
RUNTIME_REQUIREMENTS = REPO / "tests" / "lambda_runtime.txt"
PYTHON_VERSION = "3.12"
STARTUP_TIMEOUT_S = 60.0
REGION = "us-east-1"
API_PREFIX = "/2018-06-01/runtime"


class InitError(RuntimeError):
    """The function failed in its init phase (an import, its settings): what Lambda reports as ``Runtime.*``."""

    def __init__(self, error: Mapping[str, Any], log: str) -> None:
        super().__init__(f"{error.get('errorType')}: {error.get('errorMessage')}\n--- its output ---\n{log}")
        self.error = dict(error)


class InvocationError(RuntimeError):
    """The handler raised (Lambda's ``Unhandled`` function error)."""

    def __init__(self, error: Mapping[str, Any]) -> None:
        super().__init__(f"{error.get('errorType')}: {error.get('errorMessage')}")
        self.error = dict(error)


class InvocationTimedOut(RuntimeError):
    """The invocation ran past the function's ``Timeout``; its environment was killed."""


# --- the runtime: python3.12 + awslambdaric + boto3 --------------------------------------------------------------


def find_python312() -> str:
    """A Python 3.12 interpreter: ``python3.12`` on PATH, else pyenv's newest 3.12.x."""
    found = shutil.which("python3.12")
    if found and _is_312(found):
        return found
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    versions = sorted(pyenv_root.glob("versions/3.12.*/bin/python3.12"), key=lambda p: _version_key(p.parts[-3]))
    for path in reversed(versions):
        if _is_312(str(path)):
            return str(path)
    raise RuntimeError("no Python 3.12 found (python3.12 on PATH or pyenv): the functions run on Lambda's python3.12")


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def _is_312(python: str) -> bool:
    probe = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"], capture_output=True)
    return probe.returncode == 0 and probe.stdout.strip() == b"True"


def ensure_runtime(directory: Path = RUNTIME_DIR) -> Path:
    """The runtime directory (``venv/``: an empty Python 3.12 environment; ``runtime/``: what ``/var/runtime``
    holds), installed once per version of ``tests/lambda_runtime.txt``."""
    stamp = directory / ".installed"
    wanted = RUNTIME_REQUIREMENTS.read_text(encoding="utf-8")
    if stamp.exists() and stamp.read_text(encoding="utf-8") == wanted:
        return directory
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    subprocess.run([find_python312(), "-m", "venv", "--without-pip", str(directory / "venv")], check=True)
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
            "--target", str(directory / "runtime"), "--python-version", PYTHON_VERSION, "--implementation", "cp",
            "--platform", "manylinux2014_x86_64", "--only-binary=:all:", "-r", str(RUNTIME_REQUIREMENTS),
        ],
        check=True,
    )  # fmt: skip
    stamp.write_text(wanted, encoding="utf-8")
    return directory


@lru_cache(maxsize=1)
def can_mount() -> bool:
    """Whether this user may bind-mount in a private mount namespace (root may; others use ``mounted=False``)."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", "mount --bind / /mnt"],
        capture_output=True,
    )
    return probe.returncode == 0


# --- the Runtime API -------------------------------------------------------------------------------------------


@dataclass
class _Invocation:
    request_id: str
    event: bytes
    deadline_ms: int
    trace_id: str
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: dict[str, Any] | None = None


class _RuntimeApi(ThreadingHTTPServer):
    """Lambda's Runtime API (``/2018-06-01/runtime/...``) for one execution environment."""

    daemon_threads = True

    def __init__(self, function_arn: str) -> None:
        super().__init__(("127.0.0.1", 0), _RuntimeApiHandler)
        self.function_arn = function_arn
        self.pending: queue.Queue[_Invocation | None] = queue.Queue()
        self.by_id: dict[str, _Invocation] = {}
        self.init_error: dict[str, Any] | None = None
        self.init_failed = threading.Event()
        self.polled = threading.Event()  # the runtime asked for its first event: its init phase is over
        self.polled_at: float | None = None  # when it did (time.perf_counter)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A runtime killed while it waits for its next event (a timeout, the end of a test) is normal here."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _RuntimeApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _RuntimeApi

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:
        if self.path != f"{API_PREFIX}/invocation/next":
            self._answer(404, b'{"errorMessage":"unknown path"}')
            return
        if self.server.polled_at is None:
            self.server.polled_at = time.perf_counter()
        self.server.polled.set()
        invocation = self.server.pending.get()
        if invocation is None:  # shutting down: the runtime's next poll never returns
            self._answer(500, b'{"errorMessage":"shutting down"}')
            return
        self.server.by_id[invocation.request_id] = invocation
        self._answer(
            200,
            invocation.event,
            {
                "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": self.server.function_arn,
                "Lambda-Runtime-Trace-Id": invocation.trace_id,
            },
        )

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length) if length else b""
        parts = self.path.removeprefix(API_PREFIX).strip("/").split("/")
        if parts == ["init", "error"]:
            self.server.init_error = _json_or_text(payload)
            self.server.init_failed.set()
            self._answer(202, b'{"status":"OK"}')
            return
        if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            invocation = self.server.by_id.get(parts[1])
            if invocation is None:
                self._answer(400, b'{"errorMessage":"unknown request id"}')
                return
            if parts[2] == "response":
                invocation.result = _json_or_text(payload)
            else:
                invocation.error = _json_or_text(payload)
            invocation.done.set()
            self._answer(202, b'{"status":"OK"}')
            return
        self._answer(404, b'{"errorMessage":"unknown path"}')

    def _answer(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def _json_or_text(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return {"errorType": "InvalidJSON", "errorMessage": payload.decode("utf-8", "replace")}


# --- X-Ray ------------------------------------------------------------------------------------------------------


class XRayDaemon:
    """A UDP socket in the X-Ray daemon's place: keeps the segment documents the SDK sends."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.documents: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="xray-daemon", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._socket.getsockname()[1]}"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                packet = self._socket.recv(65_535)
            except TimeoutError:
                continue
            except OSError:
                return
            _header, _, document = packet.partition(b"\n")  # {"format": "json", "version": 1}\n{segment}
            try:
                self.documents.append(json.loads(document))
            except ValueError:
                continue

    def subsegment_names(self) -> set[str]:
        return {str(doc.get("name")) for doc in self.documents if doc.get("type") == "subsegment"}

    def close(self) -> None:
        self._stop.set()
        self._socket.close()
        self._thread.join(timeout=2)


# --- one function --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltFunction:
    """One function of the built template: its code and layer directories, handler, timeout, memory, environment."""

    function_id: str
    code_dir: Path
    layer_dirs: tuple[Path, ...]
    handler: str
    timeout: float
    memory_size: int
    environment: dict[str, str]


def lambda_variables(function: BuiltFunction, *, runtime_api: str, xray_daemon: str) -> dict[str, str]:
    """What Lambda's python3.12 runtime sets in every execution environment (the AWS docs' "Defined runtime
    environment variables"), with this machine's Runtime API and X-Ray daemon."""
    name = f"motorhead-{function.function_id}"
    host, _, port = xray_daemon.partition(":")
    return {
        "_HANDLER": function.handler,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"2026/01/01/[$LATEST]{uuid.uuid4().hex}",
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_XRAY_DAEMON_ADDRESS": xray_daemon,
        "_AWS_XRAY_DAEMON_ADDRESS": host,
        "_AWS_XRAY_DAEMON_PORT": port,
        "LAMBDA_TASK_ROOT": "/var/task",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
        "LD_LIBRARY_PATH": (
            "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib"
        ),
        "PYTHONPATH": "/var/task:/opt/python/lib/python3.12/site-packages:/opt/python:/var/runtime",
        "PYTHONDONTWRITEBYTECODE": "1",  # /var/task and /opt are read-only on Lambda: nothing is written there
    }


class ExecutionEnvironment:
    """One execution environment of a built function: started (its init phase) on creation, then invoked one event
    at a time, killed past its timeout."""

    def __init__(
        self,
        function: BuiltFunction,
        *,
        extra_environment: Mapping[str, str] | None = None,
        xray: XRayDaemon | None = None,
        runtime: Path | None = None,
        mounted: bool | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.function = function
        self.mounted = can_mount() if mounted is None else mounted
        self._runtime = runtime or ensure_runtime()
        self._api = _RuntimeApi(f"arn:aws:lambda:{REGION}:000000000000:function:motorhead-{function.function_id}")
        self._api_thread = threading.Thread(target=self._api.serve_forever, kwargs={"poll_interval": 0.05})
        self._api_thread.daemon = True
        self._api_thread.start()
        self._xray = xray
        self._own_xray = xray is None
        if self._xray is None:
            self._xray = XRayDaemon()
        log_dir = log_dir or (REPO / ".build" / "lambda-logs")
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{function.function_id}-{uuid.uuid4().hex[:8]}.log"
        self._log = self.log_path.open("wb")
        environment = {
            **function.environment,
            **(extra_environment or {}),
            **lambda_variables(function, runtime_api=self._api.address, xray_daemon=self._xray.address),
        }
        command = self._command()  # merging the layers into one /opt, once per build, is no part of the init
        self.started_at = time.perf_counter()
        self.process = subprocess.Popen(
            command,
            env=environment if self.mounted else self._unmounted(environment),
            cwd=None if self.mounted else function.code_dir,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self._wait_for_init()

    @property
    def init_ms(self) -> float:
        """Its init phase, as Lambda's Init Duration counts it: from the process's start (the namespace and mounts
        included, a few ms) to the runtime's first poll for an event, after the handler's module was imported."""
        assert self._api.polled_at is not None, "the init phase has not ended"
        return (self._api.polled_at - self.started_at) * 1000

    def _command(self) -> list[str]:
        python = str(self._runtime / "venv" / "bin" / "python")
        run = [python, "-m", "awslambdaric", self.function.handler]
        if not self.mounted:
            return run
        layer = self.function.layer_dirs[0] if self.function.layer_dirs else self.function.code_dir
        if len(self.function.layer_dirs) > 1:  # Lambda extracts every layer into /opt, in order: merge them
            layer = _merged_layers(self.function.layer_dirs)
        script = (
            'mkdir -p /var/task /var/runtime && mount --bind "$1" /var/task && mount --bind "$2" /opt '
            '&& mount --bind "$3" /var/runtime && cd /var/task && shift 3 && exec "$@"'
        )
        return [
            "unshare", "--mount", "--propagation", "private", "sh", "-c", script, "lambda",
            str(self.function.code_dir), str(layer), str(self._runtime / "runtime"), *run,
        ]  # fmt: skip

    def _unmounted(self, environment: dict[str, str]) -> dict[str, str]:
        """The same environment with Lambda's directories replaced by where they are on this machine."""
        layers = self.function.layer_dirs
        layer = str(layers[0] if len(layers) == 1 else _merged_layers(layers)) if layers else "/opt"
        places = {
            "/var/task": str(self.function.code_dir),
            "/opt": layer,
            "/var/runtime": str(self._runtime / "runtime"),
        }

        def moved(value: str) -> str:
            parts = value.split(":")
            for i, part in enumerate(parts):
                for lambda_dir, here in places.items():
                    if part == lambda_dir or part.startswith(lambda_dir + "/"):
                        parts[i] = here + part[len(lambda_dir) :]
                        break
            return ":".join(parts)

        return {name: moved(value) for name, value in environment.items()}

    def _wait_for_init(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._api.polled.is_set():
                return
            if self._api.init_failed.is_set() or self.process.poll() is not None:
                self._api.init_failed.wait(1.0)
                error = self._api.init_error or {"errorType": "Runtime.ExitError", "errorMessage": "exited"}
                self.close()
                raise InitError(error, self.output())
            time.sleep(0.01)
        self.close()
        raise InitError({"errorType": "Runtime.InitTimeout", "errorMessage": "no poll in time"}, self.output())

    def invoke(self, event: Mapping[str, Any]) -> Any:
        """The handler's result (its JSON), or ``InvocationError`` / ``InvocationTimedOut``."""
        if self.process.poll() is not None:
            raise InvocationError({"errorType": "Runtime.ExitError", "errorMessage": "the environment exited"})
        timeout = self.function.timeout
        invocation = _Invocation(
            request_id=str(uuid.uuid4()),
            event=json.dumps(event).encode(),
            deadline_ms=int((time.time() + timeout) * 1000),
            trace_id=f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=1",
        )
        self._api.pending.put(invocation)
        if not invocation.done.wait(timeout):
            self.close()
            raise InvocationTimedOut(f"{self.function.function_id} timed out after {timeout:g} s (its Timeout)")
        if invocation.error is not None:
            raise InvocationError(invocation.error)
        return invocation.result

    def output(self) -> str:
        """What the environment printed so far (its CloudWatch log stream)."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._api.pending.put(None)
        self._api.shutdown()
        self._api.server_close()
        self._log.close()
        if self._own_xray and self._xray is not None:
            self._xray.close()

    def __enter__(self) -> ExecutionEnvironment:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _merged_layers(layers: tuple[Path, ...]) -> Path:
    """One directory with every layer's files, later layers over earlier ones (as Lambda extracts them into /opt),
    made again whenever one of the layers was built again (their files are hard links: no copy of hundreds of MB)."""
    target = REPO / ".build" / "lambda-opt" / "-".join(layer.name for layer in layers)
    stamp = target / ".built-from"
    built_from = "\n".join(f"{layer} {layer.stat().st_mtime_ns}" for layer in layers)
    if stamp.exists() and stamp.read_text(encoding="utf-8") == built_from:
        return target
    shutil.rmtree(target, ignore_errors=True)
    for layer in layers:
        shutil.copytree(layer, target, symlinks=True, dirs_exist_ok=True, copy_function=_link_or_copy)
    stamp.write_text(built_from, encoding="utf-8")
    return target


def _link_or_copy(source: str, destination: str) -> None:
    if os.path.lexists(destination):  # a later layer's file over an earlier one's
        os.unlink(destination)
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def iter_output_lines(text: str) -> Iterator[dict[str, Any]]:
    """The JSON lines of an environment's output (powertools' structured logs, EMF metrics)."""
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except ValueError:
                continue


# --- the built template ----------------------------------------------------------------------------------------


def built_functions(
    parameters: Mapping[str, str], resources: Mapping[str, str], build_dir: Path = BUILD_DIR
) -> dict[str, BuiltFunction]:
    """Every function of ``sam build``'s template, with its built code and layers and its environment as the
    template gives it (``!Ref`` resolved from ``parameters`` and ``resources``; Lambda's paths kept)."""

    from devserver.template import condition_values, load_function_configs, load_template

    template_path = build_dir / "template.yaml"
    template = load_template(template_path)
    configs = load_function_configs(dict(parameters), dict(resources), template_path, lambda_paths=True)
    conditions = condition_values(parameters, template_path)
    functions: dict[str, BuiltFunction] = {}
    for function_id, config in configs.items():
        functions[function_id] = BuiltFunction(
            function_id=function_id,
            code_dir=config.code_uri,
            layer_dirs=tuple(
                (build_dir / layer_id).resolve() for layer_id in function_layers(template, function_id, conditions)
            ),
            handler=config.handler,
            timeout=config.timeout,
            memory_size=config.memory_size,
            environment=config.environment,
        )
    return functions


def function_layers(template: Mapping[str, Any], function_id: str, conditions: Mapping[str, bool]) -> list[str]:
    """The logical ids of a function's layers, in the order Lambda extracts them: Globals' first, then the function's
    own (SAM appends them), each ``!If`` as ``conditions`` evaluate it."""
    global_layers = template.get("Globals", {}).get("Function", {}).get("Layers") or []
    own = template["Resources"][function_id].get("Properties", {}).get("Layers") or []
    return [layer_id for layer in [*global_layers, *own] if (layer_id := _layer_id(layer, conditions))]


def _layer_id(value: Any, conditions: Mapping[str, bool]) -> str | None:
    """A layer's logical id, from ``!Ref X`` as the short form (``"X"``) or the long form (``{"Ref": "X"}``) loads,
    or from ``!If [Condition, !Ref A, !Ref B]`` as the condition evaluates; None for ``AWS::NoValue``."""
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        value = value["Fn::If"]
    if isinstance(value, list) and len(value) == 3:
        return _layer_id(value[1] if conditions[str(value[0])] else value[2], conditions)
    layer_id = str(value["Ref"]) if isinstance(value, dict) else str(value)
    return None if layer_id == "AWS::NoValue" else layer_id
