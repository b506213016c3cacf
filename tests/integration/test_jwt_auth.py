"""The JWT authenticator against a real JWKS endpoint (the local ``JwksServer``), through PyJWT's real HTTP client:
valid tokens, every way a token can be bad (401), every way the keys can be out of reach (503), scopes, key
rotation and caching, and the factory reading the settings."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from motorhead.adapters.jwt_tokens.verifier import JwtAuthenticator, jwt_authenticator
from motorhead.core.auth import Caller, Credential, CredentialKind, Scope
from motorhead.errors import AuthenticationError, AuthUnavailableError, ConfigError
from motorhead.settings import Settings
from tests.jwks_server import (
    Failure,
    JwksServer,
    SigningKey,
    ec_key,
    hmac_with_public_key,
    in_seconds,
    mint,
    rsa_key,
    signed_as_is,
    unsigned_token,
)

ISSUER = "https://idp.example.com/"
AUDIENCE = "motorhead-api"
# Seconds the authenticator waits for the JWKS endpoint: roomy, so that a busy 2-core machine never turns a healthy
# fetch into a 503; the cases about a slow endpoint set SHORT_TIMEOUT against a stub that hangs for 5 s.
TIMEOUT = 10.0
SHORT_TIMEOUT = 0.3


# --- fixtures and helpers ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    """Generated once for the module (RSA generation is the slow part): the published ones and a stranger."""
    return {
        "rsa": rsa_key("rsa-1"),
        "ec": ec_key("ec-1"),
        "rsa384": rsa_key("rsa384-1", alg="RS384"),
        "rotated": rsa_key("rsa-2"),
        "stranger": rsa_key("stranger-1"),
    }


@pytest.fixture
def server(keys: dict[str, SigningKey]) -> Iterator[JwksServer]:
    """The identity provider publishing its RSA, EC and RS384 keys (not the rotated one, nor the stranger's)."""
    with JwksServer(keys["rsa"], keys["ec"], keys["rsa384"], hang_seconds=3.0) as running:
        yield running


def build(server: JwksServer, **overrides: Any) -> JwtAuthenticator:
    values: dict[str, Any] = {
        "jwks_url": server.url,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "algorithms": ["RS256", "ES256"],
        "leeway_seconds": 30,
        "jwks_cache_seconds": 300,
        "timeout": TIMEOUT,
        "refresh_cooldown_seconds": 0,  # every unknown kid may refetch: rotations are seen at once in tests
        **overrides,
    }
    return JwtAuthenticator(**values)


@pytest.fixture
def authenticator(server: JwksServer) -> JwtAuthenticator:
    return build(server)


def claims(**overrides: Any) -> dict[str, Any]:
    """A good token's claims, with ``overrides``."""
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "iat": in_seconds(0),
        "exp": in_seconds(300),
        "tenant": "acme",
        "scope": "motorhead:read motorhead:write",
        **overrides,
    }


def without(values: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: value for name, value in values.items() if name not in names}


def bearer(token: str) -> Credential:
    return Credential(kind="bearer", secret=token)


def refused(authenticator: JwtAuthenticator, token: str) -> str:
    """The reason the token is refused with a 401; checked to quote neither the token nor any part of it."""
    with pytest.raises(AuthenticationError) as caught:
        authenticator.authenticate(bearer(token))
    message = str(caught.value)
    assert_not_quoted(message, token)
    return message


def assert_not_quoted(message: str, token: str) -> None:
    assert token not in message
    for segment in token.split("."):
        assert len(segment) < 8 or segment not in message


# --- valid tokens -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("signer", ["rsa", "ec"])
def test_authenticate_given_valid_token_returns_caller_with_tenant_and_scopes(
    signer: str, keys: dict[str, SigningKey], authenticator: JwtAuthenticator
) -> None:
    # Given a token signed by a published key (RS256 or ES256) with a tenant and two Motorhead scopes
    token = mint(claims(), key=keys[signer])

    # When it is authenticated
    caller = authenticator.authenticate(bearer(token))

    # Then the caller is that tenant, with those scopes, authenticated by JWT
    assert caller == Caller(tenant="acme", scopes=frozenset({Scope.READ, Scope.WRITE}), method="jwt")


