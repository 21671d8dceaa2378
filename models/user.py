from datetime import datetime

from sqlalchemy import Boolean, Enum, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, same_as_created, utcnow
from models.enums import Role


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Stored lower-case: unique regardless of case, and login ignores case.
    username: Mapped[str] = mapped_column(String(50), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    full_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(
        Enum(Role, name="role", native_enum=False, create_constraint=True, length=20),
        default=Role.viewer,
    )
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=same_as_created, onupdate=utcnow
    )


class AuthSession(Base):
    """One login: every access and refresh token carries its id, so revoking it ends them all.

    Only the SHA-256 of the current refresh token is kept. A validly signed refresh token of
    this session whose hash no longer matches has been spent already: its reuse means theft.
    """

    __tablename__ = "auth_sessions"
    # A user's logins by expiry: each login deletes that user's expired ones, and a user who
    # logs in often (a script, a storm) must not make that a scan of every login it has.
    __table_args__ = (Index("ix_auth_sessions_user_id_expires_at", "user_id", "expires_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    refresh_token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
