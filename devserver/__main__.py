"""`make run`: the memory API on http://127.0.0.1:$PORT, with an embedded Redis when REDIS_URL is unset."""

from __future__ import annotations

import logging
import os
import signal
import sys
from contextlib import ExitStack
from types import FrameType

from devserver.embedded_redis import EmbeddedRedis
from devserver.keys import running_url
from devserver.local_sqs import LocalSqs, SqsPoller
from devserver.server import LocalGateway, load_functions, merged_openapi
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


def _stop(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.environ.setdefault("MOTORHEAD_AUTH", "none")  # a laptop's default; AWS's is api-key (template AuthMode)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"motorhead: {exc}", file=sys.stderr)
        return 2
    print(AUTH_LINES[settings.auth], flush=True)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the template sets for the functions that use numpy
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop)
    with ExitStack() as stack:
        if settings.redis_url is None:
            data_dir = settings.data_dir.resolve() / "redis"
            redis = stack.enter_context(EmbeddedRedis(data_dir=data_dir))
            os.environ["REDIS_URL"] = redis.url  # the handlers read it through Settings, as on Lambda
            stack.enter_context(running_url(data_dir, redis.url))  # where `make key` finds this server
            print(f"motorhead: embedded Redis {redis.url} (data in {data_dir})", flush=True)
        else:
            print("motorhead: using REDIS_URL", flush=True)
        consumers = load_queue_consumers()
        if consumers:
            sqs = LocalSqs().start()
            stack.callback(sqs.stop)
        queues = [sqs.create_queues(consumer) for consumer in consumers]
        for queue in queues:  # every URL is in the environment before any function reads its settings
            if queue.consumer.url_env:
                os.environ[queue.consumer.url_env] = queue.url  # where the post function sends its jobs
        for queue in queues:
            poller = SqsPoller(sqs, queue).start()
            stack.callback(poller.stop)
            print(f"motorhead: local SQS {queue.url} -> {queue.consumer.function_id}", flush=True)
        functions = load_functions(load_routes())
        openapi = merged_openapi(functions, title="Motorhead Serverless", version=__version__)
        gateway = LocalGateway(("127.0.0.1", settings.port), functions, openapi)
        stack.callback(gateway.server_close)
        print(f"motorhead: serving on http://127.0.0.1:{settings.port} (docs: /docs)", flush=True)
        try:
            gateway.serve_forever()
        except KeyboardInterrupt:
            print("motorhead: stopping", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
