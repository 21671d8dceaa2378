from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class LoginFailure(Base):
    """One failed login, counted by the login throttle under one key.

    `key` is an HMAC of the rule and the username and/or client address, so neither a typed
    username (often a password typed in the wrong field) nor an address is stored.
    """

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    # Indexed on its own too: old rows are pruned by time.
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
