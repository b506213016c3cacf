"""template.yaml's asynchronous summarization: FIFO queue, dead-letter queue, summarizer function, least privilege.

``load_template()`` keeps each CloudFormation tag's argument as a plain value: ``!Ref SummaryQueue`` is
``"SummaryQueue"``, ``!GetAtt SummaryQueue.Arn`` is ``"SummaryQueue.Arn"``, ``!If [C, a, b]`` is ``["C", a, b]``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devserver.template import load_function_configs, load_routes, load_template
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
    # reserved concurrency only when JobReservedConcurrency asks for it (absent by default: see the tests at the end)
    assert SUMMARIZER["ReservedConcurrentExecutions"] == [
        "HasJobReservedConcurrency",
        "JobReservedConcurrency",
        "AWS::NoValue",
    ]


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


# The Redis password's secret: the one the stack generates (RedisUrl empty), else RedisPasswordSecretArn when given
# (a rule forbids both); each read is granted under its own condition.
REDIS_PASSWORD_SECRET = ["CreateRedis", "RedisPasswordSecret", "RedisPasswordSecretArn"]
CREATED_PASSWORD_POLICY = [
    "CreateRedis",
    {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": "RedisPasswordSecret"}},
    "AWS::NoValue",
]
REDIS_PASSWORD_POLICY = [
    "HasRedisPasswordSecret",
    {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": "RedisPasswordSecretArn"}},
    "AWS::NoValue",
]
# The Redis URL: the created serverless cache's endpoint, or the created replication group's, or RedisUrl.
REDIS_URL = [
    "CreateServerlessRedis",
    "rediss://${ServerlessRedis.Endpoint.Address}:${ServerlessRedis.Endpoint.Port}",
    ["CreateNodeRedis", "rediss://${NodeRedis.PrimaryEndPoint.Address}:${NodeRedis.PrimaryEndPoint.Port}", "RedisUrl"],
]
REDIS_FUNCTIONS = set(FUNCTIONS) - {"HealthFunction", "ConsoleFunction"}  # the console serves static files


def test_policies_given_every_function_only_post_memory_can_send_jobs() -> None:
    # Given every function's policies / Then only PostMemoryFunction (and the MCP function's add_memory, which asks
    # for the same jobs) may send to SQS, and only to the two job queues
    senders = {name for name, props in FUNCTIONS.items() if can_send_to_sqs(props)}
    assert senders == {"PostMemoryFunction", "McpFunction"}
    assert FUNCTIONS["McpFunction"]["Policies"][-2:] == FUNCTIONS["PostMemoryFunction"]["Policies"][-2:]
    assert FUNCTIONS["PostMemoryFunction"]["Policies"] == [
        CREATED_PASSWORD_POLICY,
        REDIS_PASSWORD_POLICY,
        {"SQSSendMessagePolicy": {"QueueName": "SummaryQueue.QueueName"}},
        {"SQSSendMessagePolicy": {"QueueName": "IndexQueue.QueueName"}},
    ]


def test_environment_given_every_function_only_those_using_redis_get_its_url_and_password_secret() -> None:
    # Given Globals and every function / Then REDIS_URL (and the Redis password's secret, with the policy to read it
    # only when the ARN is given) goes to each function that uses Redis, and to no other: not to the health check,
    # nor to the console
    assert "REDIS_URL" not in GLOBAL_ENV
    for name, props in FUNCTIONS.items():
        env = props.get("Environment", {}).get("Variables", {})
        uses_redis = name in REDIS_FUNCTIONS
        assert ("REDIS_URL" in env, "MOTORHEAD_REDIS_PASSWORD_SECRET" in env) == (uses_redis, uses_redis), name
        assert (REDIS_PASSWORD_POLICY in props.get("Policies", [])) == uses_redis, name
        assert (CREATED_PASSWORD_POLICY in props.get("Policies", [])) == uses_redis, name
        if uses_redis:
            assert (env["REDIS_URL"], env["MOTORHEAD_REDIS_PASSWORD_SECRET"]) == (REDIS_URL, REDIS_PASSWORD_SECRET)
    # RedisUrl has a default (empty: the stack creates the Redis), so `sam deploy --guided` takes Enter for it; not
    # NoEcho, which SAM would ask for with no default at all (the password belongs in RedisPasswordSecretArn)
    assert PARAMETERS["RedisUrl"]["Default"] == "" and "NoEcho" not in PARAMETERS["RedisUrl"]
    assert PARAMETERS["RedisPasswordSecretArn"]["Default"] == ""
    assert TEMPLATE["Conditions"]["HasRedisPasswordSecret"] == [["RedisPasswordSecretArn", ""]]
    assert TEMPLATE["Conditions"]["CreateRedis"] == ["RedisUrl", ""]


def test_environment_given_every_function_only_post_memory_has_the_queue_url() -> None:
    # Given Globals and every function's environment / Then the queue URL (!Ref of a queue) is PostMemoryFunction's
    assert "MOTORHEAD_SUMMARY_QUEUE_URL" not in GLOBAL_ENV
    holders = {
        name
        for name, props in FUNCTIONS.items()
        if "MOTORHEAD_SUMMARY_QUEUE_URL" in props.get("Environment", {}).get("Variables", {})
    }
    assert holders == {"PostMemoryFunction", "McpFunction"}  # add_memory asks for the jobs POST memory asks for
    for name in holders:
        assert FUNCTIONS[name]["Environment"]["Variables"]["MOTORHEAD_SUMMARY_QUEUE_URL"] == "SummaryQueue"


def test_policies_given_every_function_only_summarizer_reads_the_secret_when_given() -> None:
    # Given every function's policies, but the Redis password's (above) / Then only the summarizer may read a
    # secret: the OpenAI or Azure key's ARN parameter, each only under its condition (no policy at all when the ARN
    # is left empty) (the indexer and both retrieval functions read the same keys, for embeddings)
    provider = {
        name: [p for p in props.get("Policies", []) if p not in (REDIS_PASSWORD_POLICY, CREATED_PASSWORD_POLICY)]
        for name, props in FUNCTIONS.items()
    }
    assert {name for name, policies in provider.items() if can_read_secrets({"Policies": policies})} == {
        "SummarizerFunction",
        "IndexerFunction",
        "RetrievalFunction",
        "UserRetrievalFunction",
        "McpFunction",  # search_memory is retrieval
    }
    assert provider["IndexerFunction"] == provider["RetrievalFunction"] == provider["SummarizerFunction"]
    assert provider["UserRetrievalFunction"] == provider["RetrievalFunction"]
    assert provider["McpFunction"][:2] == provider["RetrievalFunction"]
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
        "REDIS_URL": REDIS_URL,
        "MOTORHEAD_REDIS_PASSWORD_SECRET": REDIS_PASSWORD_SECRET,
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


def test_api_given_the_template_throttles_routes_and_limits_and_bounds_each_tenant_by_default() -> None:
    settings = RESOURCES["MotorheadApi"]["Properties"]["DefaultRouteSettings"]
    assert settings == {
        "ThrottlingRateLimit": "ApiThrottlingRateLimit",
        "ThrottlingBurstLimit": "ApiThrottlingBurstLimit",
    }
    # the per-tenant rate limit and quotas are on by default, each a parameter to 0 (off)
    defaults = {
        name: PARAMETERS[name]["Default"] for name in PARAMETERS if name.startswith(("RateLimit", "TenantQuota"))
    }
    assert defaults == {
        "RateLimitPerSecond": 50,
        "RateLimitBurst": 100,
        "TenantQuotaSessions": 100_000,
        "TenantQuotaMessages": 10_000_000,
        "TenantQuotaBytes": 2_147_483_648,
        "TenantQuotaNamespaces": 1_000,
    }
    assert all(PARAMETERS[name]["MinValue"] == 0 for name in defaults)
    wired = {
        "MOTORHEAD_RATE_LIMIT_RPS": "RateLimitPerSecond",
        "MOTORHEAD_RATE_LIMIT_BURST": "RateLimitBurst",
        "MOTORHEAD_QUOTA_SESSIONS": "TenantQuotaSessions",
        "MOTORHEAD_QUOTA_MESSAGES": "TenantQuotaMessages",
        "MOTORHEAD_QUOTA_BYTES": "TenantQuotaBytes",
        "MOTORHEAD_QUOTA_NAMESPACES": "TenantQuotaNamespaces",
    }
    assert {name: GLOBAL_ENV[name] for name in wired} == wired


def test_admin_given_the_template_has_no_route_and_is_named_in_the_outputs() -> None:
    # Given the admin function / Then nothing but the AWS API (IAM) can invoke it: no event of any kind
    admin = FUNCTIONS["AdminFunction"]
    assert "Events" not in admin and admin["CodeUri"] == "functions/admin/"
    assert TEMPLATE["Outputs"]["AdminFunctionName"]["Value"] == "AdminFunction"
    assert not any(route.function_id == "AdminFunction" for route in load_routes())


# --- Operations: logs, traces, alarms, dashboard, limits ---------------------------------------------------------

ALARMS: dict[str, dict[str, Any]] = {
    name: res["Properties"] for name, res in RESOURCES.items() if res["Type"] == "AWS::CloudWatch::Alarm"
}
JOB_QUEUES = sorted(
    name for name, res in RESOURCES.items() if res["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in res["Properties"]
)
DEAD_LETTER_QUEUES = sorted(
    RESOURCES[name]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"].split(".")[0] for name in JOB_QUEUES
)
HTTP_FUNCTIONS = sorted({route.function_id for route in load_routes()})
CLOUDWATCH_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557]
CLOUDWATCH_RETENTION_DAYS += [2922, 3288, 3653]
APP_METRICS = {
    "Requests",
    "Latency",
    "AuthFailures",
    "RateLimited",
    "SummaryCommits",
    "SummaryConflicts",
    "MessagesFolded",
    "LLMCalls",
    "LLMTokens",
    "SummaryJobsFailed",
    "IndexBatches",
    "MessagesIndexed",
    "IndexJobsFailed",
}


def dimensions(alarm: dict[str, Any]) -> dict[str, Any]:
    return {dimension["Name"]: dimension["Value"] for dimension in alarm.get("Dimensions", [])}


def alarms_on(namespace: str, metric: str) -> dict[str, dict[str, Any]]:
    return {
        name: alarm
        for name, alarm in ALARMS.items()
        if alarm.get("Namespace") == namespace and alarm.get("MetricName") == metric
    }


def alarm_on(namespace: str, metric: str, **dims: str) -> dict[str, Any]:
    """The one alarm on ``metric`` with exactly these dimensions."""
    (alarm,) = [alarm for alarm in alarms_on(namespace, metric).values() if dimensions(alarm) == dims]
    return alarm


def test_log_groups_given_every_function_each_has_its_lambda_group_with_the_retention_parameter() -> None:
    # Given every function / Then exactly one log group is named as Lambda names the function's, and keeps its lines
    # LogRetentionDays (30 by default, one of the values CloudWatch accepts), with explicit deletion policies
    groups = {
        name: res
        for name, res in RESOURCES.items()
        if res["Type"] == "AWS::Logs::LogGroup" and name != "ApiAccessLogGroup"  # the HTTP API's (below)
    }
    by_name = {res["Properties"]["LogGroupName"]: res for res in groups.values()}
    assert len(by_name) == len(groups) == len(FUNCTIONS)
    for function in FUNCTIONS:
        group = by_name[f"/aws/lambda/${{{function}}}"]
        assert group["Properties"]["RetentionInDays"] == "LogRetentionDays", function
        assert group["DeletionPolicy"] == group["UpdateReplacePolicy"] == "Delete", function
    param = PARAMETERS["LogRetentionDays"]
    assert (param["Type"], param["Default"]) == ("Number", 30)
    assert param["AllowedValues"] == CLOUDWATCH_RETENTION_DAYS


def test_tracing_given_globals_every_function_is_traced_and_knows_the_metrics_namespace() -> None:
    # Given Globals / Then X-Ray tracing is active for every function (none turns it off) and powertools' metrics
    # namespace is the one the alarms and the dashboard read
    assert TEMPLATE["Globals"]["Function"]["Tracing"] == "Active"
    assert all("Tracing" not in props for props in FUNCTIONS.values())
    assert GLOBAL_ENV["POWERTOOLS_METRICS_NAMESPACE"] == "Motorhead"
    assert GLOBAL_ENV["POWERTOOLS_SERVICE_NAME"] == "motorhead"


def test_alarms_given_every_dead_letter_queue_one_fires_on_any_visible_message() -> None:
    # Given each job queue's dead-letter queue / Then an alarm fires as soon as it holds one message (Maximum > 0)
    assert DEAD_LETTER_QUEUES == ["IndexDeadLetterQueue", "SummaryDeadLetterQueue"]
    for queue in DEAD_LETTER_QUEUES:
        alarm = alarm_on("AWS/SQS", "ApproximateNumberOfMessagesVisible", QueueName=f"{queue}.QueueName")
        assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
            "Maximum",
            0,
            "GreaterThanThreshold",
        ), queue
        assert alarm["AlarmActions"] == ["AlarmTopic"], queue


def test_alarms_given_both_job_queues_oldest_job_age_alarms_at_its_parameter() -> None:
    # Given the summary and the index job queues / Then each has an ApproximateAgeOfOldestMessage alarm whose
    # threshold is its own parameter (900 s by default: more than one visibility timeout of either queue)
    assert JOB_QUEUES == ["IndexQueue", "SummaryQueue"]
    for queue in JOB_QUEUES:
        alarm = alarm_on("AWS/SQS", "ApproximateAgeOfOldestMessage", QueueName=f"{queue}.QueueName")
        assert alarm["Threshold"] == f"{queue}AgeAlarmSeconds"
        assert (alarm["Statistic"], alarm["ComparisonOperator"]) == ("Maximum", "GreaterThanThreshold")
        param = PARAMETERS[f"{queue}AgeAlarmSeconds"]
        assert (param["Type"], param["Default"]) == ("Number", 900)
        assert param["Default"] > RESOURCES[queue]["Properties"]["VisibilityTimeout"]


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_alarms_given_every_function_one_alarm_per_function_on_errors_and_throttles(metric: str) -> None:
    # Given every function / Then one alarm watches its Lambda metric (FunctionName = !Ref function): any error or
    # throttle in 5 minutes
    watched = {dimensions(alarm)["FunctionName"] for alarm in alarms_on("AWS/Lambda", metric).values()}
    assert watched == set(FUNCTIONS)
    assert len(alarms_on("AWS/Lambda", metric)) == len(FUNCTIONS)
    for alarm in alarms_on("AWS/Lambda", metric).values():
        assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
            "Sum",
            300,
            0,
            "GreaterThanThreshold",
        )


def test_alarms_given_the_http_api_a_5xx_alarm_watches_its_default_stage() -> None:
    # Given the HTTP API / Then its 5xx metric (HTTP APIs' name, not REST's 5XXError) on the $default stage alarms at
    # Api5xxAlarmThreshold answers in 5 minutes
    alarm = alarm_on("AWS/ApiGateway", "5xx", ApiId="MotorheadApi", Stage="$default")
    assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "Sum",
        300,
        "Api5xxAlarmThreshold",
        "GreaterThanOrEqualToThreshold",
    )
    assert PARAMETERS["Api5xxAlarmThreshold"]["Default"] == 5


@pytest.mark.parametrize("metric", ["SummaryJobsFailed", "IndexJobsFailed"])
def test_alarms_given_the_apps_job_failure_metric_alarms_at_the_threshold_in_15_minutes(metric: str) -> None:
    # Given the app's failed-job metric (namespace Motorhead, dimension service) / Then it alarms at
    # JobFailuresAlarmThreshold (5) failed attempts in 15 minutes, not on the first one (SQS retries it)
    alarm = alarm_on("Motorhead", metric, service="motorhead")
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Sum", 900, 1)
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "JobFailuresAlarmThreshold",
        "GreaterThanOrEqualToThreshold",
    )
    assert PARAMETERS["JobFailuresAlarmThreshold"]["Default"] == 5


def test_alarms_given_every_alarm_notifies_the_topic_and_ignores_missing_data() -> None:
    # Given every alarm / Then it notifies AlarmTopic (an SNS topic) when it fires and when it is OK again, treats
    # missing data (an idle queue or function) as not breaching, and watches a resource of this stack (or the app)
    assert RESOURCES["AlarmTopic"]["Type"] == "AWS::SNS::Topic"
    assert len(ALARMS) == 2 * len(FUNCTIONS) + 2 * len(DEAD_LETTER_QUEUES) + 1 + 2
    for name, alarm in ALARMS.items():
        assert alarm["AlarmActions"] == alarm["OKActions"] == ["AlarmTopic"], name
        assert alarm["TreatMissingData"] == "notBreaching", name
        assert alarm["AlarmName"].startswith("${AWS::StackName}-"), name
        for value in dimensions(alarm).values():
            assert value.split(".")[0] in RESOURCES or value in {"$default", "motorhead"}, name


def test_alarm_email_given_the_parameter_the_subscription_exists_only_under_its_condition() -> None:
    # Given AlarmEmail (empty by default) / Then the e-mail subscription to AlarmTopic exists only under HasAlarmEmail
    # (!Not [!Equals [!Ref AlarmEmail, ""]]), and no other subscription is made
    subscriptions = {name: res for name, res in RESOURCES.items() if res["Type"] == "AWS::SNS::Subscription"}
    assert list(subscriptions) == ["AlarmEmailSubscription"]
    subscription = subscriptions["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"] == {"TopicArn": "AlarmTopic", "Protocol": "email", "Endpoint": "AlarmEmail"}
    assert TEMPLATE["Conditions"]["HasAlarmEmail"] == [["AlarmEmail", ""]]
    assert PARAMETERS["AlarmEmail"]["Default"] == ""
    assert "Condition" not in RESOURCES["AlarmTopic"]


def test_queues_given_deletion_policies_dead_letter_queues_are_retained_and_job_queues_deleted() -> None:
    # Given the four queues / Then each states both policies: the dead-letter queues, which hold the failed jobs to
    # redrive, survive a stack deletion or a replacement; the job queues (their jobs can be asked for again) do not
    for queue in DEAD_LETTER_QUEUES:
        assert RESOURCES[queue]["DeletionPolicy"] == RESOURCES[queue]["UpdateReplacePolicy"] == "Retain", queue
    for queue in JOB_QUEUES:
        assert RESOURCES[queue]["DeletionPolicy"] == RESOURCES[queue]["UpdateReplacePolicy"] == "Delete", queue


def test_reserved_concurrency_given_default_parameters_is_absent_from_every_function() -> None:
    # Given the parameters' defaults / Then no function reserves concurrency: the HTTP functions and the job
    # functions take ReservedConcurrentExecutions from their own parameter only under !If [condition, it, NoValue],
    # each condition !Not [!Equals [!Ref parameter, "0"]] with the parameter 0 by default; the admin has none
    expected = {
        **dict.fromkeys(HTTP_FUNCTIONS, "ApiReservedConcurrency"),
        "SummarizerFunction": "JobReservedConcurrency",
        "IndexerFunction": "JobReservedConcurrency",
    }
    assert {name for name, props in FUNCTIONS.items() if "ReservedConcurrentExecutions" in props} == set(expected)
    for name, parameter in expected.items():
        condition = f"Has{parameter}"
        assert FUNCTIONS[name]["ReservedConcurrentExecutions"] == [condition, parameter, "AWS::NoValue"], name
        assert TEMPLATE["Conditions"][condition] == [[parameter, "0"]]
        param = PARAMETERS[parameter]
        assert (param["Type"], str(param["Default"]), param["MinValue"]) == ("Number", "0", 0)
    # the local runtime reads the same template: nothing reserved there either
    configs = load_function_configs({"RedisUrl": "redis://localhost:6379"}, {})
    assert set(configs) == set(FUNCTIONS)
    assert all(config.reserved_concurrency is None for config in configs.values())


def dashboard_body() -> Any:
    """The dashboard's JSON once CloudFormation's !Sub has run: each ``${...}`` replaced by a dummy value (a
    parameter's default for a Number parameter, which sits unquoted in the JSON)."""
    body: str = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name.startswith("AWS::") or name.split(".")[0] in RESOURCES or name in PARAMETERS, name
        parameter = PARAMETERS.get(name, {})
        return str(parameter["Default"]) if parameter.get("Type") == "Number" else f"dummy-{name.replace(':', '-')}"

    return json.loads(re.sub(r"\$\{([^}!]+)\}", value, body))


def dashboard_metrics(body: Any) -> list[list[Any]]:
    return [metric for widget in body["widgets"] for metric in widget["properties"].get("metrics", [])]


def test_dashboard_given_placeholders_substituted_is_valid_json_naming_every_metric() -> None:
    # Given the dashboard body with its ${...} placeholders substituted / Then it is valid JSON whose widgets show the
    # API, every function's errors and throttles, both queues and dead-letter queues, and all of the app's metrics
    assert RESOURCES["Dashboard"]["Type"] == "AWS::CloudWatch::Dashboard"
    body = dashboard_body()
    metrics = dashboard_metrics(body)
    plain = {(metric[0], metric[1]) for metric in metrics if isinstance(metric[0], str)}
    searched = " ".join(metric[0]["expression"] for metric in metrics if isinstance(metric[0], dict))
    app = {name for namespace, name in plain if namespace == "Motorhead"}
    app |= set(re.findall(r'MetricName="(\w+)"', searched))
    assert app == APP_METRICS
    assert {("AWS/ApiGateway", name) for name in ("Count", "Latency", "4xx", "5xx")} <= plain
    assert {("AWS/Lambda", name) for name in ("Errors", "Throttles", "Duration")} <= plain
    sqs = {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"}
    assert {("AWS/SQS", name) for name in sqs} <= plain
    for metric_name in ("Errors", "Throttles"):
        shown = {m[3] for m in metrics if isinstance(m[0], str) and m[:2] == ["AWS/Lambda", metric_name]}
        assert shown == {f"dummy-{function}" for function in FUNCTIONS}, metric_name
    shown_queues = {m[3] for m in metrics if isinstance(m[0], str) and m[0] == "AWS/SQS"}
    assert shown_queues == {f"dummy-{queue}.QueueName" for queue in JOB_QUEUES + DEAD_LETTER_QUEUES}
    assert all(
        widget["properties"].get("region", "dummy-AWS--Region") == "dummy-AWS--Region" for widget in body["widgets"]
    )


def test_outputs_given_operations_name_the_topic_the_dashboard_and_the_redrive_arns() -> None:
    # Given the outputs / Then they give the alarm topic, the dashboard, and both ends of each redrive
    # (README, Operations: aws sqs start-message-move-task --source-arn <DLQ> --destination-arn <queue>)
    outputs = TEMPLATE["Outputs"]
    assert outputs["AlarmTopicArn"]["Value"] == "AlarmTopic"
    assert outputs["DashboardName"]["Value"] == "Dashboard"
    assert "${Dashboard}" in outputs["DashboardUrl"]["Value"]
    for queue in JOB_QUEUES + DEAD_LETTER_QUEUES:
        assert outputs[f"{queue}Arn"]["Value"] == f"{queue}.Arn", queue
    assert "alarm on" not in json.dumps(outputs)
