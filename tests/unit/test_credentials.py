"""Where a request's credential is found: every way Motorhead's clients send a key."""

from __future__ import annotations

import base64

import pytest

from motorhead.entrypoints.http.credentials import MAX_CREDENTIAL_CHARS, credential_from
from motorhead.errors import AuthenticationError

KEY = "mhk_0123456789abcdef_" + "k" * 43


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("headers", "kind"),
    [
        ({"authorization": f"Bearer {KEY}"}, "bearer"),
        ({"authorization": f"bearer   {KEY} "}, "bearer"),
        ({"authorization": basic("anyone", KEY)}, "basic"),
        ({"authorization": basic("", KEY)}, "basic"),
        ({"x-api-key": KEY}, "x-api-key"),
        ({"x-metal-api-key": KEY, "x-metal-client-id": "client"}, "x-metal-api-key"),
        ({"x-metal-api-key": KEY}, "x-metal-api-key"),
    ],
)
def test_credential_given_each_client_form_finds_the_key(headers: dict[str, str], kind: str) -> None:
    credential = credential_from(headers)
    assert credential is not None and (credential.kind, credential.secret) == (kind, KEY)


def test_credential_given_user_info_with_a_colon_takes_the_password_after_the_first_one() -> None:
    credential = credential_from({"authorization": basic("user", "pass:word")})
    assert credential is not None and credential.secret == "pass:word"


def test_credential_given_none_is_none() -> None:
    assert credential_from({"content-type": "application/json", "x-metal-client-id": "only-the-client"}) is None


def test_credential_given_authorization_and_a_key_header_takes_authorization() -> None:
    credential = credential_from({"authorization": f"Bearer {KEY}", "x-api-key": "other"})
    assert credential is not None and credential.secret == KEY


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": "Bearer"},
        {"authorization": "Bearer    "},
        {"authorization": "Token abc"},
        {"authorization": "Digest username=x"},
        {"authorization": "Basic !!!"},
        {"authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        {"authorization": "Basic " + base64.b64encode(b"user:").decode()},
        {"authorization": "Basic " + base64.b64encode(b"\xff\xfe:x").decode()},
        {"x-api-key": "   "},
        {"x-metal-api-key": ""},
        {"authorization": "Bearer " + "k" * (MAX_CREDENTIAL_CHARS + 1)},
        # a malformed Authorization is an error even when a key header is there too
        {"authorization": "Token abc", "x-api-key": KEY},
    ],
)
def test_credential_given_a_malformed_one_refuses_it(headers: dict[str, str]) -> None:
    with pytest.raises(AuthenticationError):
        credential_from(headers)
