"""Stock movements, read. (They are written only by api/services/items.py, with the change
of quantity they record.)"""

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, Row, Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import NotFound
from api.schemas.stock import (
    ItemMovementQuery,
    MovementList,
    MovementQuery,
    MovementRead,
    UserRef,
)
from api.services.items import ITEM_NOT_FOUND
from api.services.pages import equal, newest_first, within
from models.item import Item
from models.stock_movement import StockMovement
from models.user import User

_movements = cast(Table, StockMovement.__table__)
_m = _movements.c


def movement_read(row: Row[Any], username: str | None) -> MovementRead:
    """A movement row as JSON; `username` is its user's (None once that user is deleted)."""
    user = None
    if row.user_id is not None and username is not None:
        user = UserRef(id=row.user_id, username=username)
    return MovementRead(
        id=row.id,
        item_id=row.item_id,
        delta=row.delta,
        quantity_after=row.quantity_after,
        reason=row.reason,
        note=row.note,
        created_at=row.created_at,
        user=user,
    )


def _filters(query: ItemMovementQuery) -> list[ColumnElement[bool]]:
    if not isinstance(query, MovementQuery):
        return equal([(_m.reason, query.reason)])
    return [
        *equal(
            [(_m.reason, query.reason), (_m.item_id, query.item_id), (_m.user_id, query.user_id)]
        ),
        *within(_m.created_at, query.since, query.until),
    ]


async def _page(
    db: AsyncSession, where: Sequence[ColumnElement[bool]], query: ItemMovementQuery
) -> tuple[list[Row[Any]], int]:
    page = select(*_m, User.username).outerjoin(User, User.id == _m.user_id)
    return await newest_first(db, page, _movements, where, query.skip, query.limit)


def _listed(rows: list[Row[Any]], total: int, query: ItemMovementQuery) -> MovementList:
    return MovementList(
        movements=[movement_read(r, r.username) for r in rows],
        total=total,
        skip=query.skip,
        limit=query.limit,
    )


async def item_movements(db: AsyncSession, item_id: int, query: ItemMovementQuery) -> MovementList:
    where = [_m.item_id == item_id, *_filters(query)]
    rows, total = await _page(db, where, query)
    if not rows and await db.scalar(select(Item.id).where(Item.id == item_id)) is None:
        raise NotFound(ITEM_NOT_FOUND)
    return _listed(rows, total, query)


async def movements(db: AsyncSession, query: MovementQuery) -> MovementList:
    rows, total = await _page(db, _filters(query), query)
    return _listed(rows, total, query)
