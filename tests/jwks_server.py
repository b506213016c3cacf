"""A local identity provider's key endpoint for tests: real sockets, real HTTP, PyJWT's real ``PyJWKClient`` in front.

``JwksServer`` serves ``GET /.well-known/jwks.json``: the JWK set of the public halves of its ``SigningKey``s. Keys
can be added and removed while it runs (a rotation), it can be told to fail (a 500, a hang, a body that is not a
key set) and it counts the fetches::

    rsa, ec = rsa_key("rsa-1"), ec_key("ec-1")
    with JwksServer(rsa, ec) as server:
        token = mint({"iss": ISSUER, "aud": AUDIENCE, "exp": in_seconds(60), "tenant": "acme"}, key=rsa)
        ...
        server.add(rsa_key("rsa-2"))
        server.fail(Failure.STATUS_500)
        assert server.fetches == 2

``mint`` signs tokens the way an identity provider would; ``signed_as_is`` signs a header PyJWT would refuse to
write; ``unsigned_token`` and ``hmac_with_public_key`` craft the two classic forgeries (``alg: none``, and HS256 keyed
with the RSA public key) by hand, since PyJWT refuses to.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from http.server import BaseHTTPRequestHandler
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tests.loopback_server import LoopbackServer

JWKS_PATH = "/.well-known/jwks.json"


# --- keys and tokens -------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key the "identity provider" signs with, its key id and the algorithm its JWK announces."""

    kid: str
    alg: str
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    def public_jwk(self) -> dict[str, Any]:
        """The JWK of the public half, as a JWKS lists it."""
        public = self.private_key.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def rsa_key(kid: str, alg: str = "RS256") -> SigningKey:
    """A fresh RSA 2048 key (RS256 unless told: RS384, PS256...)."""
    return SigningKey(kid, alg, rsa.generate_private_key(public_exponent=65537, key_size=2048))


def ec_key(kid: str) -> SigningKey:
    """A fresh EC P-256 key, for ES256."""
    return SigningKey(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))


class _Default(Enum):
    FROM_KEY = "from-key"


FROM_KEY = _Default.FROM_KEY


def mint(
    claims: Mapping[str, Any],
    *,
    key: SigningKey,
    alg: str | _Default = FROM_KEY,
    kid: str | None | _Default = FROM_KEY,
    headers: Mapping[str, Any] | None = None,
) -> str:
    """A token signed with ``key``: its algorithm and kid unless told otherwise (``kid=None``: no kid header);
    ``headers`` are added to (or override) the header."""
    header: dict[str, Any] = {}
    chosen_kid = key.kid if isinstance(kid, _Default) else kid
    if chosen_kid is not None:
        header["kid"] = chosen_kid
    header.update(headers or {})
    algorithm = key.alg if isinstance(alg, _Default) else alg
    return jwt.encode(dict(claims), key.private_key, algorithm=algorithm, headers=header)


def in_seconds(seconds: float) -> int:
    """A NumericDate ``seconds`` from now (negative: in the past)."""
    return int(time.time() + seconds)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _segments(header: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
    return f"{b64url(json.dumps(dict(header)).encode())}.{b64url(json.dumps(dict(claims)).encode())}"


def signed_as_is(header: Mapping[str, Any], claims: Mapping[str, Any], *, key: SigningKey) -> str:
    """A token with this exact header (PyJWT's ``encode`` refuses odd ones, a non-string kid...), signed with
    ``key`` under the header's ``alg`` (``key``'s own when the header names none)."""
    algorithm = jwt.get_algorithm_by_name(str(header.get("alg", key.alg)))
    signing_input = _segments(header, claims)
    signature = algorithm.sign(signing_input.encode("ascii"), algorithm.prepare_key(key.private_key))
    return f"{signing_input}.{b64url(signature)}"


def unsigned_token(claims: Mapping[str, Any], *, kid: str | None = None) -> str:
    """``alg: none`` with an empty signature: the forgery a verifier that trusts the header accepts."""
    header: dict[str, Any] = {"alg": "none", "typ": "JWT", **({"kid": kid} if kid else {})}
    return f"{_segments(header, claims)}."


def hmac_with_public_key(claims: Mapping[str, Any], *, key: SigningKey) -> str:
    """HS256 keyed with ``key``'s public PEM (which anyone has), naming ``key``'s kid: the algorithm-confusion
    forgery a verifier that lets the header choose the algorithm accepts."""
    signing_input = _segments({"alg": "HS256", "typ": "JWT", "kid": key.kid}, claims)
    signature = hmac.new(key.public_pem(), signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


# --- the server ------------------------------------------------------------------------------------------------
class Failure(Enum):
    """How the endpoint misbehaves until told otherwise."""

    STATUS_500 = "500"
    HANG = "hang"  # answers nothing for ``hang_seconds`` (longer than the client's timeout)
    NOT_JSON = "not-json"  # a 200 whose body is HTML
    NOT_AN_OBJECT = "not-an-object"  # a 200 with a JSON list
    NO_USABLE_KEYS = "no-usable-keys"  # a 200 with a JSON object whose keys are unusable


class JwksServer(LoopbackServer):
    """The server. Thread-safe: the keys, the failure mode and the counter are shared with the handler threads."""

    def __init__(self, *keys: SigningKey, hang_seconds: float = 5.0) -> None:
        self.hang_seconds = hang_seconds
        self._keys: dict[str, SigningKey] = {key.kid: key for key in keys}
        self._failure: Failure | None = None
        self._fetches = 0
        self._lock = threading.Lock()
        super().__init__(self._handler_class(), name="jwks-server")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{JWKS_PATH}"

    # --- keys, failures, records --------------------------------------------------------------------------------
    def add(self, key: SigningKey) -> None:
        """Publish a key (a rotation's new key)."""
        with self._lock:
            self._keys[key.kid] = key

    def remove(self, kid: str) -> None:
        """Withdraw a key (a rotation's old key)."""
        with self._lock:
            del self._keys[kid]

    def fail(self, failure: Failure | None) -> None:
        """Misbehave that way on every fetch from now on; ``None`` serves the keys again."""
        with self._lock:
            self._failure = failure

    @property
    def fetches(self) -> int:
        """GET requests on the JWKS path so far (failed ones included)."""
        with self._lock:
            return self._fetches

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            return {"keys": [key.public_jwk() for key in self._keys.values()]}

    def _fetched(self) -> Failure | None:
        with self._lock:
            self._fetches += 1
            return self._failure

    # --- HTTP ---------------------------------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                if self.path != JWKS_PATH:
                    self._send(404, b'{"error": "not found"}')
                    return
                failure = server._fetched()
                if failure is Failure.HANG:
                    server._stopping.wait(server.hang_seconds)
                    self.close_connection = True
                    return
                if failure is Failure.STATUS_500:
                    self._send(500, b'{"error": "internal"}')
                elif failure is Failure.NOT_JSON:
                    self._send(200, b"<html><body>Service Temporarily Unavailable</body></html>", "text/html")
                elif failure is Failure.NOT_AN_OBJECT:
                    self._send(200, b'[{"kty": "RSA"}]')
                elif failure is Failure.NO_USABLE_KEYS:
                    self._send(200, b'{"keys": [{"kty": "RSA", "kid": "broken", "n": "AQAB"}, "not a key"]}')
                else:
                    self._send(200, json.dumps(server.jwks()).encode())

            def _send(self, code: int, payload: bytes, content_type: str = "application/json") -> None:
                try:
                    self.send_response(code)
                    self.send_header("content-type", content_type)
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout): nothing to tell
                    self.close_connection = True

        return Handler
