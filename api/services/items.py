"""Item rules. Services flush, never commit: the request's one commit point does that."""

import asyncio
import itertools
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    BindParameter,
    ColumnElement,
    Integer,
    Row,
    Select,
    Table,
    bindparam,
    column,
    func,
    literal_column,
    or_,
    select,
    table,
    text,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from api import etags, storage
from api.errors import Conflict, NotFound, PreconditionFailed, ServiceUnavailable
from api.schemas.items import ItemCreate, ItemQuery, ItemUpdate
from models.item import SEARCH_TABLE, Item, ItemCount
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


# A filtered list counts its matches up to this many; past it, `total` is this and not exact
# (counting every match of a common term costs what the page does not).
TOTAL_CAP = 10_000
# Terms this long are found through the search indexes; shorter ones scan the table, within
# SHORT_SEARCH_TIMEOUT.
INDEXED_TERM = 3
SHORT_SEARCH_TIMEOUT = 2.0
SEARCH_TOO_LONG = "This search took too long; use a term of 3 or more characters"

_search = table(SEARCH_TABLE, column("rowid", Integer))
_ESCAPE = re.compile(r"([/%_])")  # LIKE's wildcards (and the escape character) made literal


def _term(q: str, dialect: str) -> ColumnElement[bool]:
    """Case-insensitive substring match of `q` on name or sku; `%` and `_` are literal."""
    columns = (_items.name, _items.sku)
    if dialect != "sqlite":
        # The pattern goes into the statement as a literal: planned for this term each time
        # (a prepared statement's generic plan would guess how many rows match; pg_trgm's
        # indexes serve lower(column) LIKE '%term%').
        literal: BindParameter[str] = bindparam(None, _contains(q), literal_execute=True)
        return or_(*(func.lower(col).like(func.lower(literal), escape="/") for col in columns))
    if len(q) >= INDEXED_TERM:
        return _items.id.in_(_found(q))
    # Too short for trigrams: LIKE, in C (SQLite folds ASCII letters), for each spelling of
    # the other letters; not a Python lower() per row.
    patterns = [_contains(spelling) for spelling in _spellings(q)]
    return or_(*(col.like(p, escape="/") for col in columns for p in patterns))


def _found(q: str) -> Select[Any]:
    """SQLite: the ids of the items whose name or sku holds `q` (3+ characters)."""
    return select(_search.c.rowid).where(_match(q))


def _match(q: str) -> ColumnElement[bool]:
    phrase = '"' + q.replace('"', '""') + '"'  # FTS5: a quoted string is literal
    return literal_column(SEARCH_TABLE).op("MATCH")(phrase)


def _contains(term: str) -> str:
    return "%" + _ESCAPE.sub(r"/\1", term) + "%"


# Lower-case letters with an upper-case form other than their upper() and title().
_MORE_CASES = {"k": "\u212a", "å": "\u212b", "ω": "\u2126", "θ": "\u03f4", "ß": "\u1e9e"}


def _spellings(term: str) -> list[str]:
    """The strings SQLite's LIKE must look for to find every string whose lower() holds the
    term's: each letter in each of its cases, but ASCII letters (LIKE folds them) as given."""
    options = []
    for c in term:
        low = c.lower()
        more = _MORE_CASES.get(low, "")
        if len(low) != 1:
            options.append([c])
        elif c.isascii():
            options.append([c, *more])
        else:
            cases = {low, low.upper(), low.title(), c, *more}
            options.append(sorted(v for v in cases if len(v) == 1 and v.lower() == low))
    return ["".join(p) for p in itertools.product(*options)]


def _filters(query: ItemQuery, dialect: str, *, term: bool = True) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if query.q and term:
        where.append(_term(query.q, dialect))
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


@dataclass(frozen=True, slots=True)
class Page:
    rows: Sequence[Row[Any]]
    total: int
    total_exact: bool


