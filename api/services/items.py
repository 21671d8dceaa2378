"""Item rules. Services flush, never commit: the request's one commit point does that."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, NoReturn, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Row,
    Select,
    Table,
    bindparam,
    func,
    or_,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api import etags, storage
from api.errors import Conflict, NotFound, PreconditionFailed
from api.schemas.common import MAX_INT32
from api.schemas.items import ItemCreate, ItemQuery, ItemUpdate
from api.schemas.stock import StockAdjustment
from auth import audit
from auth.audit import Origin
from models.base import utcnow
from models.constraints import constraint_name
from models.enums import MovementReason
from models.item import Item, ItemCount
from models.stock_movement import StockMovement
from models.transaction_hooks import on_commit
from models.user import User

ITEM_NOT_FOUND = "Item not found"
DUPLICATE_SKU = "An item with this sku already exists"


def etag(version: int) -> str:
    return f'"{version}"'


def etag_matches(header: str, version: int, *, weak: bool = False) -> bool:
    return etags.matches(header, etag(version), weak=weak)


# Built once: every item route reads its item by id (Session.get builds its query each time).
_BY_ID = select(Item).where(Item.id == bindparam("item_id"))
_BY_ID_FOR_UPDATE = _BY_ID.with_for_update()


async def get(db: AsyncSession, item_id: int, *, for_update: bool = False) -> Item:
    found = await db.scalars(_BY_ID_FOR_UPDATE if for_update else _BY_ID, {"item_id": item_id})
    item = found.first()
    if item is None:
        raise NotFound(ITEM_NOT_FOUND)
    return item


# List pages, creates and updates work on the table's rows, not on ORM objects to track.
_table = cast(Table, Item.__table__)
_items = _table.c


def _filters(query: ItemQuery) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if query.q:
        where.append(
            or_(
                _items.name.icontains(query.q, autoescape=True),
                _items.sku.icontains(query.q, autoescape=True),
            )
        )
    if query.min_quantity is not None:
        where.append(_items.quantity >= query.min_quantity)
    if query.max_quantity is not None:
        where.append(_items.quantity <= query.max_quantity)
    if query.sku is not None:
        where.append(_items.sku == query.sku)
    if query.low_stock is not None:
        low = _items.quantity <= _items.reorder_level  # null (never low) without a level
        where.append(low if query.low_stock else or_(_items.reorder_level.is_(None), ~low))
    return where


def _ordered(stmt: Select[Any], sort: str) -> Select[Any]:
    column = _items[sort.lstrip("-")]
    if sort.startswith("-"):
        return stmt.order_by(column.desc(), _items.id.desc())
    return stmt.order_by(column.asc(), _items.id.asc())


async def search(db: AsyncSession, query: ItemQuery) -> tuple[Sequence[Row[Any]], int]:
    """A page of matching items (rows with the item's columns) and how many match in all.

    One statement: the page, each row carrying the count of all matches (a subquery run once),
    so page and total come from one snapshot. Only a page past the end needs a second one.
    Without filters the count is `item_counts`' (kept by triggers), whatever the table's size.
    """
    where = _filters(query)
    if where:
        count = select(func.count()).select_from(Item.__table__).where(*where)
    else:  # every item: the count the triggers keep, not a scan of the table
        # (cast: PostgreSQL's sum of bigints is a numeric, which would come back a Decimal)
        count = select(func.coalesce(func.sum(ItemCount.__table__.c.total), 0).cast(BigInteger))
    page = _ordered(
        select(*_items, count.scalar_subquery().label("total")).where(*where), query.sort.value
    )
    rows = (await db.execute(page.offset(query.skip).limit(query.limit))).all()
    if rows:
        return rows, rows[0].total
    if not query.skip:
        return rows, 0  # an empty first page: nothing matches
    return rows, await db.scalar(count) or 0


ITEM_FIELDS = ("name", "quantity", "description", "sku", "reorder_level")


def _fields(item: Row[Any] | Item, *extra: str) -> dict[str, Any]:
    """The item's values as the audit trail records them."""
    return {name: getattr(item, name) for name in (*ITEM_FIELDS, *extra)}


# Constraint names (models.base NAMING_CONVENTION) and what a clash with each means.
_UNIQUE = {"uq_items_sku": DUPLICATE_SKU}


@contextmanager
def _conflicts() -> Iterator[None]:
    try:
        yield
    except IntegrityError as exc:
        detail = _UNIQUE.get(constraint_name(exc) or "")
        if detail is None:
            raise
        raise Conflict(detail) from None


def _new_values(data: ItemCreate, actor: User) -> dict[str, Any]:
    """The columns of a new item."""
    return {
        "name": data.name,
        "quantity": data.quantity,
        "description": data.description,
        "sku": data.sku,
        "reorder_level": data.reorder_level,
        "created_by_id": actor.id,
        "updated_by_id": actor.id,
    }


# Built once. A write is one statement that hands back the row it wrote (no ORM object to
# load and track for a row the request only returns).
_INSERT = _table.insert().returning(*_items)
_INSERT_MANY = _table.insert().returning(*_items, sort_by_parameter_order=True)
_UPDATE = (
    _table.update()
    .where(_items.id == bindparam("item_id"))
    .values(version=_items.version + 1)
    .returning(*_items)
)
# A change of stock, applied by the database: the new quantity is computed from the current
# one under the row's lock (PostgreSQL) or in SQLite's one writer's turn, and refused (no row)
# when it would leave the allowed range. The delta is added as a bigint: an int4 sum past
# 2^31 would be an error on PostgreSQL, not a refusal.
_wide_sum = _items.quantity + bindparam("delta", type_=BigInteger)
_ADJUST = (
    _table.update()
    .where(_items.id == bindparam("item_id"), _wide_sum.between(0, MAX_INT32))
    .values(
        quantity=_items.quantity + bindparam("delta", type_=Integer),
        version=_items.version + 1,
        updated_by_id=bindparam("actor_id"),
    )
    .returning(*_items)
)
_ROW_BY_ID = select(*_items).where(_items.id == bindparam("item_id"))
_ROW_BY_ID_FOR_UPDATE = _ROW_BY_ID.with_for_update()
_movements = cast(Table, StockMovement.__table__)
_INSERT_MOVEMENTS = _movements.insert().returning(*_movements.c, sort_by_parameter_order=True)


@dataclass(frozen=True, slots=True)
class StockChange:
    """How a write moves stock: the quantity before it (None: the row's own quantity less
    `delta`), why, and a note."""

    reason: MovementReason
    note: str | None = None
    before: int | None = None
    delta: int = 0


async def _write(
    db: AsyncSession,
    statement: Any,
    params: Sequence[dict[str, Any]],
    changes: Sequence[StockChange],
    actor: User,
) -> tuple[list[Row[Any]], list[Row[Any]]]:
    """The one place that writes `items.quantity`: runs an INSERT or UPDATE … RETURNING of
    items, and records each row's change of quantity as a stock movement in the same
    transaction. Rows the statement did not write (a guard refused) are left out.

    Every create, PATCH, adjustment, count and CSV import goes through here, so an item's
    movements sum to its quantity.
    """
    # On the session's connection: the statements are Core, the ORM session's layer only
    # costs time on every write.
    conn = await db.connection()
    rows = list((await conn.execute(statement, list(params))).all())
    if not rows:
        return rows, []
    now = utcnow()
    movements = []
    for row, change in zip(rows, changes, strict=True):
        before = change.before if change.before is not None else row.quantity - change.delta
        delta = row.quantity - before
        if delta or change.reason is MovementReason.counted:
            movements.append(
                {
                    "item_id": row.id,
                    "delta": delta,
                    "quantity_after": row.quantity,
                    "reason": change.reason,
                    "note": change.note,
                    "user_id": actor.id,
                    "created_at": now,
                }
            )
    if not movements:
        return rows, []
    return rows, list((await conn.execute(_INSERT_MOVEMENTS, movements)).all())


async def create(
    db: AsyncSession, data: ItemCreate, actor: User, origin: Origin, *, note: str | None = None
) -> Row[Any]:
    """A new item; a quantity above 0 is recorded as `received`."""
    [item] = await create_many(db, [data], actor, origin, note=note)
    return item


async def create_many(
    db: AsyncSession,
    batch: Sequence[ItemCreate],
    actor: User,
    origin: Origin,
    *,
    note: str | None = None,
) -> list[Row[Any]]:
    received = StockChange(MovementReason.received, note, before=0)
    with _conflicts():
        created, _ = await _write(
            db,
            _INSERT if len(batch) == 1 else _INSERT_MANY,
            [_new_values(data, actor) for data in batch],
            [received] * len(batch),
            actor,
        )
    await audit.record_all(
        db,
        [
            audit.event("item.create", actor, ("item", row.id), audit.created(_fields(row)), origin)
            for row in created
        ],
    )
    return created


async def update(
    db: AsyncSession,
    item_id: int,
    data: ItemUpdate,
    actor: User,
    origin: Origin,
    if_match: str | None,
    *,
    note: str | None = None,
) -> Row[Any]:
    """Change the fields sent that differ, in one UPDATE … RETURNING that also bumps the
    version; a change to nothing makes no new version. A new quantity is a `correction`.

    The item is read first, locked (PostgreSQL; SQLite has one writer), so that its old
    values are known for the audit trail and the movement, and If-Match is checked before
    anything is written.
    """
    current = (await db.execute(_ROW_BY_ID_FOR_UPDATE, {"item_id": item_id})).first()
    if current is None:
        raise NotFound(ITEM_NOT_FOUND)
    _check_if_match(if_match, current.version)
    changes = audit.changed(dict(current._mapping), data.model_dump(exclude_unset=True))
    if not changes:
        return current
    params = {k: v["new"] for k, v in changes.items()}
    params.update(item_id=item_id, updated_by_id=actor.id)
    correction = StockChange(MovementReason.correction, note, before=current.quantity)
    with _conflicts():
        [updated], _ = await _write(db, _UPDATE, [params], [correction], actor)
    await audit.record(db, "item.update", actor, ("item", item_id), changes, origin)
    return updated


async def adjust(
    db: AsyncSession,
    item_id: int,
    data: StockAdjustment,
    actor: User,
    origin: Origin,
    if_match: str | None,
) -> tuple[Row[Any], Row[Any]]:
    """Apply a change of stock (`delta`) or a count (`quantity`): the item and its movement.

    A delta is applied by the database in one statement, never read and written back here;
    a count sets the quantity under the row's lock, its delta the difference (0 included).
    """
    if data.delta is not None:
        change = StockChange(data.reason, data.note, delta=data.delta)
        delta = {"item_id": item_id, "delta": data.delta, "actor_id": actor.id}
        rows, movements = await _write(db, _ADJUST, [delta], [change], actor)
        if not rows:
            await _refused(db, item_id, data.delta, if_match)
        [item] = rows
        _check_if_match(if_match, item.version - 1)  # a mismatch rolls the change back
    else:
        current = (await db.execute(_ROW_BY_ID_FOR_UPDATE, {"item_id": item_id})).first()
        if current is None:
            raise NotFound(ITEM_NOT_FOUND)
        _check_if_match(if_match, current.version)
        change = StockChange(data.reason, data.note, before=current.quantity)
        params: dict[str, Any] = {"item_id": item_id, "quantity": data.quantity}
        params["updated_by_id"] = actor.id
        [item], movements = await _write(db, _UPDATE, [params], [change], actor)
    [movement] = movements
    before = item.quantity - movement.delta
    changes = {"quantity": {"old": before, "new": item.quantity}}
    await audit.record(db, "item.adjust", actor, ("item", item_id), changes, origin)
    return item, movement


async def _refused(db: AsyncSession, item_id: int, delta: int, if_match: str | None) -> NoReturn:
    """Why a change of stock wrote nothing: no such item, a stale ETag, or the range."""
    current = (await db.execute(_ROW_BY_ID, {"item_id": item_id})).first()
    if current is None:
        raise NotFound(ITEM_NOT_FOUND)
    _check_if_match(if_match, current.version)
    if delta < 0:
        raise Conflict(f"Not enough stock: {current.quantity} in stock, cannot take {-delta}")
    raise Conflict(
        f"Not enough stock: {current.quantity} in stock, {delta} more would pass the limit "
        f"of {MAX_INT32}"
    )


def _check_if_match(if_match: str | None, version: int) -> None:
    if if_match is not None and not etag_matches(if_match, version):
        raise PreconditionFailed("Item has changed since that ETag; reload it and try again")


async def delete(db: AsyncSession, item: Item, actor: User, origin: Origin) -> None:
    """The item, its movements with it; its last state stays in the audit trail."""
    last = audit.removed(_fields(item, "image_src"))
    await audit.record(db, "item.delete", actor, ("item", item.id), last, origin)
    if item.image_src is not None:
        on_commit(db, partial(storage.remove, item.image_src))
    await db.delete(item)
    await db.flush()
