"""The append's bare-script floor of ``bench/redis_cost.py`` on a real Redis: the script writes what the same commands
write piped, and its literals read back as the bytes they were."""

from __future__ import annotations

from typing import cast

import redis

from bench.redis_cost import bare_script, lua_string
from devserver.embedded_redis import EmbeddedRedis


def test_lua_string_given_any_bytes_reads_back_the_same_bytes_in_lua(redis_server: EmbeddedRedis) -> None:
    value = b'{"id":3,"c":"caf\xc3\xa9 \\ \' \n"}\x00]]'
    # When written as a literal into a script, then the script answers exactly those bytes
    raw = redis.Redis.from_url(redis_server.url)
    try:
        assert raw.eval(f"return {lua_string(value)}", 0) == value
    finally:
        raw.close()


def test_bare_script_run_on_redis_writes_what_the_same_commands_piped_write(redis_client: redis.Redis) -> None:
    # Given an append's commands for two sessions, with their own ids, times and tokens
    def copy(tag: str, seq: int) -> list[list[bytes]]:
        return [
            [b"ZADD", f"tokens:{{{tag}}}".encode(), b"NX", b"%d" % seq, f"token-{tag}".encode()],
            [b"ZADD", f"messages:{{{tag}}}".encode(), b"%d" % seq, b'{"id":%d,"content":"hi"}' % seq],
            [b"HSET", f"meta:{{{tag}}}".encode(), b"seq", b"%d" % seq, b"role", b"Human"],
        ]

    script, varying = bare_script(copy("bench-a", 3), copy("bench-b", 9))
    sha = redis_client.script_load(script)
    # When one copy runs as the bare script and another as a plain pipeline
    third = copy("bench-c", 12)
    redis_client.evalsha(sha, len(third), *[c[1] for c in third], *[third[c][a] for c, a in varying])
    pipe = redis_client.pipeline(transaction=False)
    for command in copy("bench-d", 12):
        pipe.execute_command(*command)  # type: ignore[no-untyped-call]
    pipe.execute()
    # Then both wrote the same data, each on its own keys
    for name in ("tokens", "messages"):
        written = cast(list[tuple[str, float]], redis_client.zrange(f"{name}:{{bench-c}}", 0, -1, withscores=True))
        piped = cast(list[tuple[str, float]], redis_client.zrange(f"{name}:{{bench-d}}", 0, -1, withscores=True))
        assert written == [(member.replace("bench-d", "bench-c"), score) for member, score in piped]
    assert (
        redis_client.hgetall("meta:{bench-c}")
        == redis_client.hgetall("meta:{bench-d}")
        == {
            "seq": "12",
            "role": "Human",
        }
    )
