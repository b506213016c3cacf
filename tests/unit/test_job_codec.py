"""The SQS body of a job: written by the post function, read by the summarizer and the indexer."""

from __future__ import annotations

import json

import pytest

from motorhead.adapters.sqs.job_codec import decode_job, encode_job
from motorhead.core.values import SessionJob
from tests.support import ref


def test_codec_given_a_session_of_no_tenant_writes_the_body_of_before_tenants() -> None:
    body = encode_job(SessionJob(session=ref("user@example.com"), last_id=42, generation="g"))
    assert json.loads(body) == {"v": 1, "session_id": "user@example.com", "last_id": 42}


@pytest.mark.parametrize("session", [ref("s"), ref("{ü} :*", tenant="acme"), ref("x" * 256, tenant="t" * 256)])
def test_codec_given_any_session_round_trips(session: object) -> None:
    job = SessionJob(session=session, last_id=7)  # type: ignore[arg-type]
    decoded = decode_job(encode_job(job))
    assert decoded is not None and (decoded.session, decoded.last_id) == (job.session, 7)


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        '{"v": 1, "last_id": 3}',
        '{"v": 1, "session_id": "", "last_id": 3}',
        '{"v": 1, "session_id": "s", "last_id": -1}',
        '{"v": 2, "session_id": "s", "last_id": 3}',
        '{"v": 1, "session_id": "s", "last_id": 3, "extra": true}',
        '{"v": 1, "session_id": 5, "last_id": 3}',
    ],
)
def test_codec_given_a_poison_body_drops_it(body: str) -> None:
    assert decode_job(body) is None
