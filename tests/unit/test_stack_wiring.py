"""The stack as CloudFormation receives it: template.yaml translated by the SAM transform (samtranslator, the library
CloudFormation's AWS::Serverless transform runs), then resolved for one set of parameters the way CloudFormation
resolves it (conditions, ``Fn::If``, ``Ref``, ``AWS::NoValue``). It checks the wiring cfn-lint cannot see:

- every function in the VPC the stack creates has a route to every AWS service it calls (an interface endpoint with
  private DNS in its subnets that its security group may reach, or a NAT gateway), and to its Redis;
- every secret a function reads is granted to its role, and nothing more; no secret sits in any environment;
- every queue's visibility timeout fits its consumer's timeout;
- the HTTP API's access log has the functions' request id and no session id; `sam deploy --guided` has nothing to ask
  about authentication;

and creates the default stack in moto's CloudFormation (every resource type moto implements).

What a function calls is read from what the code reads: a queue URL in its environment means SQS, a ``*_SECRET``
variable Secrets Manager, an OpenAI/Azure setting or a JWKS URL the internet. X-Ray needs no route: the SDK sends
segments over UDP to the daemon Lambda runs beside the function ("Lambda runs the X-Ray daemon",
docs.aws.amazon.com/xray/latest/devguide/xray-services-lambda.html); logs and EMF metrics leave through the
function's log stream, and SQS event sources are polled by the Lambda service, not by the function.
"""

from __future__ import annotations

import io
import json
import re
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from devserver.template import TEMPLATE, condition_values

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK = "mh"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
PSEUDO = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::StackName": STACK,
    "AWS::StackId": STACK_ID,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}
OPENAI_SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:openai-AbCdEf"
BYO_PASSWORD_SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:redis-password-AbCdEf"

# Parameter sets a deployer would give, by name (the template's defaults for everything else).
SCENARIOS: dict[str, dict[str, str]] = {
    "defaults": {},
    "nodes": {"RedisDeployment": "nodes", "RedisEngine": "valkey"},
    "redis-oss": {"RedisEngine": "redis"},
    "openai-through-nat": {
        "NatGateway": "true",
        "OpenAiApiKeySecretArn": OPENAI_SECRET,
        "LongTermMemory": "true",
    },
    "jwt-through-nat": {
        "NatGateway": "true",
        "AuthMode": "jwt",
        "JwtIssuer": "https://issuer.example/",
        "JwtAudience": "motorhead",
        "JwksUrl": "https://issuer.example/.well-known/jwks.json",
    },
    "own-redis": {"RedisUrl": "rediss://my-redis.example:6379", "RedisPasswordSecretArn": BYO_PASSWORD_SECRET},
    "own-redis-in-own-vpc": {
        "RedisUrl": "rediss://my-redis.example:6379",
        "VpcSubnetIds": "subnet-0aaa,subnet-0bbb",
        "VpcSecurityGroupIds": "sg-0ccc",
    },
}
CREATED = [name for name, parameters in SCENARIOS.items() if "RedisUrl" not in parameters]


# --- the translated template ------------------------------------------------------------------------------------


class _LongForm(yaml.SafeLoader):
    """template.yaml's short-form tags as CloudFormation's long form, as the SAM transform receives them."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        value = value.split(".", 1) if suffix == "GetAtt" else value
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {suffix if suffix in {"Ref", "Condition"} else f"Fn::{suffix}": value}


_LongForm.add_multi_constructor("!", _intrinsic)


def sam_template(*, api_auth: bool = True) -> dict[str, Any]:
    """template.yaml as `sam package` hands it over: code in S3 (here dummy keys). ``api_auth=False`` drops the HTTP
    API's ``Auth``, to show it changes nothing."""
    with TEMPLATE.open(encoding="utf-8") as handle:
        template: dict[str, Any] = yaml.load(handle, Loader=_LongForm)  # noqa: S506 - SafeLoader subclass
    for name, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            properties["CodeUri"] = f"s3://artifacts/{name}.zip"
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            properties["ContentUri"] = f"s3://artifacts/{name}.zip"
    if not api_auth:
        del template["Resources"]["MotorheadApi"]["Properties"]["Auth"]
    return template


