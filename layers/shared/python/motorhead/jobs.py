"""The body of a job on an SQS queue (summary or index job): which session, as of which message id."""

from __future__ import annotations

import json

from aws_lambda_powertools.logging import Logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from motorhead.ports import SessionJob

logger = Logger(service="motorhead")

JOB_FORMAT_VERSION = 1


class JobBody(BaseModel):
    """The SQS message body of a job."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: int = Field(JOB_FORMAT_VERSION, ge=1, le=JOB_FORMAT_VERSION)
    session_id: str = Field(min_length=1, max_length=1024)
    last_id: int = Field(ge=0)


def encode_job(job: SessionJob) -> str:
    return JobBody(session_id=job.session_id, last_id=job.last_id).model_dump_json()


def decode_job(body: str) -> SessionJob | None:
    """The job in an SQS body, or None for a poison body (logged; retrying it could never succeed)."""
    try:
        parsed = JobBody.model_validate(json.loads(body))
    except (ValueError, ValidationError) as exc:
        logger.error("dropping a malformed job", extra={"error": str(exc)[:300], "body": body[:200]})
        return None
    return SessionJob(session_id=parsed.session_id, last_id=parsed.last_id)
