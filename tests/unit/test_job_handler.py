"""The SQS job handler: what each job's outcome counts, and which records SQS is asked to deliver again."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from devserver.lambda_runtime import FakeLambdaContext
from motorhead.core.values import SessionJob
from motorhead.entrypoints.sqs.handler import sqs_job_handler
from motorhead.errors import EmbeddingUnavailableError, JobIncompleteError
from motorhead.observability import logger
from tests.support import load_event


@dataclass(frozen=True)
class Indexed:
    indexed: int
    batches: int


class Runner:
    """Stands in for the indexer: does what it is told, and remembers the jobs it was given."""

    def __init__(self, raises: Exception | None = None) -> None:
        self.raises = raises
        self.jobs: list[SessionJob] = []

    def run(self, job: SessionJob, *, time_left: Callable[[], float] | None = None) -> object:
        self.jobs.append(job)
        if self.raises is not None:
            raise self.raises
        return Indexed(indexed=3, batches=1)


def flushed(capfd: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The one EMF record the invocation printed."""
    records: list[dict[str, Any]] = [json.loads(line) for line in capfd.readouterr().out.splitlines()]
    (record,) = [r for r in records if "_aws" in r]
    return record


def test_given_a_job_that_stops_with_work_left_counts_it_incomplete_with_its_progress_not_failed(
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Given an index job that indexed 256 messages in 2 batches, then ran out of rounds
    runner = Runner(JobIncompleteError("more are pending", outcome=Indexed(indexed=256, batches=2)))
    handler = sqs_job_handler(runner, kind="index")
    event = load_event("summarizer-job")
    capfd.readouterr()
    # When the batch is handled
    response = handler(event, FakeLambdaContext())
    # Then SQS is asked to deliver the record again, so that the job goes on
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    # And the job counts as incomplete with what it did, never as a failure (the failure alarm stays quiet)
    record = flushed(capfd)
    assert (record["IndexJobs"], record["IndexJobsIncomplete"]) == ([1.0], [1.0])
    assert (record["MessagesIndexed"], record["IndexBatches"]) == ([256.0], [2.0])
    assert "IndexJobsFailed" not in record


def test_given_a_job_that_fails_counts_it_failed_and_asks_for_it_again(capfd: pytest.CaptureFixture[str]) -> None:
    # Given an index job whose embedding provider fails
    handler = sqs_job_handler(Runner(EmbeddingUnavailableError("embeddings unavailable")), kind="index")
    event = load_event("summarizer-job")
    capfd.readouterr()
    # When the batch is handled
    response = handler(event, FakeLambdaContext())
    # Then the record is reported failed and counted as such, with nothing indexed
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    record = flushed(capfd)
    assert (record["IndexJobs"], record["IndexJobsFailed"]) == ([1.0], [1.0])
    assert "IndexJobsIncomplete" not in record and "MessagesIndexed" not in record


def test_given_a_finished_job_counts_what_it_did(capfd: pytest.CaptureFixture[str]) -> None:
    # Given an index job that finishes
    runner = Runner()
    handler = sqs_job_handler(runner, kind="index")
    capfd.readouterr()
    # When the batch is handled
    response = handler(load_event("summarizer-job"), FakeLambdaContext())
    # Then nothing is delivered again, and the job and its messages are counted
    assert response == {"batchItemFailures": []}
    assert [job.last_id for job in runner.jobs] == [14]
    record = flushed(capfd)
    assert (record["IndexJobs"], record["MessagesIndexed"], record["IndexBatches"]) == ([1.0], [3.0], [1.0])
    assert "IndexJobsFailed" not in record and "IndexJobsIncomplete" not in record


class Lines(logging.Handler):
    """Each log record as the one Logger prints it, formatted when it is logged (with the keys of that moment)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(logger.registered_formatter.format(record)))


def test_given_a_malformed_record_after_a_job_logs_it_without_the_previous_jobs_session() -> None:
    # Given a batch of a job of session-42, then a body that is not JSON, then a job of session-7
    runner = Runner()
    handler = sqs_job_handler(runner, kind="index")
    lines = Lines()
    logging.getLogger(logger.name).addHandler(lines)
    try:
        # When the batch is handled
        assert handler(load_event("summarizer-mixed-batch"), FakeLambdaContext()) == {"batchItemFailures": []}
    finally:
        logging.getLogger(logger.name).removeHandler(lines)
    # Then both jobs ran, and the malformed body was dropped with a line that names no session
    assert [job.session.id for job in runner.jobs] == ["session-42", "session-7"]
    (dropped,) = [line for line in lines.lines if line.get("message") == "dropping a malformed job"]
    assert "session" not in dropped and "last_id" not in dropped, dropped
