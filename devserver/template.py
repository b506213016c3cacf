"""Reads the HTTP routes out of template.yaml: the one source of truth for routing, locally and on AWS."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = REPO_ROOT / "template.yaml"


if TYPE_CHECKING:
    _SafeLoader = yaml.SafeLoader
else:  # libyaml's parser when PyYAML has it: ten times faster on this template, which every `make invoke` reads
    _SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CfnLoader(_SafeLoader):
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


class _LongFormLoader(yaml.SafeLoader):
    """A YAML loader that turns each short-form tag into CloudFormation's long form (``!Equals [a, b]`` into
    ``{"Fn::Equals": [a, b]}``, ``!Ref X`` into ``{"Ref": "X"}``): what evaluating the template's conditions needs."""


def _long_form(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    value = _any_tag(loader, suffix, node)
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {suffix if suffix in {"Ref", "Condition"} else f"Fn::{suffix}": value}


_LongFormLoader.add_multi_constructor("!", _long_form)


def condition_values(parameters: Mapping[str, str], path: Path = TEMPLATE) -> dict[str, bool]:
    """Every condition of the template, evaluated with ``parameters`` (a parameter not given takes its default).
    Conditions only compare parameters (``Fn::Equals``, ``Fn::Not``, ``Fn::And``, ``Fn::Or``, ``Condition``,
    ``Fn::Join`` of a list parameter), so they evaluate here exactly as CloudFormation evaluates them."""
    with path.open(encoding="utf-8") as handle:
        template = yaml.load(handle, Loader=_LongFormLoader)  # noqa: S506 - SafeLoader subclass
    declared = template.get("Parameters", {})
    conditions: dict[str, Any] = template.get("Conditions", {})
    values: dict[str, bool] = {}

    def value(item: Any) -> Any:
        if isinstance(item, dict) and len(item) == 1:
            ((name, argument),) = item.items()
            if name == "Ref":
                parameter = declared[argument]
                raw = parameters.get(argument, parameter.get("Default", ""))
                return str(raw).split(",") if parameter.get("Type") == "CommaDelimitedList" else str(raw)
            if name == "Fn::Join":
                separator, items = argument
                listed = value(items) if isinstance(items, dict) else [value(part) for part in items]
                return separator.join(str(part) for part in listed)
            return truth(item)
        return item

    def truth(item: Any) -> bool:
        ((name, argument),) = item.items()
        if name == "Condition":
            return evaluate(argument)
        if name == "Fn::Equals":
            return str(value(argument[0])) == str(value(argument[1]))
        if name == "Fn::Not":
            return not truth(argument[0])
        if name == "Fn::And":
            return all(truth(part) for part in argument)
        if name == "Fn::Or":
            return any(truth(part) for part in argument)
        raise ValueError(f"{path}: cannot evaluate {name} in a condition")

    def evaluate(name: str) -> bool:
        if name not in values:
            values[name] = truth(conditions[name])
        return values[name]

    for name in conditions:
        evaluate(name)
    return values


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
        if len(raw_path) > 1 and raw_path.endswith("/"):  # API Gateway routes "/x/" as "/x" (rawPath keeps the "/")
            raw_path = raw_path[:-1]
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
    references: frozenset[str] = frozenset()  # the resources its environment names (``!Ref SummaryQueue``)


# Values a function's environment may not take from the template here: paths that exist only on Lambda (the layers'
# tiktoken cache and model folder; locally the package's cache and the PyPI packages' model files serve).
LAMBDA_ONLY_VARIABLES = frozenset({"TIKTOKEN_CACHE_DIR", "MOTORHEAD_LOCAL_MODEL_DIR"})


def load_function_configs(
    parameters: dict[str, str], resources: dict[str, str], path: Path = TEMPLATE, *, lambda_paths: bool = False
) -> dict[str, FunctionConfig]:
    """Every function's configuration. ``!Ref Parameter`` takes ``parameters[name]`` when given, else the
    parameter's default; ``!Ref Resource`` takes ``resources[name]`` (a local queue's URL), and a variable whose
    reference has no local value is left out, as is a Lambda-only path unless ``lambda_paths`` (for a run that
    lays out /opt and /var/task as Lambda does)."""
    template = load_template(path)
    defaults = template.get("Parameters", {})
    globals_fn = template.get("Globals", {}).get("Function", {})
    global_env = (globals_fn.get("Environment") or {}).get("Variables", {})
    conditions = condition_values(parameters, path)

    def resolve(value: Any) -> str | None:
        if isinstance(value, dict) and set(value) == {"Ref"}:  # the long form, as `sam build` writes it
            value = value["Ref"]
        if isinstance(value, dict) and set(value) == {"Fn::If"}:
            value = value["Fn::If"]
        if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str) and value[0] in conditions:
            return resolve(value[1] if conditions[value[0]] else value[2])  # !If [Condition, when true, when false]
        if value == "AWS::NoValue" or (isinstance(value, str) and "${" in value):
            return None  # no value, or a !Sub of resources (the Redis the stack creates) that exist only on AWS
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
            if (lambda_paths or name not in LAMBDA_ONLY_VARIABLES) and (resolved := resolve(value)) is not None
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
            references=frozenset(
                value
                for value in declared.values()
                if isinstance(value, str) and value in template.get("Resources", {})
            ),
        )
    return configs