@cache
def translate(*, api_auth: bool = True) -> str:
    """The CloudFormation template the SAM transform makes of template.yaml (JSON text, so each caller gets its own
    copy)."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=REGION))
    translated = translator.translate(sam_template(api_auth=api_auth), parameter_values={}, get_managed_policy_map=dict)
    return json.dumps(translated, sort_keys=True)


def translated() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(translate())
    return result


# --- the stack CloudFormation would create for given parameters -------------------------------------------------


@dataclass(frozen=True)
class Ref:
    """``Ref`` of a resource of the stack."""

    name: str


@dataclass(frozen=True)
class Att:
    """``Fn::GetAtt`` of a resource of the stack."""

    name: str
    attribute: str


@dataclass(frozen=True)
class Sub:
    """A ``Fn::Sub`` string that still names resources of the stack (``${Resource.Attribute}``)."""

    text: str


_NO_VALUE = object()


class Stack:
    """The resources CloudFormation creates from the translated template with ``parameters``, each property
    resolved: parameters and pseudo parameters by value, resources as ``Ref``/``Att``/``Sub``."""

    def __init__(self, parameters: Mapping[str, str]) -> None:
        self.given = dict(parameters)
        self.template = translated()
        declared = self.template["Parameters"]
        self.parameters = {name: str(parameters.get(name, spec.get("Default", ""))) for name, spec in declared.items()}
        self.list_parameters = {name for name, spec in declared.items() if spec["Type"] == "CommaDelimitedList"}
        self.conditions = {name: self.truth(body) for name, body in self.template["Conditions"].items()}
        self.resources: dict[str, dict[str, Any]] = {
            name: {**resource, "Properties": self.resolve(resource.get("Properties", {}))}
            for name, resource in self.template["Resources"].items()
            if self.conditions.get(resource.get("Condition", ""), True)
        }

    # conditions and rules ---------------------------------------------------------------------------------------
    def value(self, item: Any) -> Any:
        if isinstance(item, dict) and set(item) == {"Ref"}:
            name = item["Ref"]
            raw = self.parameters[name]
            return raw.split(",") if name in self.list_parameters else raw
        if isinstance(item, dict) and set(item) == {"Fn::Join"}:
            separator, items = item["Fn::Join"]
            listed = self.value(items) if isinstance(items, dict) else [self.value(part) for part in items]
            return separator.join(listed)
        return item

    def truth(self, item: Any) -> bool:
        ((name, argument),) = item.items()
        if name == "Condition":
            return self.truth(self.template["Conditions"][argument])
        if name == "Fn::Equals":
            return str(self.value(argument[0])) == str(self.value(argument[1]))
        if name == "Fn::Not":
            return not self.truth(argument[0])
        if name == "Fn::And":
            return all(self.truth(part) for part in argument)
        if name == "Fn::Or":
            return any(self.truth(part) for part in argument)
        if name == "Fn::EachMemberEquals":
            return all(member == argument[1] for member in self.value(argument[0]))
        raise AssertionError(f"no evaluation for {name}")

    def broken_rules(self) -> list[str]:
        """The template's rules whose assertions these parameters break (CloudFormation refuses the stack)."""
        broken = []
        for name, rule in self.template.get("Rules", {}).items():
            if "RuleCondition" in rule and not self.truth(rule["RuleCondition"]):
                continue
            broken += [f"{name}: {a['AssertDescription']}" for a in rule["Assertions"] if not self.truth(a["Assert"])]
        return broken

    # properties -------------------------------------------------------------------------------------------------
    def resolve(self, item: Any) -> Any:
        if isinstance(item, list):
            return [value for value in (self.resolve(part) for part in item) if value is not _NO_VALUE]
        if not isinstance(item, dict):
            return item
        if len(item) == 1:
            ((name, argument),) = item.items()
            if name == "Ref":
                if argument == "AWS::NoValue":
                    return _NO_VALUE
                if argument in PSEUDO:
                    return PSEUDO[argument]
                if argument in self.parameters:
                    return self.value(item)
                return Ref(argument)
            if name == "Fn::If":
                condition, when_true, when_false = argument
                return self.resolve(when_true if self.conditions[condition] else when_false)
            if name == "Fn::GetAtt":
                return Att(*argument)
            if name == "Fn::Sub":
                return self.substitute(*(argument if isinstance(argument, list) else [argument, {}]))
            if name == "Fn::GetAZs":
                return [f"{REGION}{zone}" for zone in "abc"]
            if name == "Fn::Select":
                index, listed = self.resolve(argument)
                return listed[int(index)]
            if name == "Fn::Split":
                separator, text = self.resolve(argument)
                return text.split(separator)
        resolved = {key: self.resolve(value) for key, value in item.items()}
        return {key: value for key, value in resolved.items() if value is not _NO_VALUE}

    def substitute(self, text: str, variables: Mapping[str, Any]) -> Any:
        values = {name: self.resolve(value) for name, value in variables.items()}
        whole = re.fullmatch(r"\$\{([^}]+)\}", text)
        if whole and whole.group(1) in values:
            return values[whole.group(1)]  # a policy template's "${secretArn}": the value itself, Ref included

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            value = values.get(name, PSEUDO.get(name, self.parameters.get(name)))
            return match.group(0) if value is None or not isinstance(value, str) else value

        done = re.sub(r"\$\{([^}!]+)\}", one, text)
        return Sub(done) if "${" in done else done

    # what the checks ask ----------------------------------------------------------------------------------------
    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {name: res["Properties"] for name, res in self.resources.items() if res["Type"] == resource_type}

    def functions(self) -> dict[str, dict[str, Any]]:
        return self.of_type("AWS::Lambda::Function")

    def environment(self, function: str) -> dict[str, Any]:
        variables: dict[str, Any] = self.functions()[function].get("Environment", {}).get("Variables", {})
        return {name: value for name, value in variables.items() if value != ""}

    def role_statements(self, function: str) -> list[dict[str, Any]]:
        role = self.functions()[function]["Role"]
        assert isinstance(role, Att), function
        policies = self.resources[role.name]["Properties"].get("Policies", [])
        return [statement for policy in policies for statement in policy["PolicyDocument"]["Statement"]]

    def group_id(self, value: Any) -> str:
        """The security group a ``GroupId``/``SecurityGroupIds`` entry names (its logical id)."""
        assert isinstance(value, Att) and value.attribute == "GroupId", value
        return value.name