def test_construct_given_settings_fetches_nothing_until_the_first_token(
    server: JwksServer, keys: dict[str, SigningKey]
) -> None:
    # Given an authenticator just built / Then the JWKS has not been fetched (a cold start does not wait on the IdP)
    authenticator = build(server)
    assert server.fetches == 0

    # When tokens are authenticated / Then the set is fetched once and served from the cache afterwards
    for signer in ("rsa", "ec", "rsa", "ec"):
        authenticator.authenticate(bearer(mint(claims(), key=keys[signer])))
    assert server.fetches == 1


def test_authenticate_given_expiry_within_leeway_accepts_token(
    keys: dict[str, SigningKey], authenticator: JwtAuthenticator
) -> None:
    # Given a token expired 10 s ago, with a 30 s leeway for clock skew
    token = mint(claims(exp=in_seconds(-10)), key=keys["rsa"])

    # When / Then it is still accepted
    assert authenticator.authenticate(bearer(token)).tenant == "acme"


# --- bad tokens: 401 --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": -60}, "token expired"),  # time claims: seconds from now, resolved when the test runs
        ({"nbf": 120}, "token not yet valid"),
        ({"iat": 120}, "token not yet valid"),
        ({"aud": "another-api"}, "token not issued for this audience"),
        ({"aud": ["another-api", "a-third-api"]}, "token not issued for this audience"),
        ({"iss": "https://evil.example.com/"}, "token not from the expected issuer"),
    ],
    ids=["expired", "nbf-future", "iat-future", "audience", "audiences", "issuer"],
)
def test_authenticate_given_token_with_bad_registered_claim_raises_authentication_error(
    overrides: dict[str, Any], reason: str, keys: dict[str, SigningKey], authenticator: JwtAuthenticator
) -> None:
    # Given a well-signed token whose exp, nbf, iat, aud or iss is wrong (beyond the 30 s leeway)
    resolved = {name: in_seconds(v) if name in ("exp", "nbf", "iat") else v for name, v in overrides.items()}
    token = mint(claims(**resolved), key=keys["rsa"])

    # When / Then it is refused with that reason
    assert refused(authenticator, token) == reason


@pytest.mark.parametrize("claim", ["exp", "iss", "aud"])
def test_authenticate_given_token_without_required_claim_raises_authentication_error(
    claim: str, keys: dict[str, SigningKey], authenticator: JwtAuthenticator
) -> None:
    # Given a well-signed token without exp (it would never expire), iss or aud
    token = mint(without(claims(), claim), key=keys["rsa"])

    # When / Then it is refused, naming the missing claim
    assert refused(authenticator, token) == f"token lacks the required {claim} claim"


@pytest.mark.parametrize(
    ("claim", "value", "reason"),
    [
        ("exp", lambda: str(in_seconds(300)), "invalid token"),  # PyJWT's int() would take "1700000300"
        ("exp", lambda: in_seconds(300) + 0.5, "invalid token"),
        ("exp", lambda: True, "token expired"),  # int(True) is 1: 1970
        ("exp", lambda: "never", "invalid token"),
        ("exp", lambda: [in_seconds(300)], "invalid token"),
        ("iat", lambda: str(in_seconds(0)), "invalid token"),
        ("iat", lambda: in_seconds(0) - 0.25, "invalid token"),
        ("iat", lambda: False, "invalid token"),
        ("nbf", lambda: str(in_seconds(0)), "invalid token"),
        ("nbf", lambda: in_seconds(-5) + 0.5, "invalid token"),
        ("nbf", lambda: True, "invalid token"),
    ],
    ids=[
        "exp-string",
        "exp-fraction",
        "exp-bool",
        "exp-word",
        "exp-list",
        "iat-string",
        "iat-fraction",
        "iat-bool",
        "nbf-string",
        "nbf-fraction",
        "nbf-bool",
    ],
)
def test_authenticate_given_a_time_claim_that_is_not_a_whole_number_raises_authentication_error(
    claim: str, value: Any, reason: str, keys: dict[str, SigningKey], authenticator: JwtAuthenticator
) -> None:
    # Given a well-signed token whose exp, iat or nbf is a string, a fraction, a bool or a list (the rest valid)
    token = mint(claims(**{claim: value()}), key=keys["rsa"])

    # When / Then it is refused (401) with the usual reason
    assert refused(authenticator, token) == reason


