"""SQS FIFO → indexer: embed each session's pending messages and add them to its long-term index.

A failed job leaves its messages pending; SQS retries it and, in the end, moves it to the dead-letter queue.
"""

from motorhead.composition.long_term import indexer_service
from motorhead.entrypoints.sqs.handler import sqs_job_handler

handler = sqs_job_handler(indexer_service(), kind="index")
