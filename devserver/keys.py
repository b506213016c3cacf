"""`make key`, `make keys`, `make revoke-key`: API keys against the configured Redis, through the admin function;
`make adopt-sessions`: the sessions stored with ``MOTORHEAD_AUTH=none`` moved to a tenant, the same way.

The commands invoke the template's ``AdminFunction`` handler, the code that ``aws lambda invoke`` runs on AWS, with
``REDIS_URL`` when it is set, else the embedded Redis of ``make run``: the running one when ``make run`` is up (it
leaves its URL in the data folder), or the same data folder started for the command's duration. The key a ``create``
makes is printed alone on the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

from devserver.embedded_redis import EmbeddedRedis
from devserver.lambda_runtime import FakeLambdaContext, load_function
from devserver.template import load_function_specs

URL_FILE = "running-server.url"
ADMIN_FUNCTION = "AdminFunction"


@contextlib.contextmanager
def running_url(data_dir: Path, url: str) -> Iterator[None]:
    """While ``make run`` serves, its embedded Redis's URL sits in its data folder, for the key commands."""
    marker = data_dir / URL_FILE
    marker.write_text(url, encoding="utf-8")
    try:
        yield
    finally:
        marker.unlink(missing_ok=True)


@contextlib.contextmanager
def admin_redis(data_dir: Path) -> Iterator[str]:
    """``REDIS_URL``, else the running embedded Redis of ``make run``, else one started on its data folder."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    marker = data_dir / URL_FILE
    if marker.is_file():
        url = marker.read_text(encoding="utf-8").strip()
        if _answers(url):  # the command runs outside the check: its own Redis errors are never taken for "not up"
            yield url
            return
    data_dir.mkdir(parents=True, exist_ok=True)
    with EmbeddedRedis(data_dir=data_dir) as server:
        yield server.url


def _answers(url: str) -> bool:
    """Whether a Redis answers at ``url`` (a ``make run`` that is up, not a marker left by one that is gone)."""
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=1) as client:
            return bool(client.ping())
    except redis.RedisError:
        return False


def invoke_admin(event: dict[str, Any]) -> dict[str, Any]:
    """Run the admin function's handler once, as Lambda would."""
    spec = load_function_specs()[ADMIN_FUNCTION]
    _, handler = load_function(spec)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return handler(event, FakeLambdaContext(function_name=ADMIN_FUNCTION))
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devserver.keys", description=__doc__)
    commands = parser.add_subparsers(dest="action", required=True)
    create = commands.add_parser("create", help="create a key for a tenant; the key is the last line printed")
    create.add_argument("--tenant", required=True)
    create.add_argument("--scopes", default="read,write,delete,list", help="comma-separated: read,write,delete,list")
    create.add_argument("--label", default="")
    listing = commands.add_parser("list", help="list keys (ids, tenants, scopes; never the keys)")
    listing.add_argument("--tenant")
    revoke = commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("--key-id", required=True)
    adopt = commands.add_parser(
        "adopt", help="move every session stored with MOTORHEAD_AUTH=none to a tenant (right after turning auth on)"
    )
    adopt.add_argument("--tenant", required=True)
    adopt.add_argument("--dry-run", action="store_true", help="only count what would move")
    args = parser.parse_args(argv)

    event: dict[str, Any] = {"action": args.action}
    if args.action == "create":
        event |= {"tenant": args.tenant, "scopes": args.scopes.split(","), "label": args.label}
    elif args.action == "list" and args.tenant:
        event["tenant"] = args.tenant
    elif args.action == "revoke":
        event["key_id"] = args.key_id
    elif args.action == "adopt":
        event |= {"tenant": args.tenant, "dry_run": args.dry_run}

    # a command's output is for a person: the function's JSON logs and metrics would bury the key
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    data_dir = Path(os.environ.get("MOTORHEAD_DATA_DIR", ".data")).resolve() / "redis"
    with admin_redis(data_dir) as url:
        os.environ["REDIS_URL"] = url
        answer = invoke_admin(event)
        if args.action == "adopt":
            answer = adopt_to_the_end(event, answer)
    if not answer.get("ok"):
        print(f"motorhead: {answer.get('error')}", file=sys.stderr)
        return 2
    if args.action == "create":
        print(f"created key {answer['key_id']} for tenant {answer['tenant']} (scopes: {', '.join(answer['scopes'])})")
        print("it is shown once; keep it secret:")
        print(answer["key"])
    elif args.action == "list":
        print(json.dumps(answer["keys"], indent=2) if answer["keys"] else "no keys")
    elif args.action == "adopt":
        print(adoption_summary(answer))
    else:
        print(f"revoked {answer['key_id']}" if answer["revoked"] else f"no key {answer['key_id']}")
    return 0


def adopt_to_the_end(event: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """Invoke ``adopt`` again while it stops early (its time budget) having made progress; the counts added up.

    On AWS an administrator re-invokes the function the same way; locally one command does the whole move. A dry run
    is not repeated: it changes nothing, so a second one would count the same sessions again."""
    total = dict(answer)
    while total.get("ok") and not total["complete"] and not event["dry_run"]:
        if not (answer["sessions_moved"] or answer["skipped"]):
            break  # no progress (only conflicts left before the budget ran out): report what is left
        answer = invoke_admin(event)
        if not answer.get("ok"):
            return answer
        for count in ("sessions_moved", "documents_moved", "skipped"):
            total[count] += answer[count]
        total["conflicts"] = list(dict.fromkeys([*total["conflicts"], *answer["conflicts"]]))
        total["complete"] = answer["complete"]
    return total


def adoption_summary(answer: dict[str, Any]) -> str:
    """What ``adopt`` did (or would do), in a few lines."""
    verb = "would move" if answer["dry_run"] else "moved"
    lines = [
        f"tenant {answer['tenant']}: {verb} {answer['sessions_moved']} sessions and {answer['documents_moved']} "
        f"search documents; {answer['skipped']} skipped (no data left to move, only list entries)"
    ]
    if answer["conflicts"]:
        conflicts = ", ".join(map(repr, answer["conflicts"]))
        lines.append(
            f"left alone (the tenant has its own session of that id, or another adoption is unfinished): {conflicts}"
        )
    if not answer["complete"]:
        lines.append("stopped early: run the same command again to go on")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