def test_authenticate_given_whole_number_floats_as_time_claims_accepts_token(
    keys: dict[str, SigningKey], authenticator: JwtAuthenticator
) -> None:
    # Given a token whose time claims are floats with no fraction (JSON has one number type)
    token = mint(
        claims(iat=float(in_seconds(0)), nbf=float(in_seconds(0)), exp=float(in_seconds(300))), key=keys["rsa"]
    )

    # When / Then it is accepted
    assert authenticator.authenticate(bearer(token)).tenant == "acme"


@pytest.mark.parametrize(
    ("lifetime", "seconds", "accepted"),
    [(None, 86_400 - 60, True), (None, 86_400 + 60, False), (None, 10 * 365 * 86_400, False), (600, 900, False)],
    ids=["under-the-default", "over-the-default", "ten-years", "over-a-configured-600s"],
)
def test_authenticate_given_an_exp_beyond_the_max_lifetime_raises_authentication_error(
    lifetime: int | None, seconds: int, accepted: bool, server: JwksServer, keys: dict[str, SigningKey]
) -> None:
    # Given an authenticator with the default max lifetime (a day) or a configured one
    authenticator = build(server) if lifetime is None else build(server, max_lifetime_seconds=lifetime)
    token = mint(claims(exp=in_seconds(seconds)), key=keys["rsa"])

    # When it is authenticated / Then it is accepted under the lifetime, refused (401) with the usual reason beyond
    if accepted:
        assert authenticator.authenticate(bearer(token)).tenant == "acme"
    else:
        assert refused(authenticator, token) == "invalid token"


def test_authenticate_given_audience_among_several_accepts_token(
    keys: dict[str, SigningKey], authenticator: JwtAuthenticator
) -> None:
    # Given a token for several audiences, ours among them / When / Then it is accepted
    token = mint(claims(aud=["another-api", AUDIENCE]), key=keys["ec"])
    assert authenticator.authenticate(bearer(token)).tenant == "acme"


def test_authenticate_given_algorithm_not_allowed_raises_before_any_fetch(
    server: JwksServer, keys: dict[str, SigningKey], authenticator: JwtAuthenticator
) -> None:
    # Given an RS384 token signed by a published RS384 key, when only RS256 and ES256 are allowed
    token = mint(claims(), key=keys["rsa384"])

    # When / Then it is refused, without even fetching the keys
    assert refused(authenticator, token) == "token algorithm not allowed"
    assert server.fetches == 0


def test_authenticate_given_alg_none_raises_authentication_error(
    server: JwksServer, authenticator: JwtAuthenticator
) -> None:
    # Given an unsigned token (alg: none) naming a published key
    token = unsigned_token(claims(), kid="rsa-1")

    # When / Then it is refused before any fetch
    assert refused(authenticator, token) == "token algorithm not allowed"
    assert server.fetches == 0


def test_authenticate_given_hs256_keyed_with_public_key_raises_authentication_error(
    keys: dict[str, SigningKey], authenticator: JwtAuthenticator
) -> None:
    # Given the algorithm-confusion forgery: HS256 with the published RSA key's PEM as the HMAC secret
    token = hmac_with_public_key(claims(), key=keys["rsa"])

    # When / Then it is refused
    assert refused(authenticator, token) == "token algorithm not allowed"


def test_authenticate_given_allowed_algorithm_other_than_the_keys_raises_authentication_error(
    server: JwksServer, keys: dict[str, SigningKey]
) -> None:
    # Given PS256 and RS256 both allowed, and a PS256 token signed with the key published for RS256
    authenticator = build(server, algorithms=["RS256", "PS256"])
    token = mint(claims(), key=keys["rsa"], alg="PS256")

    # When / Then it is refused: a key verifies only with its own algorithm, not the one the token picks
    assert refused(authenticator, token) == "token algorithm not allowed"


