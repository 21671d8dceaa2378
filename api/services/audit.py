"""The audit trail, read. (Events are written by auth/audit.py, in the transaction of what they
record; nothing changes or deletes one.)"""

from typing import cast

from sqlalchemy import ColumnElement, Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.schemas.audit import AuditEventRead, AuditList, AuditQuery
from api.schemas.stock import UserRef
from models.audit_event import AuditEvent

_events = cast(Table, AuditEvent.__table__)
_e = _events.c


def _filters(query: AuditQuery) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if query.action is not None:
        where.append(_e.action == query.action)
    if query.actor_id is not None:
        where.append(_e.actor_id == query.actor_id)
    if query.target_type is not None:
        where.append(_e.target_type == query.target_type)
    if query.target_id is not None:
        where.append(_e.target_id == query.target_id)
    if query.since is not None:
        where.append(_e.at >= query.since)
    if query.until is not None:
        where.append(_e.at <= query.until)
    return where


async def search(db: AsyncSession, query: AuditQuery) -> AuditList:
    """A page of events, newest first, and how many match (one statement, one snapshot)."""
    where = _filters(query)
    count = select(func.count()).select_from(_events).where(*where)
    page = (
        select(*_e, count.scalar_subquery().label("total"))
        .where(*where)
        .order_by(_e.id.desc())
        .offset(query.skip)
        .limit(query.limit)
    )
    rows = (await db.execute(page)).all()
    total = rows[0].total if rows else 0
    if not rows and query.skip:
        total = await db.scalar(count) or 0
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