def services_called(environment: Mapping[str, Any]) -> set[str]:
    """The AWS services and networks a function's code reaches with this environment (see the module's docstring)."""
    called = set()
    if any(name.endswith("_QUEUE_URL") for name in environment):
        called.add("sqs")
    if any(name.endswith("_SECRET") for name in environment):
        called.add("secretsmanager")
    providers = ("MOTORHEAD_OPENAI_API_KEY_SECRET", "OPENAI_API_BASE", "AZURE_API_BASE")
    if any(name in environment for name in providers) or environment.get("MOTORHEAD_AUTH") == "jwt":
        called.add("internet")
    if "REDIS_URL" in environment:
        called.add("redis")
    return called


def egress(stack: Stack, group: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = stack.of_type("AWS::EC2::SecurityGroup")[group].get("SecurityGroupEgress", [])
    return rules


def ingress(stack: Stack, group: str) -> list[dict[str, Any]]:
    inline = stack.of_type("AWS::EC2::SecurityGroup")[group].get("SecurityGroupIngress", [])
    separate = [
        rule
        for rule in stack.of_type("AWS::EC2::SecurityGroupIngress").values()
        if stack.group_id(rule["GroupId"]) == group
    ]
    return [*inline, *separate]


def allows(rule: Mapping[str, Any], port: int) -> bool:
    return rule["IpProtocol"] in {"tcp", "-1"} and int(rule.get("FromPort", 0)) <= port <= int(
        rule.get("ToPort", 65535)
    )


def has_nat_route(stack: Stack, subnets: list[Any]) -> bool:
    """Every subnet's route table sends 0.0.0.0/0 to a NAT gateway that sits in a subnet routed to an internet
    gateway attached to the VPC."""
    associations = stack.of_type("AWS::EC2::SubnetRouteTableAssociation").values()
    table_of = {a["SubnetId"]: a["RouteTableId"] for a in associations}
    routes = [r for r in stack.of_type("AWS::EC2::Route").values() if r["DestinationCidrBlock"] == "0.0.0.0/0"]
    attached = {a["InternetGatewayId"] for a in stack.of_type("AWS::EC2::VPCGatewayAttachment").values()}
    nats = stack.of_type("AWS::EC2::NatGateway")

    def to_internet(table: Any) -> bool:
        return any(r["RouteTableId"] == table and r.get("GatewayId") in attached for r in routes)

    def to_nat(table: Any) -> bool:
        return any(
            r["RouteTableId"] == table
            and isinstance(r.get("NatGatewayId"), Ref)
            and to_internet(table_of.get(nats[r["NatGatewayId"].name]["SubnetId"]))
            for r in routes
        )

    return all(subnet in table_of and to_nat(table_of[subnet]) for subnet in subnets)


@pytest.fixture(scope="module", params=list(SCENARIOS))
def stack(request: pytest.FixtureRequest) -> Stack:
    return Stack(SCENARIOS[request.param])


# --- the checks -------------------------------------------------------------------------------------------------


def test_scenarios_given_each_parameter_set_break_no_rule_and_conditions_evaluate_as_the_local_runtime_does(
    stack: Stack,
) -> None:
    # Given a deployer's parameter set / Then CloudFormation's rules accept it, and devserver (make run, make invoke)
    # evaluates every condition the same way
    assert stack.broken_rules() == []
    given = {name: value for name, value in stack.parameters.items() if value != ""}
    assert condition_values(given) == stack.conditions


@pytest.mark.parametrize(
    ("parameters", "rule"),
    [
        ({"OpenAiApiKeySecretArn": OPENAI_SECRET}, "CreatedRedisBringsItsOwnNetwork"),
        ({"AuthMode": "jwt"}, "CreatedRedisBringsItsOwnNetwork"),
        ({"VpcSubnetIds": "subnet-0aaa", "VpcSecurityGroupIds": "sg-0ccc"}, "CreatedRedisBringsItsOwnNetwork"),
        ({"RedisPasswordSecretArn": BYO_PASSWORD_SECRET}, "CreatedRedisBringsItsOwnNetwork"),
        ({"RedisUrl": "rediss://my-redis.example:6379", "NatGateway": "true"}, "NatGatewayOnlyInTheCreatedVpc"),
    ],
)
def test_rules_given_a_combination_with_no_route_the_stack_is_refused(parameters: dict[str, str], rule: str) -> None:
    # Given parameters under which a function would call what it cannot reach (OpenAI or a JWKS URL from the created
    # VPC without NAT), or two sources for one thing / Then a rule refuses the stack before anything is created
    broken = Stack(parameters).broken_rules()
    assert broken and all(line.startswith(f"{rule}:") for line in broken), broken


def test_code_given_every_aws_client_the_endpoints_cover_the_services_it_calls() -> None:
    # Given every AWS API the layer and the functions call (a boto3 client, a powertools Parameters getter) / Then they
    # are the services the created VPC has endpoints for: a new one fails here until the template gives it a route
    sources = [*(REPO / "layers/shared/python/motorhead").rglob("*.py"), *(REPO / "functions").rglob("*.py")]
    text = "\n".join(path.read_text(encoding="utf-8") for path in sources)
    called = set(re.findall(r"boto3\.client\(\s*[\"']([a-z0-9-]+)[\"']", text))
    getters = {"get_secret": "secretsmanager", "get_parameter": "ssm", "get_app_config": "appconfig"}
    called |= {service for getter, service in getters.items() if re.search(rf"\bparameters\.{getter}s?\(", text)}
    endpoints = {
        props["ServiceName"].rsplit(".", 1)[1] for props in Stack({}).of_type("AWS::EC2::VPCEndpoint").values()
    }
    assert called == endpoints == {"sqs", "secretsmanager"}


def test_network_given_the_created_vpc_every_function_reaches_every_service_it_calls(stack: Stack) -> None:
    # Given each function of the stack / When it runs in the VPC the stack creates / Then each AWS service it calls has
    # an interface endpoint with private DNS in the function's subnets, reachable on 443 both ways through the security
    # groups (or, for the internet, a NAT route and egress); its Redis accepts its security group on the URL's port
    vpc_subnets = {Ref(name) for name in stack.of_type("AWS::EC2::Subnet")}
    endpoints = stack.of_type("AWS::EC2::VPCEndpoint")
    for function, props in stack.functions().items():
        environment = stack.environment(function)
        called = services_called(environment)
        if "VpcConfig" not in props:
            assert "RedisUrl" in stack.given, function  # only with your own Redis may a function run outside a VPC
            continue
        subnets, groups = props["VpcConfig"]["SubnetIds"], props["VpcConfig"]["SecurityGroupIds"]
        if not set(subnets) <= vpc_subnets:
            continue  # your own VPC: its routes are yours (README, Deploy to AWS)
        assert len(subnets) == 2 and groups == [Att("FunctionSecurityGroup", "GroupId")], function
        group = stack.group_id(groups[0])
        for service in called - {"redis", "internet"}:
            (endpoint,) = [e for e in endpoints.values() if e["ServiceName"] == f"com.amazonaws.{REGION}.{service}"]
            assert endpoint["VpcEndpointType"] == "Interface" and endpoint["PrivateDnsEnabled"] is True, service
            assert set(subnets) <= set(endpoint["SubnetIds"]), (function, service)
            endpoint_groups = {stack.group_id(g) for g in endpoint["SecurityGroupIds"]}
            assert any(
                allows(rule, 443) and stack.group_id(rule["SourceSecurityGroupId"]) == group
                for endpoint_group in endpoint_groups
                for rule in ingress(stack, endpoint_group)
            ), (function, service)
            assert any(
                allows(rule, 443) and stack.group_id(rule["DestinationSecurityGroupId"]) in endpoint_groups
                for rule in egress(stack, group)
                if "DestinationSecurityGroupId" in rule
            ), (function, service)
        if "internet" in called:
            assert has_nat_route(stack, subnets), function
            assert any(allows(rule, 443) and rule.get("CidrIp") == "0.0.0.0/0" for rule in egress(stack, group))
        if "redis" in called:
            url = environment["REDIS_URL"]
            assert isinstance(url, Sub) and url.text.startswith("rediss://"), (function, url)  # TLS
            cache = url.text.split("${", 1)[1].split(".", 1)[0]
            redis_groups = {stack.group_id(g) for g in stack.resources[cache]["Properties"]["SecurityGroupIds"]}
            port = 6379  # ElastiCache's port for both kinds (the URL takes it from the endpoint)
            assert any(
                allows(rule, port) and stack.group_id(rule["SourceSecurityGroupId"]) == group
                for redis_group in redis_groups
                for rule in ingress(stack, redis_group)
            ), function
            assert any(
                allows(rule, port) and stack.group_id(rule["DestinationSecurityGroupId"]) in redis_groups
                for rule in egress(stack, group)
                if "DestinationSecurityGroupId" in rule
            ), function


def test_network_given_the_created_vpc_only_the_functions_reach_redis_and_the_endpoints(stack: Stack) -> None:
    # Given the created security groups / Then Redis and the endpoints take traffic from the functions' group alone,
    # send none, and no NAT route or internet egress exists unless NatGateway asks for it
    groups = stack.of_type("AWS::EC2::SecurityGroup")
    if not groups:
        return
    for group in ("RedisSecurityGroup", "EndpointSecurityGroup"):
        assert [stack.group_id(rule["SourceSecurityGroupId"]) for rule in ingress(stack, group)] == [
            "FunctionSecurityGroup"
        ]
        assert egress(stack, group) == [
            {"Description": "no outbound traffic", "IpProtocol": "-1", "CidrIp": "127.0.0.1/32"}
        ]
    assert ingress(stack, "FunctionSecurityGroup") == []
    nat = stack.parameters["NatGateway"] == "true"
    assert bool(stack.of_type("AWS::EC2::NatGateway")) == nat
    assert any(rule.get("CidrIp") == "0.0.0.0/0" for rule in egress(stack, "FunctionSecurityGroup")) == nat
    subnets = [Ref("PrivateSubnetA"), Ref("PrivateSubnetB")]
    assert has_nat_route(stack, subnets) == nat
    zones = {
        props["AvailabilityZone"] for name, props in stack.of_type("AWS::EC2::Subnet").items() if "Private" in name
    }
    assert len(zones) == 2


def test_secrets_given_every_function_what_it_reads_is_granted_and_nothing_more(stack: Stack) -> None:
    # Given each function's environment and role / Then the secrets its code reads (every *_SECRET variable) are
    # exactly those its role may GetSecretValue, with no other Secrets Manager action and no wildcard
    for function in stack.functions():
        reads = {value for name, value in stack.environment(function).items() if name.endswith("_SECRET")}
        statements = [s for s in stack.role_statements(function) if any("secretsmanager" in a for a in s["Action"])]
        assert all(s["Action"] == ["secretsmanager:GetSecretValue"] for s in statements), function
        granted = {s["Resource"] for s in statements}
        assert reads == granted, function
        assert "*" not in granted and not any(isinstance(arn, str) and arn.endswith("*") for arn in granted)
    if "RedisUrl" not in stack.given:
        created = Ref("RedisPasswordSecret")
        readers = {f for f in stack.functions() if created in set(stack.environment(f).values())}
        assert readers == {f for f in stack.functions() if "REDIS_URL" in stack.environment(f)}


def test_secrets_given_every_function_no_secret_sits_in_its_environment(stack: Stack) -> None:
    # Given each function's environment / Then no variable holds a password or a key: a Redis URL carries no
    # password, no value is a dynamic reference to a secret, and the only secret-shaped names are *_SECRET (an ARN)
    for function in stack.functions():
        for name, value in stack.environment(function).items():
            text = value.text if isinstance(value, Sub) else str(value)
            assert "{{resolve:" not in text, (function, name)
            assert not re.search(r"(PASSWORD|API_KEY|TOKEN)$", name), (function, name)
            if name == "REDIS_URL":
                assert urlsplit(text).password is None, function
            if name.endswith("_SECRET"):
                assert isinstance(value, Ref) or value.startswith("arn:aws:secretsmanager:"), (function, name)
    # the created password reaches ElastiCache by a dynamic reference, in the user's definition alone
    users = stack.of_type("AWS::ElastiCache::User")
    for user in users.values():
        assert user["AuthenticationMode"] == {
            "Type": "password",
            "Passwords": [Sub("{{resolve:secretsmanager:${RedisPasswordSecret}}}")],
        }


def test_queues_given_every_event_source_the_visibility_timeout_fits_the_consumer() -> None:
    # Given each SQS event source of the translated stack / Then its queue hides a received batch for at least 6 times
    # the consuming function's timeout (AWS's advice; Lambda refuses less than 1 time), plus any batching window
    stack = Stack({})
    mappings = stack.of_type("AWS::Lambda::EventSourceMapping")
    assert len(mappings) == 2
    for props in mappings.values():
        queue, function = props["EventSourceArn"], props["FunctionName"]
        assert isinstance(queue, Att) and isinstance(function, Ref)
        timeout = stack.functions()[function.name]["Timeout"]
        visibility = stack.of_type("AWS::SQS::Queue")[queue.name]["VisibilityTimeout"]
        assert visibility >= 6 * timeout + props.get("MaximumBatchingWindowInSeconds", 0), function.name


def test_api_given_the_access_log_it_is_json_with_the_request_id_and_no_session_id() -> None:
    # Given the HTTP API's stage / Then it writes a JSON access log whose requestId is what the functions log as
    # correlation_id (powertools' API_GATEWAY_HTTP path), naming the route by its template, never the raw path
    from aws_lambda_powertools.logging import correlation_paths

    stack = Stack({})
    (stage,) = stack.of_type("AWS::ApiGatewayV2::Stage").values()
    settings = stage["AccessLogSettings"]
    assert settings["DestinationArn"] == Att("ApiAccessLogGroup", "Arn")
    fields = json.loads(settings["Format"])
    assert fields["requestId"] == "$context.requestId"
    assert correlation_paths.API_GATEWAY_HTTP == "requestContext.requestId"
    assert fields["routeKey"] == "$context.routeKey"
    variables = set(re.findall(r"\$context\.[A-Za-z.]+", settings["Format"]))
    assert not variables & {"$context.path", "$context.resourcePath", "$context.requestOverride.path"}
    assert all(value.startswith("$context.") for value in fields.values())
    group = stack.of_type("AWS::Logs::LogGroup")["ApiAccessLogGroup"]
    assert group["RetentionInDays"] == stack.parameters["LogRetentionDays"]


def test_guided_deploy_given_every_http_event_sam_sees_auth_and_the_api_is_unchanged_by_it() -> None:
    # Given SAM CLI's rule (samcli/commands/deploy/auth_utils.py: an Api/HttpApi event counts as authenticated when it
    # or the API it names declares Auth) / Then no event of template.yaml makes `sam deploy --guided` ask "has no
    # authentication. Is this okay? [y/N]", and the declared Auth adds nothing to the translated template
    template = sam_template()
    for name, resource in template["Resources"].items():
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event["Type"] in {"Api", "HttpApi"}:
                api = event["Properties"].get("ApiId", {}).get("Ref")
                assert event["Properties"].get("Auth") or template["Resources"][api]["Properties"].get("Auth"), name
    assert translate(api_auth=False) == translate()


def test_guided_deploy_given_every_parameter_enter_keeps_a_valid_default() -> None:
    # Given every parameter / Then SAM prompts it with a default (none is NoEcho, which SAM asks with no default and
    # will not take Enter for), and the defaults together make a stack the rules accept
    parameters = translated()["Parameters"]
    assert all("Default" in spec and not spec.get("NoEcho") for spec in parameters.values())
    assert Stack({}).broken_rules() == []


SAM_CLI = REPO / ".sam-venv" / "bin" / "sam"


@pytest.mark.skipif(not SAM_CLI.exists(), reason="no SAM CLI in .sam-venv/ (make build installs it)")
def test_guided_deploy_given_enter_at_every_prompt_sam_cli_goes_on_to_deploy(tmp_path: Path) -> None:
    # Given SAM CLI (the version `make build` installs) and this repository's template and samconfig.toml / When
    # `sam deploy --guided` gets Enter at every prompt, with credentials for an endpoint that does not answer / Then it
    # prompts every parameter, asks nothing about authentication, and goes on to its first AWS call (the managed
    # bucket), which is where a real account would start deploying
    import os
    import subprocess

    for name in ("template.yaml", "samconfig.toml"):
        (tmp_path / name).write_text((REPO / name).read_text(encoding="utf-8"), encoding="utf-8")
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "unused",
        "AWS_SECRET_ACCESS_KEY": "unused",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # nothing listens: the first AWS call fails at once
        "SAM_CLI_TELEMETRY": "0",
    }
    result = subprocess.run(
        [str(SAM_CLI), "deploy", "--guided", "--template-file", "template.yaml"],
        input="\n" * 200,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert "Looking for resources needed for deployment" in output, output[-2000:]
    assert "authentication" not in output and "Security Constraints Not Satisfied" not in output
    prompted = set(re.findall(r"Parameter (\w+) \[", output))
    assert prompted == set(translated()["Parameters"])
    assert "Confirm changes before deploy [y/N]" in output  # samconfig.toml: no "Deploy this changeset? [y/N]"


# --- the stack in moto ------------------------------------------------------------------------------------------


def moto_template(stack: Stack) -> tuple[dict[str, Any], list[str]]:
    """The translated template as moto can take it, for ``stack``'s parameters. Moto's CloudFormation neither drops
    ``AWS::NoValue`` from lists nor implements every type, so: each ``Fn::If`` is decided and each condition's
    resources dropped as CloudFormation would; the resources of types moto does not implement (ElastiCache, the secret,
    the HTTP API, alarms) are removed and each reference to them becomes a placeholder string; FIFO queues get the
    ``.fifo`` name CloudFormation would generate. Returns it with the removed ids."""
    from moto.cloudformation.parsing import resource_class_from_type

    def decide(item: Any) -> Any:
        if isinstance(item, list):
            return [value for value in (decide(part) for part in item) if value is not _NO_VALUE]
        if not isinstance(item, dict):
            return item
        if set(item) == {"Fn::If"}:
            condition, when_true, when_false = item["Fn::If"]
            return decide(when_true if stack.conditions[condition] else when_false)
        if item == {"Ref": "AWS::NoValue"}:
            return _NO_VALUE
        decided = {key: decide(value) for key, value in item.items()}
        return {key: value for key, value in decided.items() if value is not _NO_VALUE}

    template = decide({key: value for key, value in stack.template.items() if key not in {"Conditions", "Rules"}})
    template["Resources"] = {name: res for name, res in template["Resources"].items() if name in stack.resources}
    template["Outputs"] = {
        name: out for name, out in template["Outputs"].items() if stack.conditions.get(out.get("Condition", ""), True)
    }
    for resource in [*template["Resources"].values(), *template["Outputs"].values()]:
        resource.pop("Condition", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        missing = [n for n, r in template["Resources"].items() if not resource_class_from_type(r["Type"])]
    for name in missing:
        del template["Resources"][name]

    def stand_in(match: re.Match[str]) -> str:
        return "stand-in" if match.group(1) in missing else match.group(0)

    def placeholder(item: Any) -> Any:
        if isinstance(item, list):
            return [placeholder(part) for part in item]
        if not isinstance(item, dict):
            return item
        if set(item) == {"Ref"} and item["Ref"] in missing:
            return f"stand-in-{item['Ref']}"
        if set(item) == {"Fn::GetAtt"} and item["Fn::GetAtt"][0] in missing:
            return "stand-in-" + "-".join(item["Fn::GetAtt"])
        if set(item) == {"Fn::Sub"} and isinstance(item["Fn::Sub"], str):
            return {"Fn::Sub": re.sub(r"\$\{(\w+)(\.[\w.]+)?\}", stand_in, item["Fn::Sub"])}
        return {key: placeholder(value) for key, value in item.items()}

    template = placeholder(template)
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::SQS::Queue" and resource["Properties"].get("FifoQueue"):
            resource["Properties"]["QueueName"] = f"{name}.fifo"
    return template, missing


@pytest.fixture(scope="module")
def moto_stack() -> Iterator[tuple[Any, list[str]]]:
    """The default stack created in moto's CloudFormation, with dummy code objects in its S3."""
    import boto3
    from moto import mock_aws

    template, missing = moto_template(Stack({}))
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {}\n")
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="artifacts")
        for name in template["Resources"]:
            s3.put_object(Bucket="artifacts", Key=f"{name}.zip", Body=code.getvalue())
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cloudformation.create_stack(
                StackName=STACK, TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_IAM"]
            )
        yield boto3.session.Session(region_name=REGION), missing


# Types moto's CloudFormation does not create (the stand-ins above); everything else of the stack it creates.
MOTO_MISSING_TYPES = {
    "AWS::ElastiCache::ServerlessCache",
    "AWS::ElastiCache::User",
    "AWS::ElastiCache::UserGroup",
    "AWS::SecretsManager::Secret",
    "AWS::ApiGatewayV2::Api",
    "AWS::ApiGatewayV2::Stage",
    "AWS::CloudWatch::Alarm",
    "AWS::SNS::Subscription",
}


def test_moto_given_the_default_stack_it_creates_the_network_functions_and_queues(
    moto_stack: tuple[Any, list[str]],
) -> None:
    # Given the default stack created in moto / Then it completes; every function runs in the stack's two private
    # subnets (two zones) with the functions' security group; the SQS and Secrets Manager endpoints sit in those
    # subnets with private DNS; Redis and the endpoints admit the functions' group on their ports
    session, missing = moto_stack
    types = {r["Type"] for name, r in translated()["Resources"].items() if name in missing}
    assert types <= MOTO_MISSING_TYPES
    cloudformation, ec2, lam = (session.client(name) for name in ("cloudformation", "ec2", "lambda"))
    assert cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cloudformation.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    }
    subnets = {physical["PrivateSubnetA"], physical["PrivateSubnetB"]}
    function_group = physical["FunctionSecurityGroup"]
    functions = lam.list_functions()["Functions"]
    assert len(functions) == len(Stack({}).functions())
    for function in functions:
        assert set(function["VpcConfig"]["SubnetIds"]) == subnets, function["FunctionName"]
        assert function["VpcConfig"]["SecurityGroupIds"] == [function_group], function["FunctionName"]
    zones = {s["AvailabilityZone"] for s in ec2.describe_subnets(SubnetIds=sorted(subnets))["Subnets"]}
    assert len(zones) == 2
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [physical["Vpc"]]}])["VpcEndpoints"]
    assert {e["ServiceName"] for e in endpoints} == {f"com.amazonaws.{REGION}.{s}" for s in ("sqs", "secretsmanager")}
    assert all(set(e["SubnetIds"]) == subnets and e["PrivateDnsEnabled"] for e in endpoints)
    groups = ec2.describe_security_groups(GroupIds=[physical["RedisSecurityGroup"], physical["EndpointSecurityGroup"]])
    ports = {
        (g["GroupId"], p["FromPort"], p["ToPort"], pair["GroupId"])
        for g in groups["SecurityGroups"]
        for p in g["IpPermissions"]
        for pair in p["UserIdGroupPairs"]
    }
    assert ports == {
        (physical["RedisSecurityGroup"], 6379, 6380, function_group),
        (physical["EndpointSecurityGroup"], 443, 443, function_group),
    }


