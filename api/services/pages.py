"""A page of a table's rows, newest first, with how many match in all; and the filters of
such a list."""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession


def equal(pairs: Iterable[tuple[ColumnElement[Any], object]]) -> list[ColumnElement[bool]]:
    """Each column equal to its value, where a value is given (not None)."""
    return [column == value for column, value in pairs if value is not None]


def within(
    column: ColumnElement[datetime], since: datetime | None, until: datetime | None
) -> list[ColumnElement[bool]]:
    """`column` at or after `since` and at or before `until`, where given."""
    return [
        *([column >= since] if since is not None else []),
        *([column <= until] if until is not None else []),
    ]


async def newest_first(
    db: AsyncSession,
    page: Select[Any],
    table: Table,
    where: Sequence[ColumnElement[bool]],
    skip: int,
    limit: int,
) -> tuple[list[Row[Any]], int]:
    """The rows of `page` (`table`'s, joins included) that match `where`, highest id first,
    and the count of all matches: one statement, one snapshot (the count rides along as a
    column), and a second only for a page past the end."""
    count = select(func.count()).select_from(table).where(*where)
    rows = list(
        (
            await db.execute(
                page.add_columns(count.scalar_subquery().label("total"))
                .where(*where)
                .order_by(table.c.id.desc())
                .offset(skip)
                .limit(limit)
            )
        ).all()
    )
    if rows:
        return rows, rows[0].total
    return rows, (await db.scalar(count) or 0) if skip else 0
