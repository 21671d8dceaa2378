"""item_counts: how many items there are, kept by triggers (an unfiltered list's total)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# PostgreSQL: each connection adds to its own slot, so concurrent creates do not wait for
# one row's lock. The trigger runs for every row, whoever writes it.
POSTGRES = [
    """
    CREATE FUNCTION item_counts_follow() RETURNS trigger LANGUAGE plpgsql AS $$
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
POSTGRES_DOWN = [
    "DROP TRIGGER item_counts_follow ON items",
    "DROP FUNCTION item_counts_follow()",
]
# SQLite has one writer at a time: one slot.
SQLITE = [
    """
    CREATE TRIGGER item_counts_insert AFTER INSERT ON items BEGIN
        INSERT INTO item_counts (slot, total) VALUES (0, 1)
        ON CONFLICT (slot) DO UPDATE SET total = total + 1;
    END
    """,
    """
    CREATE TRIGGER item_counts_delete AFTER DELETE ON items BEGIN
        INSERT INTO item_counts (slot, total) VALUES (0, -1)
        ON CONFLICT (slot) DO UPDATE SET total = total - 1;
    END
    """,
]
SQLITE_DOWN = ["DROP TRIGGER item_counts_insert", "DROP TRIGGER item_counts_delete"]


def upgrade() -> None:
    op.create_table(
        "item_counts",
        sa.Column("slot", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("slot", name=op.f("pk_item_counts")),
    )
    op.execute("INSERT INTO item_counts (slot, total) SELECT 0, count(*) FROM items")
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRES if postgres else SQLITE:
        op.execute(statement)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRES_DOWN if postgres else SQLITE_DOWN:
        op.execute(statement)
    op.drop_table("item_counts")
