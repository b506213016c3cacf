"""The one error-to-status table, and the error body every failure gets."""

from __future__ import annotations

import json

import pytest

from motorhead.entrypoints.http.errors import STATUS_OF, error_response, status_for
from motorhead.errors import (
    ConfigError,
    EmbeddingError,
    InvalidInputError,
    JobIncompleteError,
    LongTermMemoryDisabledError,
    MotorheadError,
    PayloadTooLargeError,
    StoreUnavailableError,
)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidInputError("bad"), 400),
        (LongTermMemoryDisabledError("off"), 400),
        (PayloadTooLargeError("big"), 413),
        (EmbeddingError("provider"), 502),
        (StoreUnavailableError("redis"), 503),
        (ConfigError("env"), 500),
        (JobIncompleteError("not an HTTP error"), 500),
        (MotorheadError("base"), 500),
    ],
)
def test_status_given_each_domain_error_is_its_table_entry(error: MotorheadError, status: int) -> None:
    assert status_for(error) == status


def test_status_given_a_subclass_inherits_its_parents_status() -> None:
    class Overloaded(StoreUnavailableError):
        pass

    assert status_for(Overloaded("x")) == 503


def test_table_given_every_status_is_an_http_error_status() -> None:
    assert all(400 <= status <= 599 for status in STATUS_OF.values())


def test_error_response_given_a_message_is_json_with_error_and_headers() -> None:
    response = error_response(503, "redis unavailable", headers={"Retry-After": "1"})
    assert response.status_code == 503
    assert json.loads(bytes(response.body)) == {"error": "redis unavailable"}
    assert response.headers["retry-after"] == "1" and response.headers["content-type"] == "application/json"
