"""Where a request's credential is found: every way Motorhead's clients send a key."""

from __future__ import annotations

import base64

import pytest

from motorhead.core.api_keys import ApiKeys
from motorhead.core.auth import Credential
from motorhead.entrypoints.http.credentials import MAX_CREDENTIAL_CHARS, credential_from, presented_key_id
from motorhead.errors import AuthenticationError
from tests.fakes import FakeKeyStore

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


def test_presented_key_id_given_a_key_as_create_makes_it_names_its_id() -> None:
    # Given a key made by ApiKeys.create (the shape the refusal log reads)
    key, info = ApiKeys(FakeKeyStore()).create("acme")
    # When / Then its public id is read from it, in every way a client sends it
    for kind in ("bearer", "basic", "x-api-key", "x-metal-api-key"):
        assert presented_key_id(Credential(kind=kind, secret=key)) == info.key_id


@pytest.mark.parametrize(
    "secret",
    [
        KEY[:-1],
        KEY + "k",
        KEY.upper(),
        "mhk_0123456789abcde_" + "k" * 43,
        "mhk_not-a-key",
        "eyJhbGciOiJSUzI1NiJ9.e30.x",
    ],
    ids=["short-secret", "long-secret", "upper-id", "short-id", "no-shape", "jwt"],
)
def test_presented_key_id_given_no_well_formed_key_is_none(secret: str) -> None:
    # Given a malformed key or a JWT / When / Then there is no key id to log
    assert presented_key_id(Credential(kind="bearer", secret=secret)) is None
    assert presented_key_id(None) is None
