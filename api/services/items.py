"""Item rules. Services flush, never commit: the request's one commit point does that."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
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
from api.schemas.items import ItemCreate, ItemQuery, ItemUpdate
from models.item import Item, ItemCount
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


def quantity_change(quantity: int, actor: User) -> dict[str, Any]:
    """Every change of stock goes through here (the future stock-movement log hooks in): the
    columns to set."""
    return {"quantity": quantity, "updated_by_id": actor.id}


@contextmanager
def _sku_conflict() -> Iterator[None]:
    try:
        yield
    except IntegrityError as exc:
        if "sku" in str(exc.orig):
            raise Conflict(DUPLICATE_SKU) from None
        raise


def new(data: ItemCreate, actor: User) -> Item:
    """An ORM item not yet in any session, for a bulk import to add and flush in batches."""
    return Item(**_created(data, actor))


def _created(data: ItemCreate, actor: User) -> dict[str, Any]:
    return {
        "name": data.name,
        "description": data.description,
        "sku": data.sku,
        "created_by_id": actor.id,
        **quantity_change(data.quantity, actor),
    }


# Built once. A write is one statement that hands back the row it wrote (no ORM object to
# load and track for a row the request only returns).
_INSERT = _table.insert().returning(*_items)
_UPDATE = (
    _table.update()
    .where(_items.id == bindparam("item_id"))
    .values(version=_items.version + 1)
    .returning(*_items)
)
_ROW_BY_ID = select(*_items).where(_items.id == bindparam("item_id"))


async def create(db: AsyncSession, data: ItemCreate, actor: User) -> Row[Any]:
    with _sku_conflict():
        return (await db.execute(_INSERT, _created(data, actor))).one()


async def update(
    db: AsyncSession, item_id: int, data: ItemUpdate, actor: User, if_match: str | None
) -> Row[Any]:
    """Change the fields sent that differ, in one UPDATE … RETURNING that also bumps the
    version; a change to nothing makes no new version.

    The UPDATE locks the row (PostgreSQL) or holds SQLite's one writer, so concurrent changes
    of one item queue and each applies to the latest version. If-Match is checked against
    the version it replaced; a mismatch raises, and the request's rollback undoes the
    UPDATE. When nothing was updated (no such item, or nothing differs) the item is read to
    tell 404 from 412 from "nothing to change".
    """
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    if changes:
        differs = or_(*(_items[k].is_distinct_from(v) for k, v in changes.items()))
        quantity = changes.pop("quantity", None)
        if quantity is not None:
            changes.update(quantity_change(quantity, actor))
        changes["updated_by_id"] = actor.id
        with _sku_conflict():
            result = await db.execute(_UPDATE.where(differs), {"item_id": item_id, **changes})
        updated = result.first()
        if updated is not None:
            _check_if_match(if_match, updated.version - 1)
            return updated
    current = (await db.execute(_ROW_BY_ID, {"item_id": item_id})).first()
    if current is None:
        raise NotFound(ITEM_NOT_FOUND)
    _check_if_match(if_match, current.version)
    return current


def _check_if_match(if_match: str | None, version: int) -> None:
    if if_match is not None and not etag_matches(if_match, version):
        raise PreconditionFailed("Item has changed since that ETag; reload it and try again")


async def delete(db: AsyncSession, item: Item) -> None:
    if item.image_src is not None:
        on_commit(db, partial(storage.remove, item.image_src))
    await db.delete(item)
    await db.flush()
