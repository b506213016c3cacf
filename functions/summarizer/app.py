"""SQS FIFO → summarizer: fold each job's overflowing messages into its session's summary.

A failed job changes nothing (what earlier steps committed stays); SQS retries it and, in the end, moves it to the
dead-letter queue.
"""

from motorhead.composition.summarization import summarizer_service
from motorhead.entrypoints.sqs.handler import sqs_job_handler

handler = sqs_job_handler(summarizer_service(), kind="summary")
