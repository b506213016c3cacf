"""The body of a job on an SQS queue (summary or index job): which session, as of which message id.

``{"v": 1, "session_id": "...", "last_id": 42}``, plus ``"tenant"`` when the session has one (a body without it is a
session of no tenant, as every body was before tenants existed).
"""

from __future__ import annotations

import json
import logging

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from motorhead.core.values import NO_TENANT, SessionJob, SessionRef

logger = logging.getLogger(__name__)

JOB_FORMAT_VERSION = 1


class JobBody(BaseModel):
    """The SQS message body of a job."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: int = Field(JOB_FORMAT_VERSION, ge=1, le=JOB_FORMAT_VERSION)
    tenant: str = Field(NO_TENANT, max_length=256)
    session_id: str = Field(min_length=1, max_length=1024)
    last_id: int = Field(ge=0)


def encode_job(job: SessionJob) -> str:
    body = JobBody(tenant=job.session.tenant, session_id=job.session.id, last_id=job.last_id)
    return body.model_dump_json(exclude={"tenant"} if body.tenant == NO_TENANT else None)


def decode_job(body: str) -> SessionJob | None:
    """The job in an SQS body, or None for a poison body (logged; retrying it could never succeed)."""
    try:
        parsed = JobBody.model_validate(json.loads(body))
    except (ValueError, ValidationError) as exc:
        logger.error("dropping a malformed job", extra={"error": str(exc)[:300]})
        return None
    return SessionJob(session=SessionRef(tenant=parsed.tenant, id=parsed.session_id), last_id=parsed.last_id)