def test_authenticate_given_signature_by_another_key_with_a_known_kid_raises_authentication_error(
    keys: dict[str, SigningKey], authenticator: JwtAuthenticator
) -> None:
    # Given a token signed by a key the IdP never published, claiming the published RSA key's kid
    token = mint(claims(), key=keys["stranger"], kid="rsa-1")

    # When / Then the signature does not verify
    assert refused(authenticator, token) == "token signature invalid"


def test_authenticate_given_tampered_claims_raises_authentication_error(
    keys: dict[str, SigningKey], authenticator: JwtAuthenticator
) -> None:
    # Given a valid token whose claims are swapped for another tenant's, signature kept
    header, _, signature = mint(claims(), key=keys["ec"]).split(".")
    _, forged_claims, _ = mint(claims(tenant="other"), key=keys["ec"]).split(".")

    # When / Then the signature does not verify
    assert refused(authenticator, f"{header}.{forged_claims}.{signature}") == "token signature invalid"


def test_authenticate_given_unknown_kid_refetches_once_then_raises_authentication_error(
    server: JwksServer, keys: dict[str, SigningKey], authenticator: JwtAuthenticator
) -> None:
    # Given the keys fetched once
    authenticator.authenticate(bearer(mint(claims(), key=keys["rsa"])))

    # When a token names a key id the set does not hold
    token = mint(claims(), key=keys["stranger"])

    # Then it is refused as signed by an unknown key, after one refetch (it could have been a rotation)
    assert refused(authenticator, token) == "token signed with an unknown key"
    assert server.fetches == 2


@pytest.mark.parametrize(
    ("kid", "reason"),
    [(None, "token names no signing key (kid)"), ("", "token names no signing key (kid)"), (42, "malformed token")],
    ids=["absent", "empty", "not-a-string"],
)
def test_authenticate_given_token_naming_no_kid_raises_before_any_fetch(
    kid: Any, reason: str, server: JwksServer, keys: dict[str, SigningKey], authenticator: JwtAuthenticator
) -> None:
    # Given a well-signed token whose header names no usable key id
    header = {"alg": "RS256", "typ": "JWT"} | ({} if kid is None else {"kid": kid})
    token = signed_as_is(header, claims(), key=keys["rsa"])

    # When / Then it is refused without fetching
    assert refused(authenticator, token) == reason
    assert server.fetches == 0


@pytest.mark.parametrize(
    "token",
    ["not-a-jwt", "a.b.c", "a.b", "....", "eyJhbGciOiJSUzI1NiJ9.e30.!!!!", "eyJub3QiOiAianNvbiJ9"],
)
def test_authenticate_given_malformed_token_raises_authentication_error(
    token: str, server: JwksServer, authenticator: JwtAuthenticator
) -> None:
    # Given something that is not a JWT / When / Then it is refused, nothing fetched
    assert refused(authenticator, token) in {"malformed token", "token algorithm not allowed"}
    assert server.fetches == 0


def test_authenticate_given_signed_payload_that_is_not_json_raises_authentication_error(
    keys: dict[str, SigningKey], authenticator: JwtAuthenticator
) -> None:
    # Given a token whose signed payload is not a JSON object
    token = jwt.PyJWS().encode(b"[1, 2, 3]", keys["rsa"].private_key, algorithm="RS256", headers={"kid": "rsa-1"})

    # When / Then it is refused
    assert refused(authenticator, token) == "invalid token"


@pytest.mark.parametrize(
    "tenant",
    [
        None,
        "",
        "a/b",
        42,
        ["acme"],
        "-leading-dash",
        "x" * 65,
        "acme\n",
    ],
    ids=["absent", "empty", "slash", "number", "list", "leading-dash", "too-long", "newline"],
)
def test_authenticate_given_no_valid_tenant_claim_raises_authentication_error(
    tenant: Any, keys: dict[str, SigningKey], authenticator: JwtAuthenticator
) -> None:
    # Given a well-signed token whose tenant claim is missing or not a valid tenant name
    values = without(claims(), "tenant") if tenant is None else claims(tenant=tenant)
    token = mint(values, key=keys["rsa"])

    # When / Then it fails closed, without quoting the claim
    message = refused(authenticator, token)
    assert message == "the credential names no valid tenant"


