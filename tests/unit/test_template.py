"""template.yaml's asynchronous summarization: FIFO queue, dead-letter queue, summarizer function, least privilege.

``load_template()`` keeps each CloudFormation tag's argument as a plain value: ``!Ref SummaryQueue`` is
``"SummaryQueue"``, ``!GetAtt SummaryQueue.Arn`` is ``"SummaryQueue.Arn"``, ``!If [C, a, b]`` is ``["C", a, b]``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devserver.template import load_routes, load_template
from motorhead.adapters.redis_db.keys import session_tag
from tests.support import EVENTS, ref

TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
PARAMETERS: dict[str, Any] = TEMPLATE["Parameters"]
GLOBAL_ENV: dict[str, Any] = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
FUNCTIONS = {name: res["Properties"] for name, res in RESOURCES.items() if res["Type"] == "AWS::Serverless::Function"}
QUEUE = RESOURCES["SummaryQueue"]["Properties"]
DLQ = RESOURCES["SummaryDeadLetterQueue"]["Properties"]
SUMMARIZER = FUNCTIONS["SummarizerFunction"]

# SAM policy templates and AWS managed policies that can send to an SQS queue / read a Secrets Manager secret.
SQS_SEND_POLICIES = {"SQSSendMessagePolicy", "AmazonSQSFullAccess"}
SECRET_READ_POLICIES = {"AWSSecretsManagerGetSecretValuePolicy", "SecretsManagerReadWrite"}
DAY = 24 * 60 * 60


def policy_names(props: dict[str, Any]) -> Iterator[str]:
    """Names of the policy templates and managed policies of a function, including both branches of an ``!If``,
    and the actions of inline statements."""

    def walk(item: Any) -> Iterator[str]:
        if isinstance(item, str):
            yield item
        elif isinstance(item, list):  # !If [Condition, when-true, when-false]
            for branch in item[1:]:
                yield from walk(branch)
        elif isinstance(item, dict):
            for statement in item.get("Statement", []):
                actions = statement.get("Action", [])
                yield from [actions] if isinstance(actions, str) else actions
            yield from (key for key in item if key not in {"Statement", "Version"})

    for policy in props.get("Policies", []):
        yield from walk(policy)


def can_send_to_sqs(props: dict[str, Any]) -> bool:
    return any(
        name in SQS_SEND_POLICIES or name.lower().startswith(("sqs:send", "sqs:*")) for name in policy_names(props)
    )


def can_read_secrets(props: dict[str, Any]) -> bool:
    return any(
        name in SECRET_READ_POLICIES or name.lower().startswith(("secretsmanager:get", "secretsmanager:*"))
        for name in policy_names(props)
    )


def sqs_events(props: dict[str, Any]) -> list[dict[str, Any]]:
    return [event["Properties"] for event in props.get("Events", {}).values() if event["Type"] == "SQS"]


def test_summary_queue_given_template_is_fifo_with_app_deduplication_and_sse() -> None:
    # Given the summary job queue / Then it is FIFO, dedups by the app's MessageDeduplicationId, and is encrypted
    assert RESOURCES["SummaryQueue"]["Type"] == "AWS::SQS::Queue"
    assert QUEUE["FifoQueue"] is True
    assert QUEUE["ContentBasedDeduplication"] is False
    assert QUEUE["SqsManagedSseEnabled"] is True
    assert QUEUE["MessageRetentionPeriod"] == 4 * DAY


def test_summary_queue_given_redrive_policy_targets_fifo_dlq_with_parameter_count() -> None:
    # Given the queue's redrive policy / Then failed jobs go to the FIFO dead-letter queue after
    # SummaryMaxReceiveCount deliveries, a Number parameter defaulting to 5 within 1..100
    redrive = QUEUE["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == "SummaryDeadLetterQueue.Arn"
    assert redrive["maxReceiveCount"] == "SummaryMaxReceiveCount"
    param = PARAMETERS["SummaryMaxReceiveCount"]
    assert (param["Type"], param["Default"], param["MinValue"], param["MaxValue"]) == ("Number", 5, 1, 100)
    assert RESOURCES["SummaryDeadLetterQueue"]["Type"] == "AWS::SQS::Queue"
    assert DLQ["FifoQueue"] is True  # a FIFO queue's dead-letter queue must be FIFO too
    assert DLQ["SqsManagedSseEnabled"] is True
    assert DLQ["MessageRetentionPeriod"] == 14 * DAY >= QUEUE["MessageRetentionPeriod"]


def test_summary_queue_given_summarizer_timeout_has_six_times_the_visibility() -> None:
    # Given the summarizer's timeout / Then the queue hides a received job at least 6 times as long (AWS's advice),
    # so a slow batch is not delivered twice while it still runs
    assert QUEUE["VisibilityTimeout"] >= 6 * SUMMARIZER["Timeout"]
    assert SUMMARIZER["Timeout"] == 120
    indexer, index_queue = FUNCTIONS["IndexerFunction"], RESOURCES["IndexQueue"]["Properties"]
    assert index_queue["VisibilityTimeout"] >= 6 * indexer["Timeout"]


def test_summarizer_given_sqs_event_reports_item_failures_with_bounded_concurrency() -> None:
    # Given the summarizer's events / Then it has exactly one SQS event on the queue, reporting failed records
    # one by one, with a MaximumConcurrency from a parameter whose floor is AWS's minimum of 2
    (event,) = sqs_events(SUMMARIZER)
    assert event["Queue"] == "SummaryQueue.Arn"
    assert event["BatchSize"] == 10
    assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert event["ScalingConfig"]["MaximumConcurrency"] == "SummarizerMaxConcurrency"
    param = PARAMETERS["SummarizerMaxConcurrency"]
    assert (param["Type"], param["Default"], param["MinValue"], param["MaxValue"]) == ("Number", 5, 2, 1000)
    assert "ReservedConcurrentExecutions" not in SUMMARIZER


def test_summarizer_given_template_has_no_http_route_and_other_functions_no_sqs_event() -> None:
    # Given every function / Then only the summarizer and the indexer read queues, and they have no HttpApi event
    # (so the local gateway, which loads HttpApi routes only, never sees them)
    assert all(event["Type"] == "SQS" for event in SUMMARIZER["Events"].values())
    assert all(event["Type"] == "SQS" for event in FUNCTIONS["IndexerFunction"]["Events"].values())
    assert not {"SummarizerFunction", "IndexerFunction"} & {route.function_id for route in load_routes()}
    assert {name for name, props in FUNCTIONS.items() if sqs_events(props)} == {"SummarizerFunction", "IndexerFunction"}
    assert (SUMMARIZER["CodeUri"], SUMMARIZER["Handler"], SUMMARIZER["MemorySize"]) == (
        "functions/summarizer/",
        "app.handler",
        512,
    )


REDIS_PASSWORD_POLICY = [
    "HasRedisPasswordSecret",
    {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": "RedisPasswordSecretArn"}},
    "AWS::NoValue",
]
REDIS_FUNCTIONS = set(FUNCTIONS) - {"HealthFunction"}


def test_policies_given_every_function_only_post_memory_can_send_jobs() -> None:
    # Given every function's policies / Then only PostMemoryFunction may send to SQS, and only to the two job queues
    assert {name for name, props in FUNCTIONS.items() if can_send_to_sqs(props)} == {"PostMemoryFunction"}
    assert FUNCTIONS["PostMemoryFunction"]["Policies"] == [
        REDIS_PASSWORD_POLICY,
        {"SQSSendMessagePolicy": {"QueueName": "SummaryQueue.QueueName"}},
        {"SQSSendMessagePolicy": {"QueueName": "IndexQueue.QueueName"}},
    ]


def test_environment_given_every_function_only_those_using_redis_get_its_url_and_password_secret() -> None:
    # Given Globals and every function / Then REDIS_URL (and the Redis password's secret, with the policy to read it
    # only when the ARN is given) goes to each function that uses Redis, and to no other: not to the health check
    assert "REDIS_URL" not in GLOBAL_ENV
    for name, props in FUNCTIONS.items():
        env = props.get("Environment", {}).get("Variables", {})
        uses_redis = name in REDIS_FUNCTIONS
        assert ("REDIS_URL" in env, "MOTORHEAD_REDIS_PASSWORD_SECRET" in env) == (uses_redis, uses_redis), name
        assert (REDIS_PASSWORD_POLICY in props.get("Policies", [])) == uses_redis, name
        if uses_redis:
            assert (env["REDIS_URL"], env["MOTORHEAD_REDIS_PASSWORD_SECRET"]) == ("RedisUrl", "RedisPasswordSecretArn")
    assert PARAMETERS["RedisUrl"]["NoEcho"] is True and PARAMETERS["RedisPasswordSecretArn"]["Default"] == ""
    assert TEMPLATE["Conditions"]["HasRedisPasswordSecret"] == [["RedisPasswordSecretArn", ""]]


def test_environment_given_every_function_only_post_memory_has_the_queue_url() -> None:
    # Given Globals and every function's environment / Then the queue URL (!Ref of a queue) is PostMemoryFunction's
    assert "MOTORHEAD_SUMMARY_QUEUE_URL" not in GLOBAL_ENV
    holders = {
        name
        for name, props in FUNCTIONS.items()
        if "MOTORHEAD_SUMMARY_QUEUE_URL" in props.get("Environment", {}).get("Variables", {})
    }
    assert holders == {"PostMemoryFunction"}
    assert FUNCTIONS["PostMemoryFunction"]["Environment"]["Variables"]["MOTORHEAD_SUMMARY_QUEUE_URL"] == "SummaryQueue"


def test_policies_given_every_function_only_summarizer_reads_the_secret_when_given() -> None:
    # Given every function's policies, but the Redis password's (above) / Then only the summarizer may read a
    # secret: the OpenAI or Azure key's ARN parameter, each only under its condition (no policy at all when the ARN
    # is left empty) (the indexer and the retrieval function read the same keys, for embeddings)
    provider = {
        name: [p for p in props.get("Policies", []) if p != REDIS_PASSWORD_POLICY] for name, props in FUNCTIONS.items()
    }
    assert {name for name, policies in provider.items() if can_read_secrets({"Policies": policies})} == {
        "SummarizerFunction",
        "IndexerFunction",
        "RetrievalFunction",
    }
    assert provider["IndexerFunction"] == provider["RetrievalFunction"] == provider["SummarizerFunction"]
    assert provider["SummarizerFunction"] == [
        [
            "HasOpenAiSecret",
            {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": "OpenAiApiKeySecretArn"}},
            "AWS::NoValue",
        ],
        [
            "HasAzureSecret",
            {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": "AzureApiKeySecretArn"}},
            "AWS::NoValue",
        ],
    ]
    assert TEMPLATE["Conditions"]["HasOpenAiSecret"] == [["OpenAiApiKeySecretArn", ""]]  # !Not [!Equals [...]]
    assert TEMPLATE["Conditions"]["HasAzureSecret"] == [["AzureApiKeySecretArn", ""]]
    assert PARAMETERS["OpenAiApiKeySecretArn"]["Default"] == PARAMETERS["AzureApiKeySecretArn"]["Default"] == ""


def test_environment_given_summarizer_gets_llm_settings_from_parameters() -> None:
    # Given the summarizer's own environment / Then the LLM settings come from parameters, on top of Globals
    env = SUMMARIZER["Environment"]["Variables"]
    assert env == {
        "REDIS_URL": "RedisUrl",
        "MOTORHEAD_REDIS_PASSWORD_SECRET": "RedisPasswordSecretArn",
        "MOTORHEAD_SUMMARIZER": "Summarizer",
        "MOTORHEAD_OPENAI_API_KEY_SECRET": "OpenAiApiKeySecretArn",
        "OPENAI_API_BASE": "OpenAiApiBase",
        "AZURE_API_BASE": "AzureApiBase",
        "AZURE_DEPLOYMENT_ID": "AzureDeploymentId",
        "MOTORHEAD_AZURE_API_KEY_SECRET": "AzureApiKeySecretArn",
        "MOTORHEAD_LLM_TIMEOUT": "20",
        "MOTORHEAD_LLM_MAX_RETRIES": "2",
        "POWERTOOLS_PARAMETERS_MAX_AGE": "300",
    }
    assert PARAMETERS["Summarizer"]["AllowedValues"] == ["auto", "openai", "azure", "extractive"]
    assert all(PARAMETERS[name]["Default"] == "" for name in ("OpenAiApiBase", "AzureApiBase", "AzureDeploymentId"))
    # every attempt of one model call, and a margin, fit in the function's time: a job never times out mid-call
    attempts = int(env["MOTORHEAD_LLM_MAX_RETRIES"]) + 1
    assert float(env["MOTORHEAD_LLM_TIMEOUT"]) * attempts + 5 < SUMMARIZER["Timeout"]


def test_environment_given_globals_post_and_summarizer_share_window_and_lease() -> None:
    # Given the settings both sides of the queue must agree on / Then they live in Globals and no function
    # overrides them
    shared = {"MOTORHEAD_MAX_WINDOW_SIZE", "MOTORHEAD_SUMMARY_LEASE_SECONDS", "MOTORHEAD_KEY_PREFIX", "MOTORHEAD_AUTH"}
    assert shared <= GLOBAL_ENV.keys()
    assert GLOBAL_ENV["MOTORHEAD_SUMMARY_LEASE_SECONDS"] == "SummaryLeaseSeconds"
    lease = PARAMETERS["SummaryLeaseSeconds"]
    assert (lease["Type"], lease["Default"], lease["MinValue"]) == ("Number", 600, 30)
    for name, props in FUNCTIONS.items():
        assert not shared & props.get("Environment", {}).get("Variables", {}).keys(), name


def test_outputs_given_template_name_queues_and_summarizer() -> None:
    outputs = TEMPLATE["Outputs"]
    assert outputs["SummaryQueueUrl"]["Value"] == "SummaryQueue"
    assert outputs["SummaryDeadLetterQueueUrl"]["Value"] == "SummaryDeadLetterQueue"
    assert outputs["SummaryDeadLetterQueueArn"]["Value"] == "SummaryDeadLetterQueue.Arn"
    assert outputs["SummarizerFunctionName"]["Value"] == "SummarizerFunction"


@pytest.mark.parametrize("event_file", sorted(EVENTS.glob("summarizer-*.json")), ids=lambda p: p.stem)
def test_events_given_summarizer_sample_event_is_a_fifo_sqs_batch(event_file: Path) -> None:
    # Given a summarizer sample event / Then each record is a FIFO SQS record: true MD5, distinct ids, and for a
    # valid job the session's tag as group and "<tag>-<last_id>" as deduplication id, as
    # motorhead.adapters.sqs.job_queue sends
    records = json.loads(event_file.read_text(encoding="utf-8"))["Records"]
    assert 1 <= len(records) <= SUMMARIZER["Events"]["SummaryJobs"]["Properties"]["BatchSize"]
    assert len({record["messageId"] for record in records}) == len(records)
    for record in records:
        assert record["eventSource"] == "aws:sqs"
        assert record["eventSourceARN"].endswith(".fifo")
        assert record["md5OfBody"] == hashlib.md5(record["body"].encode("utf-8")).hexdigest()
        try:
            job = json.loads(record["body"])
        except ValueError:
            continue
        tag = session_tag(ref(job["session_id"], job.get("tenant", "")))
        assert record["attributes"]["MessageGroupId"] == tag
        assert record["attributes"]["MessageDeduplicationId"] == f"{tag}-{job['last_id']}"


def test_auth_given_the_template_defaults_to_api_keys_and_passes_the_mode_to_every_function() -> None:
    # Given the AuthMode parameter / Then it defaults to api-key, offers jwt and none, and reaches every function
    assert (PARAMETERS["AuthMode"]["Default"], PARAMETERS["AuthMode"]["AllowedValues"]) == (
        "api-key",
        ["api-key", "jwt", "none"],
    )
    assert GLOBAL_ENV["MOTORHEAD_AUTH"] == "AuthMode"
    jwt = {
        "MOTORHEAD_JWT_ISSUER": "JwtIssuer",
        "MOTORHEAD_JWT_AUDIENCE": "JwtAudience",
        "MOTORHEAD_JWT_JWKS_URL": "JwksUrl",
    }
    assert jwt.items() <= GLOBAL_ENV.items()
    for props in FUNCTIONS.values():
        assert "MOTORHEAD_AUTH" not in props.get("Environment", {}).get("Variables", {})


def test_api_given_the_template_throttles_routes_and_limits_tenants_only_when_asked() -> None:
    settings = RESOURCES["MotorheadApi"]["Properties"]["DefaultRouteSettings"]
    assert settings == {
        "ThrottlingRateLimit": "ApiThrottlingRateLimit",
        "ThrottlingBurstLimit": "ApiThrottlingBurstLimit",
    }
    assert PARAMETERS["RateLimitPerSecond"]["Default"] == PARAMETERS["RateLimitBurst"]["Default"] == 0
    assert (GLOBAL_ENV["MOTORHEAD_RATE_LIMIT_RPS"], GLOBAL_ENV["MOTORHEAD_RATE_LIMIT_BURST"]) == (
        "RateLimitPerSecond",
        "RateLimitBurst",
    )


def test_admin_given_the_template_has_no_route_and_is_named_in_the_outputs() -> None:
    # Given the admin function / Then nothing but the AWS API (IAM) can invoke it: no event of any kind
    admin = FUNCTIONS["AdminFunction"]
    assert "Events" not in admin and admin["CodeUri"] == "functions/admin/"
    assert TEMPLATE["Outputs"]["AdminFunctionName"]["Value"] == "AdminFunction"
    assert not any(route.function_id == "AdminFunction" for route in load_routes())
