"""The Lambda handler of an SQS FIFO job consumer (the summarizer, the indexer): one shape, written once.

Each record's body is decoded into a job (a malformed body is logged and dropped: retrying it could never succeed)
and run with the invocation's remaining time, so the job starts no step it cannot finish. powertools'
``SqsFifoPartialProcessor`` reports failed records in ``batchItemFailures`` (``ReportBatchItemFailures``): SQS retries
them and, after the queue's maxReceiveCount, moves them to its dead-letter queue. With ``skip_group_on_error`` a
failure holds back only the later jobs of its own session (message group).

A job that stops with work left (``JobIncompleteError``: a backlog bigger than one job, or no time left) is not a
failure: what it did is counted like a finished job's, the job itself as ``...JobsIncomplete``, and its record is
still reported failed so that SQS delivers it again to go on. A batch whose every record failed is answered the same
way, never with an exception, so that the function's ``Errors`` (and its alarm) count only unhandled failures.
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
from motorhead.errors import JobIncompleteError, MotorheadError
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
INCOMPLETE = {"summary": "SummaryJobsIncomplete", "index": "IndexJobsIncomplete"}


def count_outcome(kind: Literal["summary", "index"], outcome: object) -> None:
    """The metrics of what a job did (``JOB_METRICS``), from its outcome's fields; nothing for any other object."""
    fields = asdict(outcome) if is_dataclass(outcome) and not isinstance(outcome, type) else {}
    for field, metric in JOB_METRICS[kind].items():
        if field in fields:
            count(metric, fields[field])


def sqs_job_handler(runner: JobRunner, *, kind: Literal["summary", "index"]) -> LambdaHandler:
    """A Lambda handler that runs each job of an SQS FIFO batch with ``runner``, and reports what each did."""
    processor = SqsFifoPartialProcessor(skip_group_on_error=True)
    # A batch whose every record failed is still answered with batchItemFailures, not an exception: these failures
    # are handled (counted, retried by SQS), and the function's Errors alarm is for unhandled ones and timeouts.
    # The FIFO processor's constructor does not take the flag its base class has.
    processor.raise_on_entire_batch_failure = False

    def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
        logger.remove_keys(["session", "last_id"])  # the previous record's: never on this one's lines
        job = decode_job(record.body)
        if job is None:
            count("MalformedJobs")
            return
        logger.append_keys(session=session_hash(job.session), last_id=job.last_id)
        count(JOBS[kind])
        try:
            outcome = runner.run(job, time_left=lambda: lambda_context.get_remaining_time_in_millis() / 1000)
        except JobIncompleteError as exc:  # progress, kept; the record is reported failed so that SQS goes on
            count(INCOMPLETE[kind])
            count_outcome(kind, exc.outcome)
            logger.info("job incomplete; it will be delivered again", extra={"reason": str(exc)})
            raise
        except Exception as exc:  # the record is reported failed: SQS delivers it again, in the end to the DLQ
            count(FAILED[kind])
            detail = exc.detail if isinstance(exc, MotorheadError) else None
            logger.warning("job failed", extra={"kind": type(exc).__name__, "error": str(exc), "detail": detail})
            raise
        count_outcome(kind, outcome)

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return dict(
            process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
        )

    return lambda_entry(handler, http=False)
