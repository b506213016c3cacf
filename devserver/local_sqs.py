"""Local SQS: moto's server stands in for Amazon SQS, and a poller plays Lambda's SQS event source mapping.

The post function sends jobs with the same boto3 adapter it uses on AWS (pointed here by AWS_ENDPOINT_URL_SQS);
the poller receives batches, invokes the consumer's Lambda handler with an SQS event, deletes what succeeded and
leaves the reported ``batchItemFailures`` to come back (sooner than on AWS: a short backoff instead of the full
visibility timeout) until the redrive policy moves them to the dead-letter queue.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from devserver.embedded_redis import free_port
from devserver.execution import LocalFunction
from devserver.lambda_runtime import FakeLambdaContext, LambdaHandler, load_function, sqs_event
from devserver.template import QueueConsumer

log = logging.getLogger("devserver.sqs")

REGION = "us-east-1"
LOCAL_ENV = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


class LocalSqs:
    """A moto SQS server on loopback; ``create_queues`` makes a consumer's queue (and its dead-letter queue)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._started = False

    def start(self) -> LocalSqs:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request otherwise
        self._server.start()
        self._started = True
        os.environ.update(LOCAL_ENV)
        os.environ["AWS_ENDPOINT_URL_SQS"] = self.endpoint
        return self

    def client(self) -> Any:
        return boto3.client(
            "sqs",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=LOCAL_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LOCAL_ENV["AWS_SECRET_ACCESS_KEY"],
        )

    def create_queues(self, consumer: QueueConsumer, *, prefix: str = "") -> LocalQueue:
        """The template's queue for ``consumer``, with its visibility timeout and redrive policy."""
        sqs = self.client()
        suffix = ".fifo" if consumer.fifo else ""
        attributes = {"FifoQueue": "true"} if consumer.fifo else {}
        dlq_url = sqs.create_queue(QueueName=f"{prefix}{consumer.queue_id}-dlq{suffix}", Attributes=attributes)[
            "QueueUrl"
        ]
        queue_attributes = {**attributes, "VisibilityTimeout": str(consumer.visibility_timeout)}
        if consumer.max_receive_count:
            redrive = {"deadLetterTargetArn": _arn(sqs, dlq_url), "maxReceiveCount": consumer.max_receive_count}
            queue_attributes["RedrivePolicy"] = json.dumps(redrive)
        url = sqs.create_queue(QueueName=f"{prefix}{consumer.queue_id}{suffix}", Attributes=queue_attributes)[
            "QueueUrl"
        ]
        return LocalQueue(consumer=consumer, url=url, arn=_arn(sqs, url), dlq_url=dlq_url)

    def stop(self) -> None:
        if self._started:
            self._server.stop()
            self._started = False


@dataclass(frozen=True)
class LocalQueue:
    consumer: QueueConsumer
    url: str
    arn: str
    dlq_url: str


def _arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


class SqsPoller:
    """Lambda's event source mapping for one queue: receive a batch, invoke, delete successes, retry failures."""

    def __init__(
        self,
        sqs: LocalSqs,
        queue: LocalQueue,
        handler: LambdaHandler | None = None,
        *,
        function: LocalFunction | None = None,
        max_backoff: float = 5.0,
    ) -> None:
        """Feeds ``function`` (the local Lambda runtime: its own processes and timeout), or ``handler`` (imported
        here, as the tests do), or else the consumer's handler imported here."""
        self._queue = queue
        self._client = sqs.client()
        self._function = function
        self._handler = handler if handler is not None or function is not None else load_function(queue.consumer)[1]
        self._max_backoff = max_backoff
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self, *, wait_seconds: int = 0) -> int:
        """One batch: returns how many messages it received."""
        received = self._client.receive_message(
            QueueUrl=self._queue.url,
            MaxNumberOfMessages=min(10, self._queue.consumer.batch_size),
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not received:
            return 0
        event = sqs_event(received, queue_arn=self._queue.arn, region=REGION)
        try:
            response = self._invoke(event)
        except Exception as exc:  # a crash, or (local runtime) a timeout: as on Lambda, the whole batch comes back
            log.warning("consumer failed, the whole batch comes back: %s", exc)
            response = {"batchItemFailures": [{"itemIdentifier": m["MessageId"]} for m in received]}
        failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
        for message in received:
            if message["MessageId"] in failed:
                receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
                self._client.change_message_visibility(
                    QueueUrl=self._queue.url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=int(min(self._max_backoff, 2 ** (receives - 1))),
                )
            else:
                self._client.delete_message(QueueUrl=self._queue.url, ReceiptHandle=message["ReceiptHandle"])
        return len(received)

    def _invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        if self._function is not None:
            return self._function.invoke(event)
        assert self._handler is not None
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            return self._handler(event, FakeLambdaContext(function_name=self._queue.consumer.function_id))
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    def drain(self, *, max_batches: int = 1000) -> int:
        """Poll until the queue gives nothing (tests); returns how many messages were handled."""
        total = 0
        for _ in range(max_batches):
            got = self.poll_once()
            if got == 0:
                break
            total += got
        return total

    def start(self) -> SqsPoller:
        self._thread = threading.Thread(target=self._run, name="sqs-poller", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once(wait_seconds=1)
            except Exception:
                log.exception("poll failed")
                self._stop.wait(1)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
