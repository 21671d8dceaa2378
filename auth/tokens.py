"""JWTs: HS256 only, typed (access or refresh), each bound to one login session."""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any

from jose import JWTError, jwt

from auth.secret import get_secret_key
from models.base import utcnow

ALGORITHM = "HS256"
_REQUIRED = ("sub", "exp", "iat", "jti", "typ", "sid")
# Ids are positive 32-bit integers (as the tables and the API say).
MAX_ID = 2**31 - 1


class TokenType(StrEnum):
    access = "access"
    refresh = "refresh"


class InvalidToken(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Claims:
    user_id: int
    session_id: str
    type: TokenType
    jti: str
    expires_at: datetime


def issue(user_id: int, session_id: str, type_: TokenType, ttl: timedelta) -> tuple[str, Claims]:
    now = utcnow().replace(microsecond=0)
    claims = Claims(user_id, session_id, type_, secrets.token_urlsafe(16), now + ttl)
    payload: dict[str, Any] = {
        "sub": str(user_id),
        "sid": session_id,
        "typ": type_.value,
        "jti": claims.jti,
        "iat": int(now.timestamp()),
        "exp": int(claims.expires_at.timestamp()),
    }
    return jwt.encode(payload, get_secret_key(), algorithm=ALGORITHM), claims


def decode(token: str, expected: TokenType) -> Claims:
    """Verify signature, algorithm, expiry and type; raise InvalidToken for anything else.

    A token verified once is remembered with the key that signed it until it expires: a
    client sends the same access token with every request, and checking its signature again
    each time cost 7% of a create's CPU (bench/RESULTS.md). Whether its login is still open
    is the database's to say, on every request (auth/deps.py)."""
    claims = _verified(token, expected, get_secret_key())
    if utcnow() >= claims.expires_at:
        raise InvalidToken
    return claims


@lru_cache(maxsize=1024)  # what raises is not remembered
def _verified(token: str, expected: TokenType, secret: str) -> Claims:
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require_exp": True, "require_iat": True, "require_sub": True},
        )
        if any(k not in payload for k in _REQUIRED) or payload["typ"] != expected.value:
            raise InvalidToken
        sub, sid, jti, exp = payload["sub"], payload["sid"], payload["jti"], payload["exp"]
        if not (isinstance(sid, str) and isinstance(jti, str)):
            raise InvalidToken
        return Claims(
            _user_id(sub), sid, expected, jti, datetime.fromtimestamp(exp, utcnow().tzinfo)
        )
    except (JWTError, KeyError, TypeError, ValueError, OverflowError, AttributeError) as exc:
        raise InvalidToken from exc


def _user_id(sub: object) -> int:
    """The subject as this service writes it: ASCII digits, no leading zero, within the id
    range (`str.isdigit` also takes "٢" or "²", and thirty nines overflow the database)."""
    if not (isinstance(sub, str) and 0 < len(sub) <= 10 and sub.isascii() and sub.isdigit()):
        raise InvalidToken
    if sub[0] == "0" or int(sub) > MAX_ID:
        raise InvalidToken
    return int(sub)
