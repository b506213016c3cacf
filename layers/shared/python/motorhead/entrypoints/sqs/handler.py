"""The Lambda handler of an SQS FIFO job consumer (the summarizer, the indexer): one shape, written once.

Each record's body is decoded into a job (a malformed body is logged and dropped: retrying it could never succeed)
and run with the invocation's remaining time, so the job starts no step it cannot finish. powertools'
``SqsFifoPartialProcessor`` reports failed records in ``batchItemFailures`` (``ReportBatchItemFailures``): SQS retries
them and, after the queue's maxReceiveCount, moves them to its dead-letter queue. With ``skip_group_on_error`` a
failure holds back only the later jobs of its own session (message group).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from typing import Any, Literal, Protocol

from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from motorhead.adapters.sqs.job_codec import decode_job
from motorhead.core.values import SessionJob
from motorhead.errors import MotorheadError
from motorhead.observability import count, lambda_entry, logger, session_hash

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


class JobRunner(Protocol):
    def run(self, job: SessionJob, *, time_left: Callable[[], float] | None = None) -> object: ...


# What each kind of job reports, from its outcome's fields (the domain's names) to metric names.
JOB_METRICS: dict[str, dict[str, str]] = {
    "summary": {
        "commits": "SummaryCommits",
        "conflicts": "SummaryConflicts",
        "folded": "MessagesFolded",
        "calls": "LLMCalls",
        "tokens": "LLMTokens",
    },
    "index": {"batches": "IndexBatches", "indexed": "MessagesIndexed"},
}
JOBS = {"summary": "SummaryJobs", "index": "IndexJobs"}
FAILED = {"summary": "SummaryJobsFailed", "index": "IndexJobsFailed"}


def sqs_job_handler(runner: JobRunner, *, kind: Literal["summary", "index"]) -> LambdaHandler:
    """A Lambda handler that runs each job of an SQS FIFO batch with ``runner``, and reports what each did."""
    processor = SqsFifoPartialProcessor(skip_group_on_error=True)

    def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
        job = decode_job(record.body)
        if job is None:
            count("MalformedJobs")
            return
        logger.append_keys(session=session_hash(job.session), last_id=job.last_id)
        count(JOBS[kind])
        try:
            outcome = runner.run(job, time_left=lambda: lambda_context.get_remaining_time_in_millis() / 1000)
        except Exception as exc:  # the record is reported failed: SQS delivers it again, in the end to the DLQ
            count(FAILED[kind])
            detail = exc.detail if isinstance(exc, MotorheadError) else None
            logger.warning("job failed", extra={"kind": type(exc).__name__, "error": str(exc), "detail": detail})
            raise
        fields = asdict(outcome) if is_dataclass(outcome) and not isinstance(outcome, type) else {}
        for field, metric in JOB_METRICS[kind].items():
            if field in fields:
                count(metric, fields[field])

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return dict(
            process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
        )

    return lambda_entry(handler, http=False)
