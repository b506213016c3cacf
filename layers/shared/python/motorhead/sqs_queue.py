"""The job queue adapter: Amazon SQS FIFO, through boto3 (imported on the first send only).

Message group = the session's tag, so SQS runs one job per session at a time. Deduplication id = tag + the session's
generation + its newest message id: it changes whenever the session does (ids restart after a DELETE, generations do
not), so a new job is never swallowed by FIFO deduplication, while a retried send of the same job is.
"""

from __future__ import annotations

from typing import Any

from motorhead.jobs import encode_job
from motorhead.keys import session_tag
from motorhead.ports import SessionJob


class SqsJobQueue:
    """Implements ``motorhead.ports.JobQueue``; boto3 reads region, credentials and AWS_ENDPOINT_URL_SQS itself."""

    def __init__(self, queue_url: str) -> None:
        self._queue_url = queue_url
        self._client: Any = None

    def send(self, job: SessionJob) -> None:
        if self._client is None:
            import boto3  # only a POST that overflows the window pays for boto3
            from botocore.config import Config

            # bounded: a POST must never hang on SQS (its messages are already stored; the lease is released)
            config = Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 2, "mode": "standard"})
            self._client = boto3.client("sqs", config=config)
        tag = session_tag(job.session_id)
        self._client.send_message(
            QueueUrl=self._queue_url,
            MessageBody=encode_job(job),
            MessageGroupId=tag,
            MessageDeduplicationId=f"{tag}-{job.generation[:16]}-{job.last_id}",
        )
