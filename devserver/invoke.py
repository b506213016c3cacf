"""`make invoke FUNCTION=<LogicalId> EVENT=events/<file>.json`: one function of template.yaml on one event, run as the
local gateway of `make run` runs it, its JSON answer alone on stdout (every log line on stderr).

As under ``make run``: the function runs in its own process (``devserver.execution.LocalFunction``), with its
environment from the template (``devserver.local_stack``, the same resolution), killed past its ``Timeout``; on
``REDIS_URL`` when set, else on the embedded Redis of ``make run`` (the running one, or its data folder started for
the command); a function the template gives a queue's URL (the post function) sends to a local SQS queue made as
``make run`` makes it, for this command only (nothing consumes it: ``make run`` does).

Exit status: 0 with the handler's answer (an HTTP error status is an answer too); 1 when the handler raised, its
init failed or it ran past its timeout; 2 for an unknown function or an event file that is missing or not a JSON
object.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from devserver.embedded_redis import EmbeddedRedisError
from devserver.execution import FunctionError
from devserver.keys import admin_redis
from devserver.local_stack import base_environment, function_runtimes, queues_sent_to
from devserver.template import TEMPLATE, load_function_specs

if TYPE_CHECKING:
    from devserver.local_sqs import LocalSqs


class UsageError(Exception):
    """An unknown function, or an event file that is missing or is not a JSON object (exit status 2)."""


def answer_stream() -> TextIO:
    """A stream on this process's stdout for the answer alone; from here on, file descriptor 1 (``print``, the
    function's own process, the servers started here) writes to stderr."""
    sys.stdout.flush()
    answer = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return answer


def read_event(name: str) -> dict[str, Any]:
    if not name:
        raise UsageError("give an event file: make invoke FUNCTION=<LogicalId> EVENT=events/<file>.json")
    path = Path(name)
    if not path.is_file():
        raise UsageError(f"no event file {path} (the sample events are in events/)")
    try:
        event = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(event, dict):
        raise UsageError(f"{path} is not a JSON object (a Lambda event of this app is one)")
    return event


def check_function(function_id: str, template: Path) -> None:
    if not template.is_file():
        raise UsageError(f"no template {template}")
    functions = sorted(load_function_specs(template))
    if function_id not in functions:
        raise UsageError(f"unknown function {function_id!r}: {template.name} has {', '.join(functions)}")


def invoke(function_id: str, event: dict[str, Any], *, template: Path, data_dir: Path) -> dict[str, Any]:
    """The handler's answer; ``FunctionError`` when it raised, did not start or timed out."""
    user = dict(os.environ)  # what the user set, before this process adds its own (the local SQS's)
    with ExitStack() as stack:
        redis_url = stack.enter_context(admin_redis(data_dir))
        source = "REDIS_URL" if os.environ.get("REDIS_URL") else f"the embedded Redis {redis_url} (data in {data_dir})"
        print(f"motorhead: {function_id} on {source}", file=sys.stderr, flush=True)
        queues: dict[str, str] = {}
        sqs: LocalSqs | None = None
        consumers = queues_sent_to(function_id, template)
        if consumers:
            from devserver.local_sqs import LocalSqs  # moto: only for a function that sends jobs

            sqs = LocalSqs()
            stack.callback(sqs.stop)
            sqs.start()
            queues = {consumer.queue_id: sqs.create_queues(consumer).url for consumer in consumers}
        runtime = function_runtimes(
            redis_url=redis_url, queues=queues, user=user, base=base_environment(), template=template
        )[function_id]
        stack.callback(runtime.close)
        context = event.get("requestContext")  # an HTTP event's request id is the invocation's, as at the gateway
        result = runtime.invoke(event, request_id=context.get("requestId") if isinstance(context, dict) else None)
        if sqs is not None:
            report_jobs(sqs.client(), queues)
        return result


def report_jobs(client: Any, queues: dict[str, str]) -> None:
    """Say on stderr which jobs the function sent: they go nowhere, the queues end with this command."""
    for queue_id, url in queues.items():
        attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        count = int(attributes["Attributes"]["ApproximateNumberOfMessages"])
        if count:
            print(
                f"motorhead: {count} job(s) sent to {queue_id}, a local queue that ends with this command "
                "(`make run` runs its consumer)",
                file=sys.stderr,
            )


def main(argv: list[str] | None = None) -> int:
    answer = answer_stream()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    parser = argparse.ArgumentParser(prog="python -m devserver.invoke", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("function", metavar="FUNCTION", help="the function's logical id in the template")
    parser.add_argument("-e", "--event", required=True, help="the event file, e.g. events/health-ok.json")
    parser.add_argument("-t", "--template", type=Path, default=TEMPLATE, help="the SAM template (template.yaml)")
    args = parser.parse_args(argv)
    data_dir = Path(os.environ.get("MOTORHEAD_DATA_DIR", ".data")).resolve() / "redis"  # as `make run`'s
    try:
        if not args.function:
            raise UsageError("give a function: make invoke FUNCTION=<LogicalId> EVENT=events/<file>.json")
        check_function(args.function, args.template)
        event = read_event(args.event)
        result = invoke(args.function, event, template=args.template.resolve(), data_dir=data_dir)
    except UsageError as exc:
        print(f"motorhead: {exc}", file=sys.stderr)
        return 2
    except FunctionError as exc:
        print(f"motorhead: {args.function} failed: {exc}", file=sys.stderr)
        return 1
    except EmbeddedRedisError as exc:
        print(f"motorhead: the embedded Redis did not start: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    answer.write(json.dumps(result) + "\n")
    answer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
