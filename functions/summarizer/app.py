"""SQS FIFO → summarizer: fold each job's overflowing messages into its session's summary.

Failures are reported per record (``ReportBatchItemFailures``): SQS retries them and, after the queue's
maxReceiveCount, moves them to the dead-letter queue. A failed job only holds back later jobs of its own session.
"""

from typing import Any

from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from motorhead.service import summarizer_service

processor = SqsFifoPartialProcessor(skip_group_on_error=True)
service = summarizer_service()


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    service.handle_body(record.body, time_left=lambda: lambda_context.get_remaining_time_in_millis() / 1000)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )
