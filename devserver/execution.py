"""Lambda's execution model for one function, locally: each function runs in its own processes (its own
environment, so its own settings), one invocation at a time per process, killed when it runs past its ``Timeout``.

``LocalFunction.invoke(event)`` takes an idle environment (``devserver/worker.py``), or starts one (a cold start) up
to ``max_concurrency``, and waits for the answer at most the function's timeout. Past it, the environment is killed
and ``FunctionTimedOut`` is raised: as on Lambda, what the invocation did so far stays done, the rest never happens,
and the caller (the gateway, or the SQS poller that then lets the records come back) decides what follows.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devserver.template import FunctionConfig

REPO = Path(__file__).resolve().parent.parent
PYTHONPATH = f"{REPO / 'layers' / 'shared' / 'python'}:{REPO}"  # the layer, as /opt/python on Lambda, and devserver
STARTUP_TIMEOUT_S = 60.0


class FunctionError(RuntimeError):
    """The invocation did not return a result."""


class FunctionTimedOut(FunctionError):
    """The invocation ran past the function's timeout; its environment was killed."""


class FunctionFailed(FunctionError):
    """The handler raised (Lambda's "Unhandled" function error), or its environment died."""


class _Environment:
    """One worker process and its two pipes: each request one write, each answer read as it arrives (``poll``, then
    ``os.read``), so that the gateway's share of an invocation stays a small fraction of the handler's."""

    def __init__(self, process: subprocess.Popen[bytes], requests: int, answers: int) -> None:
        self.process = process
        self.requests = requests  # the write end of the worker's requests pipe
        self.answers = answers  # the read end of its answers pipe
        self.buffer = b""
        self._readable = select.poll()  # not select(): no limit on the file descriptor's number
        self._readable.register(answers, select.POLLIN)

    def send(self, payload: Mapping[str, Any]) -> None:
        data = memoryview(_encode(payload).encode() + b"\n")
        try:
            while data:  # one write, unless the request is larger than the pipe's buffer
                data = data[os.write(self.requests, data) :]
        except OSError as error:  # the worker is gone (EPIPE)
            raise FunctionFailed(f"the function's environment exited ({error})") from error

    def receive(self, deadline: float) -> dict[str, Any] | None:
        """The next answer, or None when ``deadline`` (monotonic) passes first."""
        while (end := self.buffer.find(b"\n")) < 0:
            left = deadline - time.monotonic()
            if left <= 0 or not self._readable.poll(left * 1000):
                return None
            chunk = os.read(self.answers, 1 << 16)
            if not chunk:
                raise FunctionFailed("the function's environment exited")
            self.buffer += chunk
        line, self.buffer = self.buffer[:end], self.buffer[end + 1 :]
        answer: dict[str, Any] = json.loads(line)
        return answer

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        os.close(self.requests)
        os.close(self.answers)


_encode = json.JSONEncoder(separators=(",", ":")).encode  # compact, and built once


class LocalFunction:
    """One function of the template, run as Lambda runs it (see the module's docstring)."""

    def __init__(
        self, config: FunctionConfig, *, base_environment: Mapping[str, str], max_concurrency: int = 4
    ) -> None:
        self.config = config
        self._env = {**base_environment, **config.environment, "PYTHONPATH": PYTHONPATH}
        self._max = max(1, min(max_concurrency, config.reserved_concurrency or max_concurrency))
        self._idle: list[_Environment] = []
        self._running = 0
        self._lock = threading.Condition()
        self._closed = False
        self.cold_starts = 0
        self.timeouts = 0
        self.handler_cpu_s = 0.0  # the CPU time its handlers took (the workers' own work aside), as they report it

    @property
    def function_id(self) -> str:
        return self.config.function_id

    def invoke(self, event: Mapping[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
        """The handler's result; ``FunctionTimedOut`` or ``FunctionFailed`` otherwise."""
        environment = self._acquire()
        keep = False
        handler_cpu_s = 0.0
        try:
            deadline = time.monotonic() + self.config.timeout
            environment.send({"event": event, "request_id": request_id or str(uuid.uuid4())})
            answer = environment.receive(deadline)
            if answer is None:
                self.timeouts += 1
                raise FunctionTimedOut(
                    f"{self.function_id} timed out after {self.config.timeout:g} seconds (its Timeout)"
                )
            keep = True
            handler_cpu_s = float(answer.get("cpu_ms", 0.0)) / 1000
            if "error" in answer:
                raise FunctionFailed(f"{answer['error'].get('errorType')}: {answer['error'].get('errorMessage')}")
            result: dict[str, Any] = answer["result"]
            return result
        finally:
            self._release(environment, keep=keep, handler_cpu_s=handler_cpu_s)

    def openapi(self) -> dict[str, Any] | None:
        """The function's OpenAPI document (from its FastAPI app), asked of one of its environments."""
        environment = self._acquire()
        keep = False
        try:
            environment.send({"openapi": True})
            answer = environment.receive(time.monotonic() + STARTUP_TIMEOUT_S)
            keep = answer is not None
            return None if answer is None else answer.get("result")
        finally:
            self._release(environment, keep=keep)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._lock.notify_all()
        for environment in idle:
            environment.kill()

    # -- environments ---------------------------------------------------------------------------------------------

    def _acquire(self) -> _Environment:
        with self._lock:
            while True:
                if self._closed:
                    raise FunctionFailed(f"{self.function_id} is shutting down")
                if self._idle:
                    self._running += 1
                    return self._idle.pop()
                if self._running < self._max:
                    self._running += 1
                    break
                self._lock.wait()
        try:
            return self._start()
        except BaseException:
            with self._lock:
                self._running -= 1
                self._lock.notify()
            raise

    def _release(self, environment: _Environment, *, keep: bool, handler_cpu_s: float = 0.0) -> None:
        if not keep:
            environment.kill()
        with self._lock:
            self._running -= 1
            self.handler_cpu_s += handler_cpu_s
            if keep and not self._closed:
                self._idle.append(environment)
            self._lock.notify()
        if keep and self._closed:
            environment.kill()

    def _start(self) -> _Environment:
        """A new execution environment: the function's cold start."""
        requests_read, requests_write = os.pipe()
        answers_read, answers_write = os.pipe()
        config = self.config
        command = [
            sys.executable,
            "-m",
            "devserver.worker",
            f"--function-id={config.function_id}",
            f"--code-uri={config.code_uri}",
            f"--handler={config.handler}",
            f"--timeout={config.timeout}",
            f"--memory-size={config.memory_size}",
            f"--requests-fd={requests_read}",
            f"--answers-fd={answers_write}",
        ]
        process = subprocess.Popen(command, env=self._env, pass_fds=(requests_read, answers_write))
        os.close(requests_read)
        os.close(answers_write)
        environment = _Environment(process, requests=requests_write, answers=answers_read)
        try:
            ready = environment.receive(time.monotonic() + STARTUP_TIMEOUT_S)
        except FunctionFailed:  # it exited during its init (an import failed)
            ready = None
        if ready is None or not ready.get("ready"):
            environment.kill()
            raise FunctionFailed(f"{config.function_id} did not start (its init failed: see the log above)")
        self.cold_starts += 1
        return environment
