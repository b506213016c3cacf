"""One cold start, measured inside a fresh process. Run by ``bench/run.py``; prints one JSON line on stdout.

    python bench/cold_child.py pass
    python bench/cold_child.py floor
    python bench/cold_child.py function FUNCTION_ID CODE_URI HANDLER METHOD PATH EVENT_FILE

Every mode imports the same prelude first (this module's imports, i.e. ``devserver.lambda_runtime`` and with it
``yaml``), outside the timed region, so the modes differ only in what ``time.perf_counter`` brackets:

- ``pass``: nothing (the reference: what the timer itself costs);
- ``floor``: ``import fastapi, mangum, redis``, the least any of our handlers could import;
- ``function``: ``load_function`` (the import Lambda's init phase does) plus the first invocation with the event.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from devserver.lambda_runtime import FakeLambdaContext, load_function
from devserver.template import Route

WATCHED = ("openai", "boto3", "botocore", "numpy", "tiktoken")  # reported as the number of their modules loaded


def _floor() -> None:
    import fastapi  # noqa: F401
    import mangum  # noqa: F401
    import redis  # noqa: F401


def main(argv: list[str]) -> int:
    mode = argv[0] if argv else ""
    status: int | None = None
    import_s: float | None = None
    before = set(sys.modules)
    if mode == "pass":
        start = time.perf_counter()
        elapsed = time.perf_counter() - start
    elif mode == "floor":
        start = time.perf_counter()
        _floor()
        elapsed = time.perf_counter() - start
    elif mode == "function" and len(argv) == 7:
        function_id, code_uri, handler_name, method, path, event_file = argv[1:]
        route = Route(function_id=function_id, method=method, path=path, code_uri=Path(code_uri), handler=handler_name)
        event: dict[str, Any] = json.loads(Path(event_file).read_text(encoding="utf-8"))
        context = FakeLambdaContext(function_name=function_id)
        start = time.perf_counter()
        _, handler = load_function(route)
        import_s = time.perf_counter() - start
        response = handler(event, context)
        elapsed = time.perf_counter() - start
        status = int(response["statusCode"])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    new = set(sys.modules) - before
    result = {
        "ms": elapsed * 1000,
        "import_ms": None if import_s is None else import_s * 1000,
        "status": status,
        "new_modules": len(new),
        "top_level": sorted({name.partition(".")[0] for name in new}),
        "heavy": {name: sum(1 for m in sys.modules if m == name or m.startswith(f"{name}.")) for name in WATCHED},
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
