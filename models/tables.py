"""Every table, imported once so `Base.metadata` is complete (Alembic and tests use this)."""

from models.audit_event import AuditEvent
from models.base import Base
from models.item import Item, ItemCount
from models.login_failure import LoginFailure
from models.stock_movement import StockMovement
from models.user import AuthSession, User

metadata = Base.metadata

__all__ = [
    "AuditEvent",
    "AuthSession",
    "Base",
    "Item",
    "ItemCount",
    "LoginFailure",
    "StockMovement",
    "User",
    "metadata",
]
