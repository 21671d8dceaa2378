"""Migrations that move data: what a database upgraded from an earlier revision holds."""

import sqlite3
from pathlib import Path

import pytest
from alembic import command

from models import migrations

ITEM = "INSERT INTO items (name, quantity, created_at, updated_at, version) VALUES (?, 1, ?, ?, 1)"
NOW = "2026-11-25 12:00:00.000000"


def _counted(db: sqlite3.Connection) -> tuple[int, int]:
    kept = db.execute("SELECT sum(total) FROM item_counts").fetchone()[0]
    return kept, db.execute("SELECT count(*) FROM items").fetchone()[0]


def test_item_counts_start_from_the_items_there_are(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/old.db"
    migrations.upgrade(url, "0003")
    with sqlite3.connect(tmp_path / "old.db") as db:
        db.executemany(ITEM, [(f"Old {n}", NOW, NOW) for n in range(3)])

    migrations.upgrade(url)

    with sqlite3.connect(tmp_path / "old.db") as db:
        assert _counted(db) == (3, 3)
        db.execute(ITEM, ("New", NOW, NOW))
        db.execute("DELETE FROM items WHERE name IN ('Old 0', 'Old 1')")
        assert _counted(db) == (2, 2)

    command.downgrade(migrations.alembic_config(url), "0003")
    with sqlite3.connect(tmp_path / "old.db") as db:
        db.execute(ITEM, ("After", NOW, NOW))  # no trigger left behind to fail
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
        assert "item_counts" not in tables


def test_stock_movements_start_from_the_quantities_there_are(tmp_path: Path) -> None:
    """0005: each item's quantity becomes its opening movement; `items` keeps its triggers
    (the reorder level is added in place, not by rebuilding the table)."""
    url = f"sqlite+aiosqlite:///{tmp_path}/old.db"
    migrations.upgrade(url, "0004")
    with sqlite3.connect(tmp_path / "old.db") as db:
        db.execute(ITEM, ("Some", NOW, NOW))
        db.execute(ITEM.replace("1, ?", "0, ?"), ("None", NOW, NOW))

    migrations.upgrade(url)

    with sqlite3.connect(tmp_path / "old.db") as db:
        moves = db.execute(
            "SELECT i.name, m.delta, m.quantity_after, m.reason FROM stock_movements m "
            "JOIN items i ON i.id = m.item_id"
        ).fetchall()
        assert moves == [("Some", 1, 1, "correction")]
        db.execute(ITEM, ("New", NOW, NOW))
        assert _counted(db) == (3, 3)  # the item_counts triggers still fire
        with pytest.raises(sqlite3.IntegrityError, match="reorder_level"):
            db.execute("UPDATE items SET reorder_level = -1")

    command.downgrade(migrations.alembic_config(url), "0004")
    with sqlite3.connect(tmp_path / "old.db") as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
        assert not {"stock_movements", "audit_events"} & tables
        columns = {c[1] for c in db.execute("PRAGMA table_info(items)")}
        assert "reorder_level" not in columns
        db.execute(ITEM, ("After", NOW, NOW))
        assert _counted(db) == (4, 4)


def test_the_search_table_starts_from_the_items_there_are(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/old.db"
    migrations.upgrade(url, "0004")
    with sqlite3.connect(tmp_path / "old.db") as db:
        db.executemany(ITEM, [("Old Ölfilter", NOW, NOW), ("Old bolt", NOW, NOW)])

    migrations.upgrade(url)

    found = "SELECT rowid FROM items_search WHERE items_search MATCH ? ORDER BY rowid"
    with sqlite3.connect(tmp_path / "old.db") as db:
        assert db.execute(found, ('"ölf"',)).fetchall() == [(1,)]
        db.execute(ITEM, ("New bolt", NOW, NOW))
        db.execute("UPDATE items SET name = 'Old nut' WHERE id = 2")
        assert db.execute(found, ('"bolt"',)).fetchall() == [(3,)]
        db.execute("DELETE FROM items WHERE id = 1")
        assert db.execute(found, ('"ölf"',)).fetchall() == []
        # 0010 rebuilt nothing: 0004's count triggers and 0005's column and check are there.
        assert _counted(db) == (2, 2)
        with pytest.raises(sqlite3.IntegrityError, match="reorder_level"):
            db.execute("UPDATE items SET reorder_level = -1")

    command.downgrade(migrations.alembic_config(url), "0004")
    with sqlite3.connect(tmp_path / "old.db") as db:
        db.execute(ITEM, ("After", NOW, NOW))  # no trigger left behind to fail
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
        assert not {t for t in tables if t.startswith("items_search")}
        assert "ix_items_name" in tables