@pytest.mark.parametrize("kind", ["basic", "x-api-key", "x-metal-api-key"])
def test_authenticate_given_non_bearer_credential_raises_authentication_error(
    kind: CredentialKind, keys: dict[str, SigningKey], authenticator: JwtAuthenticator
) -> None:
    # Given a valid token, presented some other way than Authorization: Bearer
    token = mint(claims(), key=keys["rsa"])

    # When / Then it is refused: this deployment takes a bearer JWT
    with pytest.raises(AuthenticationError, match="bearer JWT") as caught:
        authenticator.authenticate(Credential(kind=kind, secret=token))
    assert_not_quoted(str(caught.value), token)


def test_authenticate_given_no_credential_raises_authentication_error(authenticator: JwtAuthenticator) -> None:
    # Given no credential / When / Then it is refused
    with pytest.raises(AuthenticationError, match="missing credential"):
        authenticator.authenticate(None)


# --- scopes -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("scope_claim", "value", "prefix", "expected"),
    [
        ("scope", "motorhead:read motorhead:write", "motorhead:", {Scope.READ, Scope.WRITE}),
        ("scope", "  motorhead:list\tmotorhead:delete  ", "motorhead:", {Scope.LIST, Scope.DELETE}),
        ("scp", ["motorhead:read", "motorhead:delete"], "motorhead:", {Scope.READ, Scope.DELETE}),
        ("scope", "openid profile motorhead:read other:write", "motorhead:", {Scope.READ}),
        ("scope", "motorhead:admin motorhead:READ motorhead:read", "motorhead:", {Scope.READ}),
        ("scope", "read write delete list", "motorhead:", set()),
        ("scope", "motorhead:read mh/write mh/list", "mh/", {Scope.WRITE, Scope.LIST}),
        ("scope", "read write openid", "", {Scope.READ, Scope.WRITE}),
        ("scp", ["motorhead:read", 7, None, {"x": 1}], "motorhead:", {Scope.READ}),
        ("scope", 42, "motorhead:", set()),
        ("scope", "", "motorhead:", set()),
    ],
    ids=[
        "string",
        "whitespace",
        "list",
        "foreign-ignored",
        "unknown-ignored",
        "unprefixed-ignored",
        "custom-prefix",
        "empty-prefix",
        "list-with-junk",
        "wrong-type",
        "empty",
    ],
)
def test_authenticate_given_scope_claim_maps_prefixed_entries_to_scopes(
    scope_claim: str,
    value: Any,
    prefix: str,
    expected: set[Scope],
    server: JwksServer,
    keys: dict[str, SigningKey],
) -> None:
    # Given the scope claim configured (OAuth "scope" string or "scp" list) and a prefix
    authenticator = build(server, scope_claim=scope_claim, scope_prefix=prefix)
    token = mint(without(claims(), "scope") | {scope_claim: value}, key=keys["ec"])

    # When the token is authenticated
    caller = authenticator.authenticate(bearer(token))

    # Then only prefixed entries naming a Motorhead scope count
    assert caller.scopes == frozenset(expected)


def test_authenticate_given_no_scope_claim_returns_caller_without_scopes(
    keys: dict[str, SigningKey], authenticator: JwtAuthenticator
) -> None:
    # Given a valid token without any scope claim / When / Then the caller is authenticated but may do nothing
    caller = authenticator.authenticate(bearer(mint(without(claims(), "scope"), key=keys["rsa"])))
    assert caller.tenant == "acme"
    assert caller.scopes == frozenset()


# --- key rotation and caching -----------------------------------------------------------------------------------
def test_authenticate_given_key_rotated_in_picks_up_new_key_without_restart(
    server: JwksServer, keys: dict[str, SigningKey], authenticator: JwtAuthenticator
) -> None:
    # Given the keys fetched and cached
    authenticator.authenticate(bearer(mint(claims(), key=keys["rsa"])))

    # When the IdP publishes a new key and signs with it
    server.add(keys["rotated"])
    caller = authenticator.authenticate(bearer(mint(claims(tenant="beta"), key=keys["rotated"])))

    # Then the token is accepted, the set refetched once for the unknown kid, and cached again after
    assert caller.tenant == "beta"
    assert server.fetches == 2
    authenticator.authenticate(bearer(mint(claims(), key=keys["rotated"])))
    authenticator.authenticate(bearer(mint(claims(), key=keys["rsa"])))
    assert server.fetches == 2


