"""SQS FIFO → summarizer: fold each job's overflowing messages into its session's summary.

A failed job changes nothing (what earlier steps committed stays); SQS retries it and, in the end, moves it to the
dead-letter queue.
"""

from motorhead.service import summarizer_service
from motorhead.sqs_handler import sqs_job_handler

handler = sqs_job_handler(summarizer_service().handle_body)
