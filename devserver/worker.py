"""One Lambda execution environment of one function, as a child process of the local runtime.

It imports the function's module (its cold start, under the function's own environment: its own settings), then
serves invocations one at a time, as Lambda does: each with a context that carries the function's name, memory size
and a deadline of ``timeout`` seconds from the start of the invocation. The parent kills it when an invocation runs
past that deadline, as Lambda does, and starts a new one for the next invocation.

Protocol: one JSON object per line on the two file descriptors given on the command line (the process's stdout and
stderr stay the function's own logs). Requests: ``{"event": ...}`` or ``{"openapi": true}``; answers: ``{"result":
...}``, with ``cpu_ms``, the CPU time the handler took (Lambda's REPORT line gives its duration); ``{"error":
{"errorType", "errorMessage"}}`` (an unhandled exception, as Lambda reports one), or, once after start, ``{"ready":
true, "init_ms": ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
import traceback
import uuid
from pathlib import Path
from typing import Any, BinaryIO

from devserver.lambda_runtime import FakeLambdaContext, load_function
from devserver.template import FunctionDef

_encode = json.JSONEncoder(separators=(",", ":")).encode  # compact, and built once


def _answer(out: BinaryIO, payload: dict[str, Any]) -> None:
    out.write(_encode(payload).encode() + b"\n")
    out.flush()  # one write per answer


def main(argv: list[str] | None = None) -> int:
    # Ctrl-C reaches the whole terminal's process group: the gateway process handles it and stops its workers (a
    # worker also ends when its request pipe closes), so a worker never prints a KeyboardInterrupt of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parser = argparse.ArgumentParser()
    parser.add_argument("--function-id", required=True)
    parser.add_argument("--code-uri", required=True)
    parser.add_argument("--handler", required=True)
    parser.add_argument("--timeout", type=float, required=True)
    parser.add_argument("--memory-size", type=int, required=True)
    parser.add_argument("--requests-fd", type=int, required=True)
    parser.add_argument("--answers-fd", type=int, required=True)
    args = parser.parse_args(argv)

    requests = os.fdopen(args.requests_fd, "rb")
    answers = os.fdopen(args.answers_fd, "wb")
    started = time.perf_counter()
    module, handler = load_function(
        FunctionDef(function_id=args.function_id, code_uri=Path(args.code_uri), handler=args.handler)
    )
    asyncio.set_event_loop(asyncio.new_event_loop())  # Mangum runs each invocation on this loop
    _answer(answers, {"ready": True, "init_ms": round((time.perf_counter() - started) * 1000, 1)})
    arn = f"arn:aws:lambda:local:000000000000:function:{args.function_id}"
    for line in requests:
        request = json.loads(line)
        if request.get("openapi"):
            openapi = getattr(getattr(module, "app", None), "openapi", None)  # the MCP function's app has none
            _answer(answers, {"result": openapi() if openapi is not None else None})
            continue
        context = FakeLambdaContext(
            function_name=args.function_id,
            memory_limit_in_mb=args.memory_size,
            invoked_function_arn=arn,
            aws_request_id=str(request.get("request_id") or uuid.uuid4()),
            log_group_name=f"/aws/lambda/{args.function_id}",
            deadline=time.monotonic() + args.timeout,
        )
        cpu_started = time.process_time()
        try:
            result = handler(request["event"], context)
        except Exception as exc:  # Lambda reports an unhandled exception as the invocation's error
            traceback.print_exc(file=sys.stderr)
            _answer(answers, {"error": {"errorType": type(exc).__name__, "errorMessage": str(exc)[:500]}})
            continue
        _answer(answers, {"result": result, "cpu_ms": round((time.process_time() - cpu_started) * 1000, 3)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