def test_authenticate_given_key_rotated_out_refuses_it_once_the_cache_expires(
    server: JwksServer, keys: dict[str, SigningKey]
) -> None:
    # Given a short key-set cache, and a token of the RSA key accepted
    authenticator = build(server, jwks_cache_seconds=0.2)
    token = mint(claims(), key=keys["rsa"])
    authenticator.authenticate(bearer(token))

    # When the IdP withdraws that key and the cache expires
    server.remove("rsa-1")
    time.sleep(0.25)

    # Then its tokens are refused
    assert refused(authenticator, token) == "token signed with an unknown key"


def test_authenticate_given_unknown_kids_within_cooldown_does_not_refetch(
    server: JwksServer, keys: dict[str, SigningKey]
) -> None:
    # Given the default refresh cooldown (30 s), and the keys just fetched
    authenticator = build(server, refresh_cooldown_seconds=30)
    authenticator.authenticate(bearer(mint(claims(), key=keys["rsa"])))

    # When many tokens name made-up key ids
    for n in range(5):
        assert refused(authenticator, mint(claims(), key=keys["stranger"], kid=f"made-up-{n}")) == (
            "token signed with an unknown key"
        )

    # Then the IdP is not asked again for each (no amplification of a flood of junk tokens)
    assert server.fetches == 1


def test_authenticate_given_cache_disabled_fetches_keys_for_every_token(
    server: JwksServer, keys: dict[str, SigningKey]
) -> None:
    # Given MOTORHEAD_JWKS_CACHE_SECONDS=0 / When three tokens are authenticated / Then three fetches
    authenticator = build(server, jwks_cache_seconds=0)
    for _ in range(3):
        authenticator.authenticate(bearer(mint(claims(), key=keys["ec"])))
    assert server.fetches == 3


# --- keys out of reach: 503 -------------------------------------------------------------------------------------
@pytest.mark.parametrize("failure", list(Failure), ids=[failure.value for failure in Failure])
def test_authenticate_given_jwks_failing_raises_auth_unavailable_then_recovers(
    failure: Failure, server: JwksServer, keys: dict[str, SigningKey]
) -> None:
    # Given the JWKS endpoint failing that way (a 500, a hang longer than the timeout, a body that is no key set)
    authenticator = build(server, timeout=SHORT_TIMEOUT)
    server.fail(failure)
    token = mint(claims(), key=keys["rsa"])

    # When a valid token is authenticated
    started = time.monotonic()
    with pytest.raises(AuthUnavailableError) as caught:
        authenticator.authenticate(bearer(token))

    # Then the keys are reported unavailable (a 503, not a 401), without waiting out the hang, without quoting the
    # token
    assert time.monotonic() - started < server.hang_seconds
    assert_not_quoted(str(caught.value), token)
    # and once the endpoint is back the same token passes (the failure was not cached)
    server.fail(None)
    assert authenticator.authenticate(bearer(token)).tenant == "acme"


def test_authenticate_given_jwks_unreachable_raises_auth_unavailable(keys: dict[str, SigningKey]) -> None:
    # Given a JWKS URL on a port where nothing listens
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    authenticator = JwtAuthenticator(
        jwks_url=f"http://127.0.0.1:{port}/.well-known/jwks.json",
        issuer=ISSUER,
        audience=AUDIENCE,
        algorithms=["RS256"],
        timeout=TIMEOUT,
    )

    # When / Then a valid token cannot be checked: 503
    with pytest.raises(AuthUnavailableError):
        authenticator.authenticate(bearer(mint(claims(), key=keys["rsa"])))


