"""The Lambda handler of an SQS FIFO job consumer (the summarizer, the indexer): one shape, written once.

Each record's body is decoded into a job (a malformed body is logged and dropped: retrying it could never succeed)
and run with the invocation's remaining time, so the job starts no step it cannot finish. powertools'
``SqsFifoPartialProcessor`` reports failed records in ``batchItemFailures`` (``ReportBatchItemFailures``): SQS retries
them and, after the queue's maxReceiveCount, moves them to its dead-letter queue. With ``skip_group_on_error`` a
failure holds back only the later jobs of its own session (message group).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from motorhead.adapters.sqs.job_codec import decode_job
from motorhead.core.values import SessionJob

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


class JobRunner(Protocol):
    def run(self, job: SessionJob, *, time_left: Callable[[], float] | None = None) -> object: ...


def sqs_job_handler(runner: JobRunner) -> LambdaHandler:
    """A Lambda handler that runs each job of an SQS FIFO batch with ``runner``."""
    processor = SqsFifoPartialProcessor(skip_group_on_error=True)

    def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
        job = decode_job(record.body)
        if job is not None:
            runner.run(job, time_left=lambda: lambda_context.get_remaining_time_in_millis() / 1000)

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return dict(
            process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
        )

    return handler
