"""The job queue adapter: Amazon SQS FIFO, through boto3 (imported on the first send only).

Message group = the session's tag, so SQS runs one job per session at a time. Deduplication id = tag + the session's
generation + its newest message id: it changes whenever the session does (ids restart after a DELETE, generations do
not), so a new job is never swallowed by FIFO deduplication, while a retried send of the same job is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from motorhead.adapters.sqs.job_codec import encode_job
from motorhead.core.values import SessionJob, SessionRef


class SqsJobQueue:
    """Implements ``motorhead.core.ports.JobQueue``; boto3 reads region, credentials and AWS_ENDPOINT_URL_SQS itself.

    ``group_of`` gives a job's message group: the session's tag (``motorhead.adapters.redis_db.keys.session_tag``),
    handed in by the composition root so that this adapter does not depend on the Redis one."""

    def __init__(self, queue_url: str, *, group_of: Callable[[SessionRef], str]) -> None:
        self._queue_url = queue_url
        self._group_of = group_of
        self._client: Any = None

    def send(self, job: SessionJob) -> None:
        if self._client is None:
            import boto3  # only a POST that overflows the window pays for boto3
            from botocore.config import Config

            # bounded: a POST must never hang on SQS (its messages are already stored; the lease is released)
            config = Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 2, "mode": "standard"})
            self._client = boto3.client("sqs", config=config)
        tag = self._group_of(job.session)
        self._client.send_message(
            QueueUrl=self._queue_url,
            MessageBody=encode_job(job),
            MessageGroupId=tag,
            MessageDeduplicationId=f"{tag}-{job.generation[:16]}-{job.last_id}",
        )
