"""SQS FIFO → indexer: embed each session's pending messages and add them to its long-term index.

Failures are reported per record (``ReportBatchItemFailures``): the messages stay pending, SQS retries the job and,
after the queue's maxReceiveCount, moves it to the dead-letter queue. A failure holds back only its own session.
"""

from typing import Any

from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from motorhead.service import indexer_service

processor = SqsFifoPartialProcessor(skip_group_on_error=True)
service = indexer_service()


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    service.handle_body(record.body, time_left=lambda: lambda_context.get_remaining_time_in_millis() / 1000)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )
