"""The pure parts of ``bench/redis_cost.py``: reading commands back from redis-py's packed bytes, splitting the
server's commandstats between the route, its connections' upkeep, the observer and the scripts, and the append's
floors (its captured call's values; its commands as a bare script: run on a real Redis in
``tests/integration/test_bench_floors.py``)."""

from __future__ import annotations

from collections import Counter

import pytest

from bench.redis_cost import (
    CommandStat,
    bare_script,
    call_values,
    command_names,
    merge_stats,
    monitor_arguments,
    parse_commandstats,
    server_share,
    split,
)


def packed(*commands: tuple[object, ...]) -> list[bytes]:
    """RESP arrays as redis-py sends them: a big argument in a chunk of its own."""
    parts: list[bytes] = []
    for command in commands:
        head = b"*%d\r\n" % len(command)
        for arg in command:
            value = str(arg).encode()
            if len(value) > 6000:
                parts += [head + b"$%d\r\n" % len(value), value, b"\r\n"]
                head = b""
            else:
                head += b"$%d\r\n%s\r\n" % (len(value), value)
        parts.append(head)
    return [part for part in parts if part]


def test_command_names_given_a_pipeline_returns_every_command_in_order() -> None:
    # Given what a pipeline of three commands sends, a script call and a big argument among them
    sent = packed(("ZREVRANGE", "k", 0, 11), ("EVALSHA", "abc", 1, "k", "x" * 10_000), ("HMGET", "m", "a", "b"))

    # When its commands are read back
    names = command_names(sent)

    # Then each is named as commandstats names it
    assert names == ["zrevrange", "evalsha", "hmget"]


def test_command_names_given_a_container_command_names_its_subcommand() -> None:
    assert command_names(packed(("CONFIG", "RESETSTAT"), ("SCRIPT", "LOAD", "return 1"))) == [
        "config|resetstat",
        "script|load",
    ]


def test_command_names_given_one_bytes_string_reads_it() -> None:
    assert command_names(b"*1\r\n$4\r\nPING\r\n") == ["ping"]


def test_command_names_given_no_resp_array_refuses_it() -> None:
    with pytest.raises(ValueError, match="RESP array"):
        command_names(b"PING\r\n")


def test_server_share_given_scripted_calls_counts_them_apart_and_keeps_only_the_sent_calls_time() -> None:
    # Given one EVALSHA whose script ran an HGET twice, one HGET sent by the route, a health-check PING and the
    # observer's commands
    stats = {
        "evalsha": CommandStat(calls=1, usec=30),
        "hget": CommandStat(calls=3, usec=9),
        "ping": CommandStat(calls=1, usec=1),
        "info": CommandStat(calls=2, usec=50),
        "config|resetstat": CommandStat(calls=1, usec=20),
    }
    sent = Counter({"evalsha": 1, "hget": 1})

    # When the stats are split
    share = server_share(stats, sent, Counter({"ping": 1}), Counter({"info": 2, "config|resetstat": 1}))

    # Then the script's two HGETs are scripted, and the time is the EVALSHA's and one third of HGET's
    assert share.scripted_calls == 2
    assert share.usec == pytest.approx(30 + 3)
    assert share.unmatched == []


def test_server_share_given_a_name_the_server_did_not_report_lists_it() -> None:
    assert server_share({}, Counter({"get": 1}), Counter(), Counter()).unmatched == ["get"]


def test_parse_and_merge_commandstats_given_two_nodes_sum_by_name() -> None:
    node = parse_commandstats({"cmdstat_get": {"calls": 2, "usec": 5, "failed_calls": 1}, "errorstat_ERR": {}})
    assert merge_stats([node, node]) == {"get": CommandStat(calls=4, usec=10, failed=2)}


def test_split_given_more_operations_than_clients_deals_them_round_robin() -> None:
    operations = [lambda n=n: n for n in range(5)]
    assert [[op() for op in share] for share in split(operations, 2)] == [[0, 2, 4], [1, 3]]


def test_monitor_arguments_given_quotes_escapes_and_bytes_reads_each_argument_back() -> None:
    # Given a MONITOR line of a script's command, as Redis writes it (sdscatrepr: quoted, escaped)
    line = (
        '1700000000.123456 [0 lua] "ZADD" "mh:{ab}:messages" "7" "{\\"id\\":7,\\"content\\":\\"a b\\\\n\\xc3\\xa9\\"}"'
    )
    # When it is parsed
    args = monitor_arguments(line)
    # Then every argument comes back whole, its spaces, quotes, escapes and non-ASCII bytes as they were sent
    assert args == [b"ZADD", b"mh:{ab}:messages", b"7", '{"id":7,"content":"a b\\n\u00e9"}'.encode()]


def test_bare_script_given_two_copies_takes_what_differs_from_argv_and_writes_the_rest_in() -> None:
    first = [[b"HMGET", b"k:{a}", b"user", b"seq"], [b"ZADD", b"z:{a}", b"NX", b"4", b"tok-a"]]
    second = [[b"HMGET", b"k:{b}", b"user", b"seq"], [b"ZADD", b"z:{b}", b"NX", b"6", b"tok-b"]]
    script, varying = bare_script(first, second)
    assert varying == [(1, 3), (1, 4)]
    assert script.splitlines() == [
        'redis.call("HMGET", KEYS[1], "user", "seq")',
        'redis.call("ZADD", KEYS[2], "NX", ARGV[1], ARGV[2])',
        "return 1",
    ]


def test_bare_script_given_copies_of_other_shapes_refuses_them() -> None:
    with pytest.raises(ValueError):
        bare_script([[b"GET", b"a"]], [[b"GET", b"a", b"extra"]])


def test_call_values_given_an_append_s_commands_finds_its_time_and_token() -> None:
    commands = [
        [b"HMGET", b"meta", b"user"],
        [b"ZADD", b"tokens", b"NX", b"4", b"0123abcd"],
        [b"ZADD", b"listing", b"1796642338594", b"floor-template"],
    ]
    assert call_values(commands, b"floor-template") == (b"1796642338594", b"0123abcd")
    with pytest.raises(RuntimeError):
        call_values(commands[:1], b"floor-template")
