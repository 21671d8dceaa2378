"""Which named constraint a failed statement broke, on either database.

asyncpg names the constraint; SQLite names a broken CHECK by its name but a UNIQUE one by its
columns ("UNIQUE constraint failed: items.sku"), which are looked up in the metadata.
"""

import re

from sqlalchemy import UniqueConstraint
from sqlalchemy.exc import IntegrityError

from models.tables import metadata

_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)")
_SQLITE_CHECK = re.compile(r"CHECK constraint failed: (\w+)")


def _unique_by_columns() -> dict[str, str]:
    found: dict[str, str] = {}
    for table in metadata.tables.values():
        for constraint in table.constraints:
            if isinstance(constraint, UniqueConstraint) and isinstance(constraint.name, str):
                columns = ", ".join(f"{table.name}.{c.name}" for c in constraint.columns)
                found[columns] = constraint.name
        for index in table.indexes:
            if index.unique and isinstance(index.name, str):
                columns = ", ".join(f"{table.name}.{c.name}" for c in index.columns)
                found[columns] = index.name
    return found


_UNIQUE_BY_COLUMNS = _unique_by_columns()


def constraint_name(exc: IntegrityError) -> str | None:
    """The name of the constraint `exc` reports, or None if it names none."""
    driver_error = exc.orig
    name = getattr(getattr(driver_error, "__cause__", None), "constraint_name", None)
    if isinstance(name, str):  # asyncpg
        return name
    message = str(driver_error)
    if match := _SQLITE_UNIQUE.match(message):
        return _UNIQUE_BY_COLUMNS.get(match.group(1))
    if match := _SQLITE_CHECK.match(message):
        return match.group(1)
    return None