def test_authenticate_given_jwks_down_after_caching_serves_cached_keys_and_503s_unknown_kids(
    server: JwksServer, keys: dict[str, SigningKey], authenticator: JwtAuthenticator
) -> None:
    # Given the keys cached, then the endpoint failing
    authenticator.authenticate(bearer(mint(claims(), key=keys["rsa"])))
    server.fail(Failure.STATUS_500)

    # When / Then tokens of cached keys still pass
    assert authenticator.authenticate(bearer(mint(claims(), key=keys["ec"]))).tenant == "acme"
    # and a token of a key not cached cannot be checked now (the refetch failed): 503, not 401
    with pytest.raises(AuthUnavailableError):
        authenticator.authenticate(bearer(mint(claims(), key=keys["rotated"])))


# --- construction -----------------------------------------------------------------------------------------------
def test_jwt_authenticator_given_settings_reads_every_jwt_setting(
    server: JwksServer, keys: dict[str, SigningKey]
) -> None:
    # Given settings naming another tenant claim, scope claim and prefix, ES256 only, a 5 s leeway and 1 h lifetime
    settings = Settings(
        REDIS_URL="redis://127.0.0.1:1/0",
        MOTORHEAD_AUTH="jwt",
        MOTORHEAD_JWT_ISSUER="https://login.example.org",
        MOTORHEAD_JWT_AUDIENCE="api://memory",
        MOTORHEAD_JWT_JWKS_URL=server.url,
        MOTORHEAD_JWT_TENANT_CLAIM="org_id",
        MOTORHEAD_JWT_SCOPE_CLAIM="scp",
        MOTORHEAD_JWT_SCOPE_PREFIX="memory.",
        MOTORHEAD_JWT_ALGORITHMS="ES256",
        MOTORHEAD_JWT_LEEWAY_SECONDS=5,
        MOTORHEAD_JWT_MAX_LIFETIME_SECONDS=3600,
        MOTORHEAD_JWKS_CACHE_SECONDS=60,
    )
    good = {
        "iss": "https://login.example.org",
        "aud": "api://memory",
        "exp": in_seconds(60),
        "org_id": "org-7",
        "scp": ["memory.read", "memory.list", "motorhead:write"],
    }

    # When the composition root's factory builds the authenticator
    authenticator = jwt_authenticator(settings)

    # Then it reads the tenant from org_id and the scopes from scp with the memory. prefix
    caller = authenticator.authenticate(bearer(mint(good, key=keys["ec"])))
    assert caller == Caller(tenant="org-7", scopes=frozenset({Scope.READ, Scope.LIST}), method="jwt")
    # and takes ES256 only, that issuer and audience, a 5 s leeway
    assert refused(authenticator, mint(good, key=keys["rsa"])) == "token algorithm not allowed"
    assert refused(authenticator, mint(good | {"iss": ISSUER}, key=keys["ec"])) == "token not from the expected issuer"
    assert refused(authenticator, mint(good | {"aud": AUDIENCE}, key=keys["ec"])) == (
        "token not issued for this audience"
    )
    assert refused(authenticator, mint(good | {"exp": in_seconds(-10)}, key=keys["ec"])) == "token expired"
    # and tokens expiring within the hour only
    assert refused(authenticator, mint(good | {"exp": in_seconds(3700)}, key=keys["ec"])) == "invalid token"
    assert server.fetches == 1


def test_jwt_authenticator_given_settings_without_jwt_values_raises_config_error() -> None:
    # Given settings for another authentication method / When / Then no JWT authenticator can be built
    with pytest.raises(ConfigError, match="MOTORHEAD_JWT_JWKS_URL"):
        jwt_authenticator(Settings(REDIS_URL="redis://127.0.0.1:1/0", MOTORHEAD_AUTH="api-key"))


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://idp.example.com/jwks.json"])
def test_construct_given_jwks_url_not_http_raises_config_error(url: str) -> None:
    # Given a JWKS URL that is not http(s) / When / Then it is refused at cold start
    with pytest.raises(ConfigError, match="MOTORHEAD_JWT_JWKS_URL"):
        JwtAuthenticator(jwks_url=url, issuer=ISSUER, audience=AUDIENCE, algorithms=["RS256"])
