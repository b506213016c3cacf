"""The Lambda handler of an SQS FIFO job consumer (the summarizer, the indexer): one shape, written once.

powertools' ``SqsFifoPartialProcessor`` reports failed records in ``batchItemFailures`` (``ReportBatchItemFailures``):
SQS retries them and, after the queue's maxReceiveCount, moves them to its dead-letter queue. With
``skip_group_on_error`` a failure holds back only the later jobs of its own session (message group). Each job gets
the invocation's remaining time, so it starts no work it cannot finish.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


class BodyHandler(Protocol):
    def __call__(self, body: str, *, time_left: Callable[[], float] | None = None) -> object: ...


def sqs_job_handler(handle_body: BodyHandler) -> LambdaHandler:
    """A Lambda handler that runs ``handle_body`` on each record of an SQS FIFO batch."""
    processor = SqsFifoPartialProcessor(skip_group_on_error=True)

    def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
        handle_body(record.body, time_left=lambda: lambda_context.get_remaining_time_in_millis() / 1000)

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return dict(
            process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
        )

    return handler
