from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, same_as_created, utcnow

LOW_STOCK = text("quantity <= reorder_level")


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (
        CheckConstraint("quantity >= 0", name="quantity_non_negative"),
        CheckConstraint("quantity < 2147483648", name="quantity_int32"),
        CheckConstraint("reorder_level >= 0", name="reorder_level_non_negative"),
        # One per sort key of a list, with id as its tie-breaker (read backwards for `-key`).
        Index("ix_items_name_id", "name", "id"),
        Index("ix_items_quantity_id", "quantity", "id"),
        Index("ix_items_created_at_id", "created_at", "id"),
        Index("ix_items_updated_at_id", "updated_at", "id"),
        # The items low on stock (`?low_stock=true`), few of all: a partial index holds only them.
        Index("ix_items_low_stock", "id", sqlite_where=LOW_STOCK, postgresql_where=LOW_STOCK),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(Text)
    sku: Mapped[str | None] = mapped_column(String(64), unique=True)
    image_src: Mapped[str | None] = mapped_column(String(255))
    # At or below it the item is low on stock; null: no alert.
    reorder_level: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=same_as_created, onupdate=utcnow
    )
    # Who touched it; kept (as null) when that user is deleted.
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    updated_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    # Bumped by SQLAlchemy on every UPDATE, which also checks it (optimistic locking).
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


# Substring search on name and sku (migration 0010), which the metadata cannot describe: on SQLite
# an FTS5 table with the trigram tokenizer (plus the shadow tables FTS5 keeps beside it), kept in
# step with `items` by triggers; on PostgreSQL pg_trgm GIN indexes on lower(name), lower(sku).
SEARCH_TABLE = "items_search"
TRIGRAM_INDEXES = frozenset({"ix_items_name_trgm", "ix_items_sku_trgm"})


class ItemCount(Base):
    """How many items there are, kept by triggers on `items` (migration 0004), so that an
    unfiltered list's `total` need not count every row. On PostgreSQL each connection adds to
    its own slot (its backend's pid modulo 64), so concurrent creates do not queue for one
    row's lock, once per statement (migration 0010: a bulk insert updates the slot once, not
    once a row); the count is the sum of the slots. SQLite, with one writer, uses slot 0.

    A migration that rebuilds `items` on SQLite (batch mode) drops its triggers (these and
    the search table's, migration 0010) and must create them again; tests compare this
    count with the rows. TRUNCATE fires no row triggers: empty both tables together (as the
    PostgreSQL tests do).
    """

    __tablename__ = "item_counts"

    slot: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    total: Mapped[int] = mapped_column(BigInteger)
