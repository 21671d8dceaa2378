from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class AuditEvent(Base):
    """One write or authentication event, written in the same transaction as what it records
    (auth/audit.py). Never changed or deleted by the service.

    Actor and target are plain values, not foreign keys: the trail outlives the users and
    items it names, and the actor's username is kept as it was.
    """

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_target_type_target_id", "target_type", "target_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    action: Mapped[str] = mapped_column(String(40), index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer, index=True)
    actor_username: Mapped[str | None] = mapped_column(String(50))
    target_type: Mapped[str | None] = mapped_column(String(20))
    target_id: Mapped[int | None] = mapped_column(Integer)
    address: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(128))
    # Each changed field: {"old": …, "new": …}.
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
