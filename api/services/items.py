"""Item rules. Services flush, never commit: the request's one commit point does that."""

import itertools
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache, lru_cache, partial
from typing import Any, NoReturn, cast

from sqlalchemy import (
    CTE,
    BigInteger,
    ColumnElement,
    Integer,
    Row,
    Select,
    String,
    Table,
    bindparam,
    column,
    func,
    literal_column,
    or_,
    select,
    table,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api import etags, storage
from api.errors import Conflict, NotFound, PreconditionFailed, ServiceUnavailable
from api.schemas.common import MAX_INT32
from api.schemas.items import ItemCreate, ItemQuery, ItemUpdate
from api.schemas.stock import StockAdjustment
from auth import audit
from auth.audit import Origin
from models.base import utcnow
from models.constraints import constraint_name
from models.engine import dialect_name
from models.enums import MovementReason
from models.item import SEARCH_TABLE, Item, ItemCount
from models.reads import Reads, ReadTooLong
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


# A search's statements are built once per shape (which filters, which kind of term, which
# sort), with its values bound as parameters: building and compiling them cost more than a
# search through the indexes.
_MATCH = literal_column(SEARCH_TABLE).op("MATCH")(bindparam("q_match", type_=String))
# PostgreSQL: the pattern goes into the statement as a literal: planned for this term each
# time (a prepared statement's generic plan would guess how many rows match; pg_trgm's
# indexes serve lower(column) LIKE '%term%').
_PATTERN = bindparam("q_pattern", type_=String, literal_execute=True)


@dataclass(frozen=True, slots=True)
class _Shape:
    term: str | None  # "fts" (SQLite, 3+ characters), "likeN" (SQLite, N patterns), "trgm"
    min_quantity: bool
    max_quantity: bool
    sku: bool
    low_stock: bool | None
    sort: str

    @property
    def filtered(self) -> bool:
        return bool(self.term or self.min_quantity or self.max_quantity or self.sku) or (
            self.low_stock is not None
        )


def _shape(query: ItemQuery, dialect: str) -> tuple[_Shape, dict[str, Any]]:
    """The search's shape, and the values its statements bind."""
    values: dict[str, Any] = {}
    term = None
    if query.q:
        if dialect != "sqlite":
            term, values["q_pattern"] = "trgm", _contains(query.q)
        elif len(query.q) >= INDEXED_TERM:
            term, values["q_match"] = "fts", '"' + query.q.replace('"', '""') + '"'
        else:
            # Too short for trigrams: LIKE, in C (SQLite folds ASCII letters), for each
            # spelling of the other letters; not a Python lower() per row.
            patterns = [_contains(spelling) for spelling in _spellings(query.q)]
            term = f"like{len(patterns)}"
            values.update((f"q_like{i}", p) for i, p in enumerate(patterns))
    for name in ("min_quantity", "max_quantity", "sku"):
        if getattr(query, name) is not None:
            values[name] = getattr(query, name)
    shape = _Shape(
        term,
        "min_quantity" in values,
        "max_quantity" in values,
        "sku" in values,
        query.low_stock,
        query.sort.value,
    )
    return shape, values


def _filters(shape: _Shape, *, term: bool = True) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    columns = (_items.name, _items.sku)
    if shape.term == "fts" and term:
        where.append(_items.id.in_(select(_search.c.rowid).where(_MATCH)))
    elif shape.term == "trgm" and term:
        where.append(
            or_(*(func.lower(col).like(func.lower(_PATTERN), escape="/") for col in columns))
        )
    elif shape.term and term:
        patterns = [bindparam(f"q_like{i}", type_=String) for i in range(int(shape.term[4:]))]
        where.append(or_(*(col.like(p, escape="/") for col in columns for p in patterns)))
    if shape.min_quantity:
        where.append(_items.quantity >= bindparam("min_quantity", type_=Integer))
    if shape.max_quantity:
        where.append(_items.quantity <= bindparam("max_quantity", type_=Integer))
    if shape.sku:
        where.append(_items.sku == bindparam("sku", type_=String))
    if shape.low_stock is not None:
        low = _items.quantity <= _items.reorder_level  # null (never low) without a level
        where.append(low if shape.low_stock else or_(_items.reorder_level.is_(None), ~low))
    return where


@lru_cache(maxsize=256)
def _search_statements(shape: _Shape) -> tuple[Select[Any], Select[Any]]:
    """A filtered list's page (binding `skip` and `limit` too) and its count, capped."""
    where = _filters(shape)
    matches: Select[Any] = select(literal_column("1")).select_from(_table).where(*where)
    if shape.term == "fts" and len(where) == 1:
        matches = select(_search.c.rowid).where(_MATCH)  # counted in the index, no item read
    capped = matches.limit(TOTAL_CAP + 1).subquery()
    count: Select[Any] = select(func.count().label("total")).select_from(capped)
    page: Select[Any] = select(*_items, count.scalar_subquery().label("total"))
    if shape.term == "fts" and shape.sort in ("id", "-id"):
        # By id: the index's matches in id order, up to the page's end (`id IN (…)` would
        # collect every match first).
        rowid = _search.c.rowid
        page = page.select_from(_search.join(_table, _items.id == rowid))
        page = page.where(_MATCH, *_filters(shape, term=False))
        page = page.order_by(rowid.desc() if shape.sort == "-id" else rowid)
    else:
        page = _ordered(page.where(*where), shape.sort)
    return page.offset(bindparam("skip")).limit(bindparam("limit")), count


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


def _ordered(stmt: Select[Any], sort: str) -> Select[Any]:
    column = _items[sort.lstrip("-")]
    if sort.startswith("-"):
        return stmt.order_by(column.desc(), _items.id.desc())
    return stmt.order_by(column.asc(), _items.id.asc())


@dataclass(frozen=True, slots=True)
class Page:
    rows: Sequence[Mapping[Any, Any]]
    total: int
    total_exact: bool


# A page of the unfiltered list this far from the start, or nearer, is a quick read (an index
# walked for `skip + limit` entries); a page further on is read off the event loop.
QUICK_SKIP = 1_000


# How many items there are: the count the triggers keep, not a scan of the table.
# (cast: PostgreSQL's sum of bigints is a numeric, which would come back a Decimal)
_ITEM_COUNT = select(
    func.coalesce(func.sum(ItemCount.__table__.c.total), 0).cast(BigInteger).label("total")
)


@cache
def _every_item_page(sort: str) -> Select[Any]:
    """Built once per sort key: a page of every item, each row carrying the item count."""
    page = _ordered(select(*_items, _ITEM_COUNT.scalar_subquery().label("total")), sort)
    return page.offset(bindparam("skip")).limit(bindparam("limit"))


async def search(reads: Reads, query: ItemQuery) -> Page:
    """A page of matching items (rows with the item's columns) and how many match in all:
    exactly up to TOTAL_CAP, past it TOTAL_CAP and `total_exact` false.

    One statement: the page, each row carrying the count of matches (a subquery run once),
    so page and total come from one snapshot. Only a page past the end needs a second one.
    Without filters the count is `item_counts`' (kept by triggers), whatever the table's size.
    """
    shape, values = _shape(query, reads.dialect)
    window = {"skip": query.skip, "limit": query.limit}
    quick = query.skip <= QUICK_SKIP
    if not shape.filtered:
        every = _every_item_page(query.sort.value)
        rows = await reads.all(every, window, quick=quick)
        if rows or not query.skip:
            return Page(rows, rows[0]["total"] if rows else 0, total_exact=True)
        return Page(rows, (await reads.all(_ITEM_COUNT))[0]["total"], total_exact=True)
    page, count = _search_statements(shape)
    if query.q is not None and len(query.q) < INDEXED_TERM:
        # Too short for the trigram indexes: a scan of every item, off the loop and bounded.
        try:
            async with reads.connect(SHORT_SEARCH_TIMEOUT) as conn:
                rows = (await conn.execute(page, {**values, **window})).mappings().all()
                total = await _total(rows, query, lambda: conn.scalar(count, values))
        except ReadTooLong:
            raise ServiceUnavailable(SEARCH_TOO_LONG) from None
    else:
        # Through the indexes, but counting up to the cap and sorting the matches can take
        # milliseconds: off SQLite's loop. (asyncpg cannot take the pattern PostgreSQL plans
        # for: SQLAlchemy renders it.)
        direct = shape.term != "trgm"
        rows = await reads.all(page, {**values, **window}, quick=False, built_once=direct)
        total = await _total(rows, query, lambda: _count(reads, count, values, direct))
    cap = TOTAL_CAP
    if total > cap:
        return Page(rows, cap, total_exact=False)
    return Page(rows, total, total_exact=True)


async def _total(
    rows: Sequence[Mapping[Any, Any]], query: ItemQuery, counted: Callable[[], Awaitable[Any]]
) -> int:
    """The page's rows carry the total; an empty page counts apart, unless it is the first."""
    if rows:
        return int(rows[0]["total"])
    if not query.skip:
        return 0  # an empty first page: nothing matches
    return int(await counted() or 0)


async def _count(reads: Reads, count: Select[Any], values: dict[str, Any], direct: bool) -> Any:
    return (await reads.all(count, values, quick=False, built_once=direct))[0]["total"]


async def get_row(reads: Reads, item_id: int) -> Mapping[Any, Any]:
    """The item's row (a public read: no ORM object, no session)."""
    row = await reads.first(_ROW_BY_ID, {"item_id": item_id})
    if row is None:
        raise NotFound(ITEM_NOT_FOUND)
    return row


ITEM_FIELDS = ("name", "quantity", "description", "sku", "reorder_level")


def _fields(item: Row[Any] | Item | ItemCreate, *extra: str) -> dict[str, Any]:
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


_NEW_COLUMNS = (*ITEM_FIELDS, "created_by_id", "updated_by_id")


def _new_values(data: ItemCreate, actor: User) -> dict[str, Any]:
    """The columns of a new item (_NEW_COLUMNS)."""
    return {**_fields(data), "created_by_id": actor.id, "updated_by_id": actor.id}


# Built once. A write is one statement that hands back the row it wrote (no ORM object to
# load and track for a row the request only returns).
# Given many rows, an INSERT is sent as multi-row INSERTs (SQLAlchemy's "insertmanyvalues"),
# the rows handed back in no particular order: asking for the order given would make
# SQLAlchemy send one INSERT per row on SQLite.
_INSERT = _table.insert().returning(*_items)
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
_INSERT_MOVEMENTS = _movements.insert().returning(*_movements.c)  # in no particular order
# The movements of many rows that share one change from a known quantity (a bulk create's),
# built by the database from the rows themselves: no parameters per row to send.
_before = bindparam("before", type_=Integer)
_INSERT_MOVEMENTS_OF = _movements.insert().from_select(
    ["item_id", "delta", "quantity_after", "reason", "note", "user_id", "created_at"],
    select(
        _items.id,
        _items.quantity - _before,
        _items.quantity,
        bindparam("reason", type_=_movements.c.reason.type),
        bindparam("note", type_=_movements.c.note.type),
        bindparam("user_id", type_=Integer),
        bindparam("created_at", type_=_movements.c.created_at.type),
    ).where(_items.id.in_(bindparam("ids", expanding=True)), _items.quantity != _before),
)


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

    Every create, PATCH, adjustment, count and CSV import goes through here (on PostgreSQL a
    single create and a PATCH through `_write_one`, its one-statement twin), so an item's
    movements sum to its quantity. Several rows may come back in any order: they then share
    one change (a bulk create's), and their movements are written by one INSERT … SELECT
    and not handed back.
    """
    if len(set(changes)) > 1:
        raise ValueError("rows written together must share one StockChange")
    # On the session's connection: the statements are Core, the ORM session's layer only
    # costs time on every write.
    conn = await db.connection()
    rows = list((await conn.execute(statement, _one_or_many(params))).all())
    if not rows:
        return rows, []
    now = utcnow()
    change = changes[0]
    if len(rows) > 1 and change.before is not None and change.reason is not MovementReason.counted:
        values: dict[str, Any] = {"before": change.before, "reason": change.reason}
        values.update(note=change.note)
        values.update(user_id=actor.id, created_at=now, ids=[row.id for row in rows])
        await conn.execute(_INSERT_MOVEMENTS_OF, values)
        return rows, []
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
    return rows, list((await conn.execute(_INSERT_MOVEMENTS, _one_or_many(movements))).all())


# PostgreSQL: one item's INSERT or UPDATE … RETURNING, its movement (when its quantity moved)
# and its audit event in one statement, the two records data-modifying CTEs that read the
# written row: a create or a PATCH is as many round trips as before the ledger existed
# (bench/RESULTS.md). SQLite runs the statements one after the other on the event loop, in
# place (models/sqlite_driver.py). A nested INSERT or UPDATE takes neither its columns from
# the parameters nor the columns' defaults: each is named.
_now = bindparam("now", type_=_items.created_at.type)
_event_columns = [c.name for c in audit.EVENTS.c if c.name != "id"]
_event_values = [name for name in _event_columns if name not in ("at", "target_id")]


def _with_records(written: CTE) -> Select[Any]:
    """The written row, its movement and its audit event recorded from it."""
    moved = _movements.insert().from_select(
        ["item_id", "delta", "quantity_after", "reason", "note", "user_id", "created_at"],
        select(
            written.c.id,
            written.c.quantity - bindparam("m_before", type_=Integer),
            written.c.quantity,
            bindparam("m_reason", type_=_movements.c.reason.type),
            bindparam("m_note", type_=_movements.c.note.type),
            bindparam("m_user_id", type_=Integer),
            _now,
        ).where(written.c.quantity != bindparam("m_before", type_=Integer)),
    )
    recorded = audit.EVENTS.insert().from_select(
        _event_columns,
        select(
            *(
                written.c.id
                if name == "target_id"
                else _now
                if name == "at"
                else bindparam(f"e_{name}", type_=audit.EVENTS.c[name].type)
                for name in _event_columns
            )
        ),
    )
    return select(written).add_cte(moved.cte("moved"), recorded.cte("recorded"))


def _set(names: Sequence[str]) -> dict[str, Any]:
    return {name: bindparam(name, type_=_items[name].type) for name in names}


_CREATE_ONE = _with_records(
    _table.insert()
    .values(_set(_NEW_COLUMNS))
    .values(created_at=_now, updated_at=_now, version=1)
    .returning(*_items)
    .cte("written")
)


@lru_cache(maxsize=64)
def _update_one(fields: tuple[str, ...]) -> Select[Any]:
    """For each set of fields a PATCH changes."""
    return _with_records(
        _table.update()
        .where(_items.id == bindparam("item_id"))
        .values(_set(fields))
        .values(
            version=_items.version + 1, updated_at=_now, updated_by_id=bindparam("updated_by_id")
        )
        .returning(*_items)
        .cte("written")
    )


async def _write_one(
    db: AsyncSession,
    statement: Select[Any],
    params: dict[str, Any],
    change: StockChange,
    event: dict[str, Any],
) -> Row[Any]:
    """`_write` and `audit.record_all` of one item in one statement (PostgreSQL): `change`
    from a known quantity (`before`)."""
    params = {**params, **{f"e_{name}": event[name] for name in _event_values}}
    params.update(m_before=change.before, m_reason=change.reason, m_note=change.note)
    params.update(m_user_id=event["actor_id"], now=event["at"])
    conn = await db.connection()
    row: Row[Any] = (await conn.execute(statement, params)).one()
    return row


def _one_or_many(params: Sequence[dict[str, Any]]) -> dict[str, Any] | list[dict[str, Any]]:
    """One row's values as one statement's: a list, even of one, is SQLAlchemy's executemany
    (its "insertmanyvalues" renders a multi-row statement for each batch)."""
    return params[0] if len(params) == 1 else list(params)


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
    if len(batch) == 1 and dialect_name(db) == "postgresql":
        data = batch[0]
        values = audit.created(_fields(data))
        event = audit.event("item.create", actor, ("item", None), values, origin)
        with _conflicts():
            return [await _write_one(db, _CREATE_ONE, _new_values(data, actor), received, event)]
    with _conflicts():
        created, _ = await _write(
            db,
            _INSERT,
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
    if dialect_name(db) == "postgresql":
        event = audit.event("item.update", actor, ("item", item_id), changes, origin)
        statement = _update_one(tuple(sorted(changes)))
        with _conflicts():
            return await _write_one(db, statement, params, correction, event)
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
