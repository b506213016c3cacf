"""What `make run` and `make invoke` build alike from template.yaml: each function's local Lambda runtime, with its
environment resolved for this machine (the template's parameters as a laptop needs them, the Redis URL, the local
queues' URLs), and the environment every function inherits from the process that runs it.

One place, so that a function run alone by ``make invoke`` (or described for ``sam local`` by ``make env-vars``) gets
exactly what the local gateway gives it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from devserver.execution import LocalFunction
from devserver.template import TEMPLATE, QueueConsumer, load_function_configs, load_queue_consumers

# Template parameters whose AWS default does not fit a laptop: the embedded or given Redis, no auth (unless asked),
# the local embedder (the template offers only OpenAI/Azure: onnxruntime does not fit beside the layer), and no
# per-tenant rate limit (one developer, often a load test: MOTORHEAD_RATE_LIMIT_RPS turns it on). Quotas keep the
# template's defaults.
LOCAL_PARAMETERS = {"AuthMode": "none", "Embedder": "auto", "RateLimitPerSecond": "0"}
# What the local runtime itself puts in its own environment, which no function may inherit from it.
NOT_INHERITED = ("REDIS_URL", "MOTORHEAD_SUMMARY_QUEUE_URL", "MOTORHEAD_INDEX_QUEUE_URL", "PORT")


def local_parameters(*, redis_url: str, user: Mapping[str, str]) -> dict[str, str]:
    """The template's parameters for this machine: ``LOCAL_PARAMETERS``, the Redis URL, and the user's
    ``MOTORHEAD_AUTH`` (when set) as ``AuthMode``."""
    parameters = {**LOCAL_PARAMETERS, "RedisUrl": redis_url}
    if "MOTORHEAD_AUTH" in user:
        parameters["AuthMode"] = user["MOTORHEAD_AUTH"]
    return parameters


def base_environment() -> dict[str, str]:
    """What every function inherits from this process: its environment now (the local SQS endpoint and credentials
    included, once started), less what the local runtime sets itself."""
    base = {name: value for name, value in os.environ.items() if name not in NOT_INHERITED}
    base.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the template sets for the functions that use numpy
    return base


def function_runtimes(
    *,
    redis_url: str,
    queues: dict[str, str],
    user: Mapping[str, str],
    base: dict[str, str],
    template: Path = TEMPLATE,
) -> dict[str, LocalFunction]:
    """Every function of the template with its own environment: Globals and its own ``Environment``, each ``!Ref``
    resolved here (``queues`` maps a queue's logical id to its local URL; the user's environment wins for any
    variable the template declares). Nothing starts until a function is invoked."""
    parameters = local_parameters(redis_url=redis_url, user=user)
    runtimes = {}
    for function_id, config in load_function_configs(parameters, queues, template).items():
        overrides = {name: user[name] for name in config.environment if name in user}
        runtimes[function_id] = LocalFunction(
            replace(config, environment={**config.environment, **overrides}), base_environment=base
        )
    return runtimes


def queues_sent_to(function_id: str, template: Path = TEMPLATE) -> list[QueueConsumer]:
    """The template's queues whose URL ``function_id``'s environment receives (``!Ref SummaryQueue``): those it sends
    jobs to, which need a local queue before it runs."""
    config = load_function_configs({}, {}, template)[function_id]
    return [consumer for consumer in load_queue_consumers(template) if consumer.queue_id in config.references]
