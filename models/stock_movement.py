from datetime import datetime

from sqlalchemy import CheckConstraint, Enum, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime
from models.enums import MovementReason


class StockMovement(Base):
    """One change of an item's quantity, written in the same transaction as the change (only
    by api/services/items.py): an item's deltas sum to its quantity."""

    __tablename__ = "stock_movements"
    __table_args__ = (
        # A count that confirms the stock is the only movement that moves nothing.
        CheckConstraint("delta <> 0 OR reason = 'counted'", name="delta_non_zero"),
        CheckConstraint("quantity_after >= 0", name="quantity_after_non_negative"),
        # An item's movements newest first (GET /items/{id}/movements).
        Index("ix_stock_movements_item_id_id", "item_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # A deleted item's movements go with it (its audit events stay).
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    delta: Mapped[int] = mapped_column(Integer)
    quantity_after: Mapped[int] = mapped_column(Integer)
    reason: Mapped[MovementReason] = mapped_column(
        Enum(
            MovementReason,
            name="movement_reason",
            native_enum=False,
            create_constraint=True,
            length=20,
        )
    )
    note: Mapped[str | None] = mapped_column(String(500))
    # Kept (as null) when that user is deleted.
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