def test_moto_given_the_default_stack_each_consumer_reads_its_queue_with_room_for_its_timeout(
    moto_stack: tuple[Any, list[str]],
) -> None:
    # Given moto's event source mappings / Then each feeds a function from a FIFO queue whose visibility timeout is
    # at least 6 times that function's timeout, and the post function sends to the two job queues
    session, _ = moto_stack
    lam, sqs = session.client("lambda"), session.client("sqs")
    mappings = lam.list_event_source_mappings()["EventSourceMappings"]
    assert len(mappings) == 2
    for mapping in mappings:
        timeout = lam.get_function_configuration(FunctionName=mapping["FunctionArn"])["Timeout"]
        url = sqs.get_queue_url(QueueName=mapping["EventSourceArn"].rsplit(":", 1)[1])["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attributes["FifoQueue"] == "true"
        assert int(attributes["VisibilityTimeout"]) >= 6 * timeout
    (post,) = [f for f in lam.list_functions()["Functions"] if "PostMemoryFunction" in f["FunctionName"]]
    urls = {v for k, v in post["Environment"]["Variables"].items() if k.endswith("_QUEUE_URL")}
    assert {url.rsplit("/", 1)[1] for url in urls} == {"SummaryQueue.fifo", "IndexQueue.fifo"}
