"""search indexes: substring search on name and sku, and an index per sort key

Revision ID: 0010
Revises: 0005
Create Date: 2026-12-02

SQLite: an FTS5 table with the trigram tokenizer (case folded by the tokenizer), external
content on `items`, kept in step by triggers. PostgreSQL: pg_trgm GIN indexes on lower(name)
and lower(sku) (the extension is created here; pg_trgm is a trusted extension, so the
database's owner may create it). Both: a B-tree per sort key with id as its tie-breaker, and
a partial index of the items low on stock (`?low_stock=true`). No table is rebuilt: the
item_counts triggers (0004) and reorder_level (0005) stay as they are.

PostgreSQL's item_counts triggers (0004) become statement triggers: a row trigger updated its
slot once per row, and in one transaction each update of that row adds a version the next
must walk past (an import of 35,000 rows took 66 s, most of it there).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SORT_KEYS = ("name", "quantity", "created_at", "updated_at")
LOW_STOCK = sa.text("quantity <= reorder_level")

POSTGRES = [
    "DROP TRIGGER item_counts_follow ON items",
    """
    CREATE OR REPLACE FUNCTION item_counts_follow() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO item_counts (slot, total)
            SELECT pg_backend_pid() % 64, count(*) FROM new_items HAVING count(*) > 0
            ON CONFLICT (slot) DO UPDATE SET total = item_counts.total + excluded.total;
        ELSE
            INSERT INTO item_counts (slot, total)
            SELECT pg_backend_pid() % 64, -count(*) FROM old_items HAVING count(*) > 0
            ON CONFLICT (slot) DO UPDATE SET total = item_counts.total + excluded.total;
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER item_counts_insert AFTER INSERT ON items
    REFERENCING NEW TABLE AS new_items FOR EACH STATEMENT EXECUTE FUNCTION item_counts_follow()
    """,
    """
    CREATE TRIGGER item_counts_delete AFTER DELETE ON items
    REFERENCING OLD TABLE AS old_items FOR EACH STATEMENT EXECUTE FUNCTION item_counts_follow()
    """,
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_items_name_trgm ON items USING gin (lower(name) gin_trgm_ops)",
    "CREATE INDEX ix_items_sku_trgm ON items USING gin (lower(sku) gin_trgm_ops)",
]
# The extension stays: something else may use it.
POSTGRES_DOWN = [
    "DROP INDEX ix_items_name_trgm",
    "DROP INDEX ix_items_sku_trgm",
    "DROP TRIGGER item_counts_insert ON items",
    "DROP TRIGGER item_counts_delete ON items",
    """
    CREATE OR REPLACE FUNCTION item_counts_follow() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO item_counts (slot, total)
        VALUES (pg_backend_pid() % 64, CASE WHEN TG_OP = 'INSERT' THEN 1 ELSE -1 END)
        ON CONFLICT (slot) DO UPDATE SET total = item_counts.total + excluded.total;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER item_counts_follow AFTER INSERT OR DELETE ON items
    FOR EACH ROW EXECUTE FUNCTION item_counts_follow()
    """,
]

# FTS5 'delete' must be given the values it indexed: the triggers pass the old row's.
SQLITE = [
    """
    CREATE VIRTUAL TABLE items_search USING fts5(
        name, sku, content='items', content_rowid='id', tokenize='trigram case_sensitive 0'
    )
    """,
    "INSERT INTO items_search (items_search) VALUES ('rebuild')",
    """
    CREATE TRIGGER items_search_insert AFTER INSERT ON items BEGIN
        INSERT INTO items_search (rowid, name, sku) VALUES (new.id, new.name, new.sku);
    END
    """,
    """
    CREATE TRIGGER items_search_delete AFTER DELETE ON items BEGIN
        INSERT INTO items_search (items_search, rowid, name, sku)
        VALUES ('delete', old.id, old.name, old.sku);
    END
    """,
    """
    CREATE TRIGGER items_search_update AFTER UPDATE OF id, name, sku ON items BEGIN
        INSERT INTO items_search (items_search, rowid, name, sku)
        VALUES ('delete', old.id, old.name, old.sku);
        INSERT INTO items_search (rowid, name, sku) VALUES (new.id, new.name, new.sku);
    END
    """,
]
SQLITE_DOWN = [
    "DROP TRIGGER items_search_insert",
    "DROP TRIGGER items_search_delete",
    "DROP TRIGGER items_search_update",
    "DROP TABLE items_search",
]


def upgrade() -> None:
    op.drop_index("ix_items_name", table_name="items")
    for key in SORT_KEYS:
        op.create_index(f"ix_items_{key}_id", "items", [key, "id"])
    op.create_index(
        "ix_items_low_stock", "items", ["id"], sqlite_where=LOW_STOCK, postgresql_where=LOW_STOCK
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRES if postgres else SQLITE:
        op.execute(statement)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRES_DOWN if postgres else SQLITE_DOWN:
        op.execute(statement)
    op.drop_index("ix_items_low_stock", table_name="items")
    for key in SORT_KEYS:
        op.drop_index(f"ix_items_{key}_id", table_name="items")
    op.create_index("ix_items_name", "items", ["name"])
