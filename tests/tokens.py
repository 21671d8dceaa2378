"""Forged and tampered JWTs for the token tests: signed with python-jose, or assembled by hand
(any header, any HMAC key, an RSA signature or none: no library would build most of them)."""

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from jose import jwt

from auth.secret import get_secret_key
from models.base import utcnow

_HMAC_DIGESTS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(obj: object) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def claims_of(token: str) -> dict[str, Any]:
    """The payload of a token, unverified (to copy a real login's `sid` into a forged one)."""
    claims: dict[str, Any] = jwt.get_unverified_claims(token)
    return claims


def header_of(token: str) -> dict[str, Any]:
    header: dict[str, Any] = jwt.get_unverified_header(token)
    return header


def fresh_claims(token: str, **changes: Any) -> dict[str, Any]:
    """A real token's claims with a new `jti`, valid times, and `changes` applied.

    A change of `None` removes that claim.
    """
    now = int(utcnow().timestamp())
    claims = claims_of(token) | {"jti": secrets.token_urlsafe(16), "iat": now, "exp": now + 600}
    for key, value in changes.items():
        if value is None:
            claims.pop(key, None)
        else:
            claims[key] = value
    return claims


def sign(claims: dict[str, Any], *, key: str | None = None, algorithm: str = "HS256") -> str:
    """Sign with python-jose; by default with the server's own key (a token it would accept)."""
    token: str = jwt.encode(claims, key or get_secret_key(), algorithm=algorithm)
    return token


def hand_made(
    header: dict[str, Any], claims: dict[str, Any], *, hmac_key: str | bytes | None
) -> str:
    """A JWT assembled by hand: any header, an HMAC with `hmac_key` by the header's `alg`
    (SHA-256 for any `alg` but HS384 and HS512), or no signature at all when `hmac_key` is
    None (the `alg: none` shape)."""
    signing_input = f"{b64json(header)}.{b64json(claims)}"
    if hmac_key is None:
        return f"{signing_input}."
    key = hmac_key.encode() if isinstance(hmac_key, str) else hmac_key
    digest = _HMAC_DIGESTS.get(header.get("alg", ""), hashlib.sha256)
    mac = hmac.new(key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64url(mac)}"


def rsa_signed(header: dict[str, Any], claims: dict[str, Any], key: rsa.RSAPrivateKey) -> str:
    """A JWT signed RS256-style with `key` (the attacker's own)."""
    signing_input = f"{b64json(header)}.{b64json(claims)}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"
