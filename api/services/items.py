"""Item rules. Services flush, never commit: the request's one commit point does that."""

from collections.abc import Sequence
from functools import partial
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Row, Select, bindparam, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api import etags, storage
from api.errors import Conflict, NotFound, PreconditionFailed
from api.schemas.items import ItemCreate, ItemQuery, ItemUpdate
from models.item import Item, ItemCount
from models.transaction_hooks import on_commit
from models.user import User

ITEM_NOT_FOUND = "Item not found"
DUPLICATE_SKU = "An item with this sku already exists"


def etag(item: Item) -> str:
    return f'"{item.version}"'


def etag_matches(header: str, item: Item, *, weak: bool = False) -> bool:
    return etags.matches(header, etag(item), weak=weak)


# Built once: every item route reads its item by id (Session.get builds its query each time).
_BY_ID = select(Item).where(Item.id == bindparam("item_id"))
_BY_ID_FOR_UPDATE = _BY_ID.with_for_update()


async def get(db: AsyncSession, item_id: int, *, for_update: bool = False) -> Item:
    found = await db.scalars(_BY_ID_FOR_UPDATE if for_update else _BY_ID, {"item_id": item_id})
    item = found.first()
    if item is None:
        raise NotFound(ITEM_NOT_FOUND)
    return item


# A list page is read-only: it selects the table's columns (rows, not ORM objects to track).
_items = Item.__table__.c


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


def set_quantity(item: Item, quantity: int, actor: User) -> None:
    """Every change of stock goes through here (the future stock-movement log hooks in)."""
    item.quantity = quantity
    item.updated_by_id = actor.id


async def _flush(db: AsyncSession) -> None:
    try:
        await db.flush()
    except IntegrityError as exc:
        if "sku" in str(exc.orig):
            raise Conflict(DUPLICATE_SKU) from None
        raise


def new(data: ItemCreate, actor: User) -> Item:
    """An item not yet in any session: `create` adds and flushes it; a bulk import batches."""
    item = Item(
        name=data.name,
        quantity=0,
        description=data.description,
        sku=data.sku,
        created_by_id=actor.id,
    )
    set_quantity(item, data.quantity, actor)
    return item


async def create(db: AsyncSession, data: ItemCreate, actor: User) -> Item:
    item = new(data, actor)
    db.add(item)
    await _flush(db)
    return item


async def update(
    db: AsyncSession, item: Item, data: ItemUpdate, actor: User, if_match: str | None
) -> Item:
    if if_match is not None and not etag_matches(if_match, item):
        raise PreconditionFailed("Item has changed since that ETag; reload it and try again")
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    quantity = changes.pop("quantity", None)
    changes = {k: v for k, v in changes.items() if getattr(item, k) != v}
    if not changes and (quantity is None or quantity == item.quantity):
        return item  # nothing to change: no new version
    for field, value in changes.items():
        setattr(item, field, value)
    if quantity is not None:
        set_quantity(item, quantity, actor)
    item.updated_by_id = actor.id
    await _flush(db)
    return item


async def delete(db: AsyncSession, item: Item) -> None:
    if item.image_src is not None:
        on_commit(db, partial(storage.remove, item.image_src))
    await db.delete(item)
    await db.flush()
