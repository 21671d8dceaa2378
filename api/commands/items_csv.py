"""`inventory export FILE` and `inventory import FILE`: items as CSV, matched by sku;
`inventory export-movements FILE`: the stock movements as CSV, for accounting.

The import is all or nothing: every row is checked first (with the API's ItemCreate), then all
are written in one transaction through the same service functions the API uses.
"""

import argparse
import csv
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncResult, AsyncSession

from api.commands.common import (
    CommandError,
    SubParsers,
    add_command,
    plural,
    run_in_session,
    user_named,
    validation_message,
)
from api.commands.progress import Progress
from api.errors import Conflict
from api.schemas.items import ItemCreate, ItemUpdate
from api.services import items
from auth.audit import COMMAND_LINE
from auth.permissions import Capability, allows
from auth.settings import get_auth_settings
from models.engine import begin_write
from models.item import Item
from models.stock_movement import StockMovement
from models.user import User

COLUMNS = ("sku", "name", "quantity", "description")
REQUIRED = frozenset({"name", "quantity"})
_LOOKUP_CHUNK = 500  # skus per SELECT … IN (…)
_CREATE_BATCH = 5000  # new items sent to the database at once (as multi-row INSERTs)
_WHOLE_NUMBER = re.compile(r"-?[0-9]+")

# A spreadsheet runs a cell that starts with = + - @ (or tab, CR) as a formula: the export
# writes such text cells with a leading ' (OWASP's advice for CSV injection). Text already
# starting with quotes before one of them gets one more, so the import undoes it exactly.
_FORMULA = re.compile(r"'*[=+\-@\t\r]")
TEXT_COLUMNS = frozenset({"sku", "name", "description"})

FORMAT = """\
File format: UTF-8 CSV with a header row naming the columns
  sku, name, quantity, description   (name and quantity required; any order)
Empty cells mean "none". A text cell written '= (or '+ '- '@) is read without its ',
as `inventory export` writes text a spreadsheet would run as a formula."""


def register(sub: SubParsers) -> None:
    export = add_command(
        sub,
        "export",
        "write every item to a CSV file",
        f"{FORMAT}\n\nExample: inventory export items.csv    (or - for standard output)",
        run=export_items,
    )
    export.add_argument("file", help="the CSV file to write (replaced if it exists), or -")

    movements = add_command(
        sub,
        "export-movements",
        "write every stock movement to a CSV file, oldest first",
        "Columns: "
        + ", ".join(MOVEMENT_COLUMNS)
        + "\n(user: who made it, empty once that user is deleted). Times are UTC, ISO 8601.\n\n"
        "Example: inventory export-movements movements.csv --since 2026-01-01",
        run=export_movements,
    )
    movements.add_argument("file", help="the CSV file to write (replaced if it exists), or -")
    movements.add_argument("--since", type=_when, help="only movements at or after (ISO 8601)")
    movements.add_argument("--until", type=_when, help="only movements before (ISO 8601)")

    load = add_command(
        sub,
        "import",
        "create or update items from a CSV file, all or nothing",
        f"{FORMAT}\n\n"
        "A row whose sku exists updates that item (name, quantity, description); any other\n"
        "row creates one. Each change of a quantity is recorded as a stock movement whose\n"
        "note names the file. Every row is checked first: a bad one stops the import with its\n"
        "line number and nothing is written. Otherwise all rows are written in one\n"
        "transaction and a summary is printed.\n\n"
        "Example: inventory import items.csv --as alice",
        run=import_items,
    )
    load.add_argument("file", help="the CSV file to read, or -")
    load.add_argument(
        "--as",
        dest="actor",
        metavar="USERNAME",
        help="the editor or admin the changes are recorded for (default: FIRST_ADMIN_USERNAME)",
    )
    load.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: for 1000+ rows when standard error is a terminal)",
    )


# --- export ---------------------------------------------------------------------------------


def _defused(cell: str) -> str:
    return "'" + cell if _FORMULA.match(cell) else cell


def _restored(cell: str) -> str:
    return cell[1:] if cell.startswith("'") and _FORMULA.match(cell, 1) else cell


