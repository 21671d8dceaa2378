"""The audit trail, read. (Events are written by auth/audit.py, in the transaction of what they
record; nothing changes or deletes one.)"""

from typing import cast

from sqlalchemy import ColumnElement, Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.schemas.audit import AuditEventRead, AuditList, AuditQuery
from api.schemas.stock import UserRef
from api.services.pages import equal, newest_first, within
from models.audit_event import AuditEvent

_events = cast(Table, AuditEvent.__table__)
_e = _events.c


def _filters(query: AuditQuery) -> list[ColumnElement[bool]]:
    return [
        *equal(
            [
                (_e.action, query.action),
                (_e.actor_id, query.actor_id),
                (_e.target_type, query.target_type),
                (_e.target_id, query.target_id),
            ]
        ),
        *within(_e.at, query.since, query.until),
    ]


async def search(db: AsyncSession, query: AuditQuery) -> AuditList:
    """A page of events, newest first, and how many match."""
    rows, total = await newest_first(
        db, select(*_e), _events, _filters(query), query.skip, query.limit
    )
    return AuditList(
        events=[
            AuditEventRead(
                id=r.id,
                at=r.at,
                action=r.action,
                actor=(
                    UserRef(id=r.actor_id, username=r.actor_username)
                    if r.actor_id is not None and r.actor_username is not None
                    else None
                ),
                target_type=r.target_type,
                target_id=r.target_id,
                address=r.address,
                request_id=r.request_id,
                changes=r.changes,
            )
            for r in rows
        ],
        total=total,
        skip=query.skip,
        limit=query.limit,
    )