async def search(db: AsyncSession, query: ItemQuery) -> Page:
    """A page of matching items (rows with the item's columns) and how many match in all:
    exactly up to TOTAL_CAP, past it TOTAL_CAP and `total_exact` false.

    One statement: the page, each row carrying the count of matches (a subquery run once),
    so page and total come from one snapshot. Only a page past the end needs a second one.
    Without filters the count is `item_counts`' (kept by triggers), whatever the table's size.
    """
    cap = TOTAL_CAP
    dialect = db.get_bind().dialect.name
    where = _filters(query, dialect)
    if where:
        matches: Select[Any] = select(literal_column("1")).select_from(_table).where(*where)
        if dialect == "sqlite" and len(where) == 1 and query.q and len(query.q) >= INDEXED_TERM:
            matches = _found(query.q)  # a term alone: counted in the index, no item read
        count = select(func.count()).select_from(matches.limit(cap + 1).subquery())
    else:  # every item: the count the triggers keep, not a scan of the table
        # (cast: PostgreSQL's sum of bigints is a numeric, which would come back a Decimal)
        count = select(func.coalesce(func.sum(ItemCount.__table__.c.total), 0).cast(BigInteger))
    page = select(*_items, count.scalar_subquery().label("total"))
    sort = query.sort.value
    if dialect == "sqlite" and query.q and len(query.q) >= INDEXED_TERM and sort in ("id", "-id"):
        # By id: the index's matches in id order, up to the page's end (`id IN (…)` would
        # collect every match first).
        rowid = _search.c.rowid
        page = page.select_from(_search.join(_table, _items.id == rowid))
        page = page.where(_match(query.q), *_filters(query, dialect, term=False))
        page = page.order_by(rowid.desc() if sort == "-id" else rowid)
    else:
        page = _ordered(page.where(*where), sort)
    short = query.q is not None and len(query.q) < INDEXED_TERM
    async with _bounded(db, SHORT_SEARCH_TIMEOUT if short else None):
        rows = (await db.execute(page.offset(query.skip).limit(query.limit))).all()
        if rows:
            total = rows[0].total
        elif not query.skip:
            total = 0  # an empty first page: nothing matches
        else:
            total = await db.scalar(count) or 0
    if where and total > cap:
        return Page(rows, cap, total_exact=False)
    return Page(rows, total, total_exact=True)


@asynccontextmanager
async def _bounded(db: AsyncSession, seconds: float | None) -> AsyncIterator[None]:
    """Statements that may scan the table stop after `seconds` (503): a short term on a
    large catalogue must not keep a connection, and a core, for long."""
    if seconds is None:
        yield
        return
    connection = await db.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    if connection.dialect.name == "sqlite":
        # sqlite3's interrupt() may be called from any thread; it stops the running statement.
        sqlite = driver._conn  # type: ignore[union-attr]
        timer = asyncio.get_running_loop().call_later(seconds, sqlite.interrupt)
        try:
            yield
        except OperationalError as exc:
            if "interrupted" in str(exc.orig):
                raise ServiceUnavailable(SEARCH_TOO_LONG) from None
            raise
        finally:
            timer.cancel()
        return
    # PostgreSQL: the request reads in autocommit (no SET LOCAL): set, then reset.
    await db.execute(text(f"SET statement_timeout = {max(1, int(seconds * 1000))}"))
    try:
        yield
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == "57014":  # query_canceled
            raise ServiceUnavailable(SEARCH_TOO_LONG) from None
        raise
    finally:
        await db.execute(text("RESET statement_timeout"))


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


async def create_many(
    db: AsyncSession, data: Sequence[ItemCreate], actor: User
) -> Sequence[Row[Any]]:
    """New items for a bulk import, in multi-row INSERTs (SQLAlchemy's "insertmanyvalues"),
    not an ORM object each. The new rows' id and quantity, in no particular order (asking
    for the order given makes SQLAlchemy insert one row per statement on SQLite)."""
    if not data:
        return []
    rows = [_created(d, actor) for d in data]
    with _sku_conflict():
        return (await db.execute(_INSERT_MANY, rows)).all()


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
_INSERT_MANY = _table.insert().returning(_items.id, _items.quantity)


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