def export_items(args: argparse.Namespace) -> None:
    rows = select(*(Item.__table__.c[c] for c in COLUMNS)).order_by(Item.id)
    _export(args.file, "item", COLUMNS, rows)


MOVEMENT_COLUMNS = (
    "id",
    "created_at",
    "item_id",
    "sku",
    "name",
    "delta",
    "quantity_after",
    "reason",
    "note",
    "user",
)


def _when(value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {value!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def export_movements(args: argparse.Namespace) -> None:
    m = StockMovement.__table__.c
    rows = (
        select(
            m.id,
            m.created_at,
            m.item_id,
            Item.sku,
            Item.name,
            m.delta,
            m.quantity_after,
            m.reason,
            m.note,
            User.username,
        )
        .join(Item, Item.id == m.item_id)
        .outerjoin(User, User.id == m.user_id)
        .order_by(m.id)
    )
    if args.since:
        rows = rows.where(m.created_at >= args.since)
    if args.until:
        rows = rows.where(m.created_at < args.until)
    _export(args.file, "movement", MOVEMENT_COLUMNS, rows)


def _export(file: str, what: str, header: Sequence[str], rows: Select[Any]) -> None:
    to_stdout = file == "-"

    async def work(db: AsyncSession) -> int:
        found = await db.stream(rows.execution_options(yield_per=2000))
        if to_stdout:
            return await _write(sys.stdout, header, found)
        target = Path(file)
        # Written beside the target and renamed over it: a failed export leaves no half file.
        fd, tmp = tempfile.mkstemp(dir=target.parent or ".", prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "w", newline="", encoding="utf-8") as out:
                count = await _write(out, header, found)
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise
        return count

    try:
        count = run_in_session(work)
    except BrokenPipeError:
        raise  # the reader stopped reading (`| head`): api/cli.py ends quietly
    except OSError as exc:
        raise CommandError(f"cannot write {file}: {exc.strerror}") from None
    print(f"exported {plural(count, what)} to {file}", file=sys.stderr if to_stdout else sys.stdout)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return _defused(value)
    return str(value)


async def _write(out: TextIO, header: Sequence[str], rows: AsyncResult[Any]) -> int:
    writer = csv.writer(out)
    writer.writerow(header)
    count = 0
    async for row in rows:
        writer.writerow([_cell(v) for v in row])
        count += 1
    return count


# --- import ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    item: ItemCreate


def _records(lines: TextIO) -> Iterator[tuple[int, list[str]]]:
    """(line where the record starts, its cells); blank lines are skipped."""
    reader = csv.reader(lines, strict=True)
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise CommandError(f"line {start}: not valid CSV ({exc})") from None
        if cells:
            yield start, cells


def _header(cells: list[str]) -> list[str]:
    header = [c.strip().lower() for c in cells]
    unknown = sorted(set(header) - set(COLUMNS))
    if unknown:
        raise CommandError(
            f"line 1: unknown column(s) {', '.join(unknown)}; expected {', '.join(COLUMNS)}"
        )
    if len(set(header)) != len(header):
        raise CommandError("line 1: a column is named twice")
    missing = sorted(REQUIRED - set(header))
    if missing:
        raise CommandError(f"line 1: missing column(s) {', '.join(missing)}")
    return header


def _row(line: int, header: list[str], cells: list[str]) -> Row:
    if len(cells) != len(header):
        raise CommandError(f"line {line}: {len(cells)} cells, the header has {len(header)}")
    values: dict[str, object] = {
        k: _restored(v) if k in TEXT_COLUMNS else v
        for k, v in zip(header, cells, strict=True)
        if v != ""
    }
    quantity = str(values.get("quantity", "")).strip()
    if quantity and _WHOLE_NUMBER.fullmatch(quantity):
        values["quantity"] = int(quantity)
    elif "quantity" in values:
        raise CommandError(f"line {line}: quantity: must be a whole number, not {quantity!r}")
    try:
        return Row(line, ItemCreate.model_validate(values))
    except ValidationError as exc:
        raise CommandError(f"line {line}: {validation_message(exc)}") from None


def parse(lines: TextIO) -> list[Row]:
    """Every row checked, or CommandError naming the first bad line."""
    records = _records(lines)
    first = next(records, None)
    if first is None:
        raise CommandError("the file is empty (a header row is needed)")
    header = _header(first[1])
    rows: list[Row] = []
    seen: dict[str, int] = {}
    for line, cells in records:
        row = _row(line, header, cells)
        if row.item.sku is not None:
            if row.item.sku in seen:
                first_line = seen[row.item.sku]
                raise CommandError(
                    f"line {line}: sku {row.item.sku!r} already appears on line {first_line}"
                )
            seen[row.item.sku] = line
        rows.append(row)
    return rows


def _read(file: str) -> list[Row]:
    if file == "-":
        return parse(sys.stdin)
    try:
        with open(file, newline="", encoding="utf-8-sig") as lines:  # -sig: a BOM from Excel
            return parse(lines)
    except OSError as exc:
        raise CommandError(f"cannot read {file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CommandError(f"{file} is not UTF-8 text") from None


async def _editor(db: AsyncSession, username: str) -> User:
    user = await user_named(db, username)
    if not user.is_active or not allows(user.role, Capability.edit_items):
        raise CommandError(
            f"'{user.username}' may not edit items (needs an active editor or admin)"
        )
    return user


async def _existing(db: AsyncSession, skus: Sequence[str]) -> dict[str, Item]:
    found: dict[str, Item] = {}
    for i in range(0, len(skus), _LOOKUP_CHUNK):
        chunk = skus[i : i + _LOOKUP_CHUNK]
        for item in await db.scalars(select(Item).where(Item.sku.in_(chunk))):
            found[item.sku or ""] = item
    return found


@dataclass
class Summary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


async def apply(
    db: AsyncSession, rows: Sequence[Row], actor: User, progress: Progress, note: str
) -> Summary:
    """Create or update every row through the item services (each change of stock recorded
    with `note`); the caller's one transaction commits them together."""
    existing = await _existing(db, [r.item.sku for r in rows if r.item.sku is not None])
    summary = Summary()
    batch: list[ItemCreate] = []
    for done, row in enumerate(rows, start=1):
        data = row.item
        item = existing.get(data.sku) if data.sku is not None else None
        if item is None:
            batch.append(data)  # created in batches: one INSERT each is slow
            if len(batch) == _CREATE_BATCH:
                summary.created += await _create(db, batch, actor, note)
        else:
            changes = ItemUpdate(
                name=data.name, quantity=data.quantity, description=data.description
            )
            updated = await items.update(
                db, item.id, changes, actor, COMMAND_LINE, if_match=None, note=note
            )
            if updated.version == item.version:
                summary.unchanged += 1
            else:
                summary.updated += 1
        progress.update(done)
    summary.created += await _create(db, batch, actor, note)
    return summary


async def _create(db: AsyncSession, batch: list[ItemCreate], actor: User, note: str) -> int:
    """Create the batch's items and empty it."""
    if not batch:
        return 0
    try:
        await items.create_many(db, batch, actor, COMMAND_LINE, note=note)
    except Conflict as exc:
        if exc.detail != items.DUPLICATE_SKU:
            raise
        # Only with an item created since the rows were checked.
        raise CommandError(
            "an item with one of these skus was just created; run it again"
        ) from None
    created = len(batch)
    batch.clear()
    return created


def _file_name(file: str) -> str:
    return "standard input" if file == "-" else Path(file).name


def import_items(args: argparse.Namespace) -> None:
    rows = _read(args.file)
    actor_name = args.actor or get_auth_settings().FIRST_ADMIN_USERNAME

    async def work(db: AsyncSession) -> Summary:
        await begin_write(db)  # SQLite: take the write lock now, not halfway through
        actor = await _editor(db, actor_name)
        enabled = Progress.wanted(len(rows), args.progress)
        with Progress("importing", len(rows), enabled) as progress:
            return await apply(db, rows, actor, progress, f"CSV import of {_file_name(args.file)}")

    summary = run_in_session(work)
    print(
        f"imported {plural(len(rows), 'row')} from {args.file}: {summary.created} created, "
        f"{summary.updated} updated, {summary.unchanged} unchanged"
    )
