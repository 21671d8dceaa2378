"""The audit trail: each write and authentication event, recorded in the transaction of what it
records (a failed commit leaves no event; a committed change always has one).

Authentication and user events are also logged (logger `auth.events`, one JSON line,
attached to the record as `audit_event`) once their transaction has committed; item events
only go to the table (a CSV import would log a line per row). Never a password, a hash or a token:
a change whose field name looks like one is refused, and logged text is JSON-escaped.
"""

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Annotated, Any, Protocol, cast

from fastapi import Depends, Request
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from auth.events import client_address
from models.audit_event import AuditEvent
from models.base import utcnow
from models.transaction_hooks import on_commit

log = logging.getLogger("auth.events")

_SECRET_WORDS = re.compile("password|token|secret|hash", re.IGNORECASE)
_MAX_ADDRESS = 64
_LOGGED = ("auth.", "user.")

Changes = dict[str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a change came from: the client's address and the request's id (None for the
    command line)."""

    address: str | None = None
    request_id: str | None = None


COMMAND_LINE = Origin()


async def origin_of(request: Request) -> Origin:
    # async: FastAPI would run a plain function in a worker thread, a trip on every write.
    # The request log (api/request_log.py) keeps the request's id in its state.
    request_id = getattr(request.state, "request_id", None)
    return Origin(client_address(request)[:_MAX_ADDRESS], request_id)


OriginDep = Annotated[Origin, Depends(origin_of)]


class Actor(Protocol):
    """Who acted: a user (models.user.User is one)."""

    @property
    def id(self) -> int: ...

    @property
    def username(self) -> str: ...


@dataclass(frozen=True, slots=True)
class UserRef:
    """An actor known by id and name only (no loaded user row)."""

    id: int
    username: str


def changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> Changes:
    """`{field: {"old", "new"}}` for each field of `new` whose value differs from `old`'s."""
    return {k: {"old": old.get(k), "new": v} for k, v in new.items() if old.get(k) != v}


def created(values: Mapping[str, Any]) -> Changes:
    return {k: {"old": None, "new": v} for k, v in values.items()}


def removed(values: Mapping[str, Any]) -> Changes:
    return {k: {"old": v, "new": None} for k, v in values.items()}


def event(
    action: str,
    actor: Actor | None,
    target: tuple[str, int | None] | None,
    changes: Changes,
    origin: Origin,
    *,
    at: datetime | None = None,
) -> dict[str, Any]:
    """An audit row's column values (for `record_all`, or an INSERT of one's own)."""
    for name in changes:
        if _SECRET_WORDS.search(name):
            raise ValueError(f"audit change {name!r} looks like a secret")
    target_type, target_id = target if target is not None else (None, None)
    return {
        "at": at or utcnow(),
        "action": action,
        "actor_id": actor.id if actor else None,
        "actor_username": actor.username if actor else None,
        "target_type": target_type,
        "target_id": target_id,
        "address": origin.address,
        "request_id": origin.request_id,
        "changes": changes,  # values are JSON's own types (enums of str are str)
    }


async def record(
    db: AsyncSession,
    action: str,
    actor: Actor | None,
    target: tuple[str, int | None] | None,
    changes: Changes,
    origin: Origin,
) -> None:
    """Record one event in the session's transaction."""
    await record_all(db, [event(action, actor, target, changes, origin)])


EVENTS = cast(Table, AuditEvent.__table__)
_INSERT = EVENTS.insert()


async def record_all(db: AsyncSession, events: Sequence[dict[str, Any]]) -> None:
    if not events:
        return
    conn = await db.connection()  # a Core statement: the ORM session's layer only costs time
    await conn.execute(_INSERT, events[0] if len(events) == 1 else list(events))
    logged = [e for e in events if e["action"].startswith(_LOGGED)]
    if logged:
        on_commit(db, partial(_log, logged))


def _log(events: Sequence[dict[str, Any]]) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    for values in events:
        entry = {**values, "at": values["at"].isoformat()}
        log.info("%s", json.dumps(entry, ensure_ascii=True), extra={"audit_event": entry})
