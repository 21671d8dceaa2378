"""auth_sessions indexed by user and expiry (each login deletes the user's expired ones)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("auth_sessions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_auth_sessions_user_id_expires_at", ["user_id", "expires_at"], unique=False
        )
        batch_op.drop_index(batch_op.f("ix_auth_sessions_user_id"))


def downgrade() -> None:
    with op.batch_alter_table("auth_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auth_sessions_user_id"), ["user_id"], unique=False)
        batch_op.drop_index("ix_auth_sessions_user_id_expires_at")
