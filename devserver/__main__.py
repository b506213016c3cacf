"""`make run`: the memory API on http://127.0.0.1:$PORT, with an embedded Redis when REDIS_URL is unset."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from contextlib import ExitStack
from functools import partial
from types import FrameType

from devserver.embedded_redis import EmbeddedRedis
from devserver.keys import running_url
from devserver.local_sqs import LocalSqs, SqsPoller
from devserver.local_stack import base_environment, function_runtimes
from devserver.server import IsolatedFunction, LocalGateway, merged_openapi
from devserver.template import load_queue_consumers, load_routes
from motorhead import __version__
from motorhead.errors import ConfigError
from motorhead.settings import load_settings

AUTH_LINES = {
    "none": "motorhead: MOTORHEAD_AUTH=none: no authentication, every request can read, change and delete every "
    "session (fine on a laptop; set MOTORHEAD_AUTH=api-key and create a key with `make key TENANT=<name>`)",
    "api-key": "motorhead: MOTORHEAD_AUTH=api-key: every request needs an API key (`make key TENANT=<name>`)",
    "jwt": "motorhead: MOTORHEAD_AUTH=jwt: every request needs a bearer JWT from the configured issuer",
}


class Stopping(Exception):
    """SIGINT, SIGTERM or SIGHUP before the gateway serves."""


def port_is_free(port: int) -> bool:
    """Whether the gateway could bind the port: with SO_REUSEADDR as it does, so a port that only holds connections
    closing after a stop (TIME_WAIT) counts as free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    user = dict(os.environ)  # what the user set, before this process adds its own
    os.environ.setdefault("MOTORHEAD_AUTH", "none")  # a laptop's default; AWS's is api-key (template AuthMode)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"motorhead: {exc}", file=sys.stderr)
        return 2
    print(AUTH_LINES[settings.auth], flush=True)
    if not port_is_free(settings.port):
        print(f"motorhead: port {settings.port} is already in use: stop what uses it, or set PORT", file=sys.stderr)
        return 2
    stop = threading.Event()
    gateway: LocalGateway | None = None

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()  # before the gateway serves, startup stops at its next step (each is short, and cleaned up)
        if gateway is not None:
            threading.Thread(target=gateway.shutdown, daemon=True).start()  # serve_forever returns, cleanly

    def stopping() -> None:
        if stop.is_set():
            raise Stopping

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    try:
        with ExitStack() as stack:
            redis_url = settings.redis_url
            if redis_url is None:
                data_dir = settings.data_dir.resolve() / "redis"
                redis = stack.enter_context(EmbeddedRedis(data_dir=data_dir))
                redis_url = redis.url
                stack.enter_context(running_url(data_dir, redis.url))  # where `make key` finds this server
                print(f"motorhead: embedded Redis {redis.url} (data in {data_dir})", flush=True)
            else:
                print("motorhead: using REDIS_URL", flush=True)
            stopping()
            consumers = load_queue_consumers()
            sqs = LocalSqs()
            stack.callback(sqs.stop)
            sqs.start()
            stopping()
            queues = [sqs.create_queues(consumer) for consumer in consumers]
            runtimes = function_runtimes(
                redis_url=redis_url,
                queues={q.consumer.queue_id: q.url for q in queues},
                user=user,
                base=base_environment(),  # now that the local SQS's endpoint and credentials are in os.environ
            )
            for runtime in runtimes.values():
                stack.callback(runtime.close)
            for queue in queues:
                poller = SqsPoller(sqs, queue, function=runtimes[queue.consumer.function_id]).start()
                stack.callback(poller.stop)
                print(f"motorhead: local SQS {queue.url} -> {queue.consumer.function_id}", flush=True)
            functions = [IsolatedFunction(route, runtimes[route.function_id]) for route in load_routes()]
            openapi = partial(merged_openapi, functions, title="Motorhead Serverless", version=__version__)
            stopping()
            gateway = LocalGateway(("127.0.0.1", settings.port), functions, openapi)
            stack.callback(gateway.server_close)
            print(f"motorhead: serving on http://127.0.0.1:{settings.port} (docs: /docs)", flush=True)
            if not stop.is_set():
                gateway.serve_forever()
            print("motorhead: stopping", flush=True)
    except Stopping:
        print("motorhead: stopped before serving", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
