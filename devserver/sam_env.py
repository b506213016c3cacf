"""`make env-vars`: the ``--env-vars`` file of `sam local invoke` / `sam local start-api`, from template.yaml's
functions, so that a function in SAM's Docker container gets what `make invoke` gives it.

``{"<FunctionLogicalId>": {"REDIS_URL": ..., "MOTORHEAD_AUTH": ..., ...}, ...}``, for each function only the
variables its template declares (SAM overrides no other): ``REDIS_URL`` (a Redis that the container can reach:
``redis://host.docker.internal:6379/0`` unless given), ``MOTORHEAD_AUTH`` as `make run` sets it (``none`` unless
the user's environment says otherwise, so the sample events, which carry no credential, answer as with `make
invoke`), and the queue URLs of the post function left empty: ``sam local`` has no queues, so it sends no job (a
``!Ref`` SAM cannot resolve would otherwise reach boto3).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from devserver.local_stack import local_parameters
from devserver.template import TEMPLATE, load_function_configs, load_queue_consumers

DOCKER_REDIS_URL = "redis://host.docker.internal:6379/0"  # the host, as Docker Desktop names it for a container
DEFAULT_OUT = Path(".aws-sam") / "env-vars.json"


def sam_env_vars(*, redis_url: str, user: Mapping[str, str], template: Path = TEMPLATE) -> dict[str, dict[str, str]]:
    """Each function's overrides (see the module's docstring), by logical id."""
    consumers = load_queue_consumers(template)
    no_queues = {consumer.queue_id: "" for consumer in consumers}
    configs = load_function_configs(local_parameters(redis_url=redis_url, user=user), no_queues, template)
    names = {"REDIS_URL", "MOTORHEAD_AUTH", *(consumer.url_env for consumer in consumers if consumer.url_env)}
    return {
        function_id: {name: value for name, value in sorted(config.environment.items()) if name in names}
        for function_id, config in configs.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devserver.sam_env", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--redis-url", default=DOCKER_REDIS_URL, help=f"the Redis of the container ({DOCKER_REDIS_URL})"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"the file to write ({DEFAULT_OUT})")
    parser.add_argument("-t", "--template", type=Path, default=TEMPLATE, help="the SAM template (template.yaml)")
    args = parser.parse_args(argv)
    env_vars = sam_env_vars(redis_url=args.redis_url, user=os.environ, template=args.template.resolve())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(env_vars, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({len(env_vars)} functions): sam local invoke|start-api --env-vars {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
