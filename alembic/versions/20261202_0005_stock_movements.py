"""stock movements, reorder levels and the audit trail

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What items hold already is recorded as one movement each, so that an item's movements sum
# to its quantity from the start.
OPENING_BALANCES = sa.text(
    """
    INSERT INTO stock_movements (item_id, delta, quantity_after, reason, note, user_id, created_at)
    SELECT id, quantity, quantity, 'correction', 'Opening balance (migration 0005)', NULL, :now
    FROM items WHERE quantity > 0 ORDER BY id
    """
).bindparams(sa.bindparam("now", type_=sa.DateTime(timezone=True)))


def upgrade() -> None:
    # SQLite adds the column and its check in place: no rebuild of `items`, which would
    # drop the item_counts triggers (migration 0004).
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE items ADD COLUMN reorder_level INTEGER "
            "CONSTRAINT ck_items_reorder_level_non_negative CHECK (reorder_level >= 0)"
        )
    else:
        op.add_column("items", sa.Column("reorder_level", sa.Integer(), nullable=True))
        op.create_check_constraint(
            op.f("ck_items_reorder_level_non_negative"), "items", "reorder_level >= 0"
        )
    op.create_table(
        "stock_movements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column("quantity_after", sa.Integer(), nullable=False),
        sa.Column(
            "reason",
            sa.Enum(
                "received",
                "sold",
                "used",
                "returned",
                "damaged",
                "lost",
                "counted",
                "correction",
                name="movement_reason",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "delta <> 0 OR reason = 'counted'", name=op.f("ck_stock_movements_delta_non_zero")
        ),
        sa.CheckConstraint(
            "quantity_after >= 0", name=op.f("ck_stock_movements_quantity_after_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["items.id"],
            name=op.f("fk_stock_movements_item_id_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_stock_movements_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_movements")),
    )
    op.create_index(
        op.f("ix_stock_movements_created_at"), "stock_movements", ["created_at"], unique=False
    )
    op.create_index(
        "ix_stock_movements_item_id_id", "stock_movements", ["item_id", "id"], unique=False
    )
    op.create_index(
        op.f("ix_stock_movements_user_id"), "stock_movements", ["user_id"], unique=False
    )
    op.get_bind().execute(OPENING_BALANCES, {"now": datetime.now(UTC)})
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_username", sa.String(length=50), nullable=True),
        sa.Column("target_type", sa.String(length=20), nullable=True),
        sa.Column("target_id", sa.Integer(), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(op.f("ix_audit_events_action"), "audit_events", ["action"], unique=False)
    op.create_index(op.f("ix_audit_events_actor_id"), "audit_events", ["actor_id"], unique=False)
    op.create_index(op.f("ix_audit_events_at"), "audit_events", ["at"], unique=False)
    op.create_index(
        "ix_audit_events_target_type_target_id",
        "audit_events",
        ["target_type", "target_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("audit_events")
    op.drop_table("stock_movements")
    # Both drop the column's own check with it (SQLite: in place, no rebuild).
    op.execute("ALTER TABLE items DROP COLUMN reorder_level")
