"""Hand-made JWTs for the token attacks (no library would help build most of them)."""

import base64
import hashlib
import hmac
import json
from typing import Any


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def claims_of(token: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(unb64(token.split(".")[1]))
    return result


def signing_input(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"


def hmac_token(header: dict[str, Any], payload: dict[str, Any], key: bytes) -> str:
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
    head = signing_input(header, payload)
    mac = hmac.new(key, head.encode(), digest[header.get("alg", "HS256")]).digest()
    return f"{head}.{b64(mac)}"


def unsigned_token(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return f"{signing_input(header, payload)}."
