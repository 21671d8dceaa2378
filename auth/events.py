"""Authentication events that change nothing (a throttled login), as structured log records
(logger `auth.events`). Events that record a change are audit events (auth/audit.py), logged
on the same logger once their transaction commits.

Each record is one JSON line — who, what, when and from where — also attached to the log
record as `auth_event` for handlers that ship structured logs. Never a password or a token:
field names that look like one are refused, and free text is cut short and JSON-escaped, so
a crafted username cannot forge log lines.
"""

import json
import logging
from typing import Any

from fastapi import Request

from models.base import utcnow

log = logging.getLogger("auth.events")

_SECRET_WORDS = ("password", "token", "secret", "hash")
_MAX_TEXT = 64

Value = str | int | bool | None


def client_address(request: Request) -> str:
    """The client's address: the peer's, or the one a TRUSTED_PROXIES proxy forwards."""
    return request.client.host if request.client else "unknown"


def emit(
    event: str,
    *,
    address: str | None,
    user_id: int | None = None,
    username: str | None = None,
    **fields: Value,
) -> None:
    for name in fields:
        if any(word in name for word in _SECRET_WORDS):
            raise ValueError(f"auth event field {name!r} looks like a secret")
    record: dict[str, Any] = {
        "event": event,
        "at": utcnow().isoformat(),
        "user_id": user_id,
        "username": username[:_MAX_TEXT] if username is not None else None,
        "address": address,
    }
    record.update({k: v[:_MAX_TEXT] if isinstance(v, str) else v for k, v in fields.items()})
    log.info("%s", json.dumps(record, ensure_ascii=True), extra={"auth_event": record})
