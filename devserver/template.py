"""Reads the HTTP routes out of template.yaml: the one source of truth for routing, locally and on AWS."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = REPO_ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that accepts CloudFormation short-form tags (!Ref, !Sub, ...) as plain values."""


def _any_tag(loader: yaml.SafeLoader, _tag: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    return None


_CfnLoader.add_multi_constructor("!", _any_tag)


@dataclass(frozen=True)
class Route:
    """One HttpApi event of one function."""

    function_id: str
    method: str
    path: str
    code_uri: Path
    handler: str

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    def match(self, raw_path: str) -> dict[str, str] | None:
        """Path parameters, each percent-decoded exactly once, when ``raw_path`` (percent-encoded, split on its
        literal ``/``) fits this route, else None. A parameter that does not decode to UTF-8 raises
        ``UnicodeDecodeError``."""
        found = self._pattern.match(raw_path)
        if found is None:
            return None
        return {name: unquote(value, errors="strict") for name, value in found.groupdict().items()}

    @property
    def _pattern(self) -> re.Pattern[str]:
        return _compiled(self.path)


@lru_cache(maxsize=64)
def _compiled(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$")


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        data = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a mapping")
    return data


def load_routes(path: Path = TEMPLATE) -> list[Route]:
    """Every ``HttpApi`` event of every ``AWS::Serverless::Function`` in the template."""
    template = load_template(path)
    globals_handler = template.get("Globals", {}).get("Function", {}).get("Handler")
    routes: list[Route] = []
    for function_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties", {})
        for event in props.get("Events", {}).values():
            if event.get("Type") != "HttpApi":
                continue
            routes.append(
                Route(
                    function_id=function_id,
                    method=str(event["Properties"]["Method"]).upper(),
                    path=str(event["Properties"]["Path"]),
                    code_uri=(path.parent / str(props["CodeUri"])).resolve(),
                    handler=str(props.get("Handler", globals_handler)),
                )
            )
    return routes


@dataclass(frozen=True)
class QueueConsumer:
    """A function fed by an SQS queue of the template, with the queue's settings."""

    function_id: str
    code_uri: Path
    handler: str
    queue_id: str
    fifo: bool
    visibility_timeout: int
    max_receive_count: int | None
    batch_size: int
    url_env: str | None  # the environment variable through which producers get the queue's URL (!Ref Queue)


def _parameter_default(template: dict[str, Any], value: Any) -> Any:
    """A parameter's default when ``value`` names a parameter (``!Ref X`` loads as "X"), else the value."""
    parameter = template.get("Parameters", {}).get(value) if isinstance(value, str) else None
    return parameter.get("Default") if parameter else value


def load_queue_consumers(path: Path = TEMPLATE) -> list[QueueConsumer]:
    """Every ``SQS`` event of every function, resolved against the queue resource it reads."""
    template = load_template(path)
    resources = template.get("Resources", {})
    globals_handler = template.get("Globals", {}).get("Function", {}).get("Handler")
    consumers: list[QueueConsumer] = []
    url_envs = {
        value: name
        for resource in resources.values()
        if resource.get("Type") == "AWS::Serverless::Function"
        for name, value in (resource.get("Properties", {}).get("Environment") or {}).get("Variables", {}).items()
        if isinstance(value, str)
    }
    for function_id, resource in resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties", {})
        for event in props.get("Events", {}).values():
            if event.get("Type") != "SQS":
                continue
            queue_ref = event["Properties"]["Queue"]
            queue_id = str(queue_ref[0] if isinstance(queue_ref, list) else queue_ref).split(".")[0]
            queue = resources[queue_id].get("Properties", {})
            redrive = queue.get("RedrivePolicy") or {}
            receive = _parameter_default(template, redrive.get("maxReceiveCount"))
            consumers.append(
                QueueConsumer(
                    function_id=function_id,
                    code_uri=(path.parent / str(props["CodeUri"])).resolve(),
                    handler=str(props.get("Handler", globals_handler)),
                    queue_id=queue_id,
                    fifo=bool(queue.get("FifoQueue", False)),
                    visibility_timeout=int(_parameter_default(template, queue.get("VisibilityTimeout", 30))),
                    max_receive_count=int(receive) if receive is not None else None,
                    batch_size=int(event["Properties"].get("BatchSize", 10)),
                    url_env=url_envs.get(queue_id),
                )
            )
    return consumers


@dataclass(frozen=True)
class FunctionDef:
    """Any function of the template (HTTP, queue consumer or neither, like the admin function)."""

    function_id: str
    code_uri: Path
    handler: str


def load_function_specs(path: Path = TEMPLATE) -> dict[str, FunctionDef]:
    """Every ``AWS::Serverless::Function`` of the template, by logical id."""
    template = load_template(path)
    globals_handler = template.get("Globals", {}).get("Function", {}).get("Handler")
    return {
        function_id: FunctionDef(
            function_id=function_id,
            code_uri=(path.parent / str(resource["Properties"]["CodeUri"])).resolve(),
            handler=str(resource["Properties"].get("Handler", globals_handler)),
        )
        for function_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == "AWS::Serverless::Function"
    }


@dataclass(frozen=True)
class FunctionConfig:
    """What Lambda gives one function: its code, handler, timeout, memory, and environment (Globals merged with the
    function's own ``Environment``, each ``!Ref`` resolved for this machine)."""

    function_id: str
    code_uri: Path
    handler: str
    timeout: float
    memory_size: int
    environment: dict[str, str]
    reserved_concurrency: int | None = None


# Values a function's environment may not take from the template here: a path that exists only on Lambda.
LAMBDA_ONLY_VARIABLES = frozenset({"TIKTOKEN_CACHE_DIR"})


def load_function_configs(
    parameters: dict[str, str], resources: dict[str, str], path: Path = TEMPLATE
) -> dict[str, FunctionConfig]:
    """Every function's configuration. ``!Ref Parameter`` takes ``parameters[name]`` when given, else the
    parameter's default; ``!Ref Resource`` takes ``resources[name]`` (a local queue's URL), and a variable whose
    reference has no local value is left out, as is a Lambda-only path."""
    template = load_template(path)
    defaults = template.get("Parameters", {})
    globals_fn = template.get("Globals", {}).get("Function", {})
    global_env = (globals_fn.get("Environment") or {}).get("Variables", {})

    def resolve(value: Any) -> str | None:
        if isinstance(value, str) and value in defaults:
            if value in parameters:
                return parameters[value]
            default = defaults[value].get("Default")
            return None if default is None else str(default)
        if isinstance(value, str) and value in template.get("Resources", {}):
            return resources.get(value)
        if isinstance(value, list | dict):
            return None  # an intrinsic function the local runtime does not evaluate
        return str(value)

    configs: dict[str, FunctionConfig] = {}
    for function_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties", {})
        declared = {**global_env, **(props.get("Environment") or {}).get("Variables", {})}
        environment = {
            name: resolved
            for name, value in declared.items()
            if name not in LAMBDA_ONLY_VARIABLES and (resolved := resolve(value)) is not None
        }
        reserved = props.get("ReservedConcurrentExecutions")
        configs[function_id] = FunctionConfig(
            function_id=function_id,
            code_uri=(path.parent / str(props["CodeUri"])).resolve(),
            handler=str(props.get("Handler", globals_fn.get("Handler", "app.handler"))),
            timeout=float(resolve(props.get("Timeout", globals_fn.get("Timeout", 3))) or 3),
            memory_size=int(resolve(props.get("MemorySize", globals_fn.get("MemorySize", 128))) or 128),
            environment=environment,
            reserved_concurrency=int(resolved) if reserved is not None and (resolved := resolve(reserved)) else None,
        )
    return configs
