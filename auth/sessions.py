"""Login sessions: issue a token pair, rotate it, revoke one login or all of a user's."""

import hashlib
import hmac
import uuid
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Insert, Table, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from auth import audit, tokens
from auth.audit import Origin
from auth.errors import INVALID_REFRESH, NotAuthenticated, RefreshTokenReused
from auth.schemas import TokenPair
from auth.settings import get_auth_settings
from auth.tokens import TokenType
from models.base import utcnow
from models.user import AuthSession, User


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _ttls() -> tuple[timedelta, timedelta]:
    s = get_auth_settings()
    return (
        timedelta(minutes=s.ACCESS_TOKEN_EXPIRE_MINUTES),
        timedelta(days=s.REFRESH_TOKEN_EXPIRE_DAYS),
    )


def _pair(user_id: int, session_id: str) -> tuple[TokenPair, str, datetime]:
    """A new token pair of one login, with its refresh token's digest and expiry."""
    access_ttl, refresh_ttl = _ttls()
    access, _ = tokens.issue(user_id, session_id, TokenType.access, access_ttl)
    refresh, claims = tokens.issue(user_id, session_id, TokenType.refresh, refresh_ttl)
    pair = TokenPair(
        access_token=access, expires_in=int(access_ttl.total_seconds()), refresh_token=refresh
    )
    return pair, _digest(refresh), claims.expires_at


_logins = cast(Table, AuthSession.__table__)

# Expired logins of the user are dead weight. A revoked one is kept until it expires, so a
# replayed refresh token of it is still recognised. (The table, not the ORM class: the
# session holds no login objects to keep in step.)
EXPIRED_LOGINS = (
    delete(_logins)
    .where(_logins.c.user_id == bindparam("user_id"))
    .where(_logins.c.expires_at < bindparam("now"))
)


def _new_login(require_active: bool) -> Insert:
    """A login row inserted from its user's row: nothing is inserted if the user is gone (or,
    `require_active`, disabled). Parameters are named apart from the columns, as an INSERT's
    own names are reserved for its VALUES."""
    user = select(
        bindparam("login_id", type_=_logins.c.id.type),
        User.id,
        bindparam("digest", type_=_logins.c.refresh_token_hash.type),
        bindparam("started", type_=_logins.c.created_at.type),
        bindparam("expires", type_=_logins.c.expires_at.type),
    ).where(User.id == bindparam("owner"))
    if require_active:
        user = user.where(User.is_active)
    columns = ["id", "user_id", "refresh_token_hash", "created_at", "expires_at"]
    return insert(_logins).from_select(columns, user)


# Built once each: every login runs them.
_NEW_LOGIN = {True: _new_login(require_active=True), False: _new_login(require_active=False)}


async def start(db: AsyncSession, user_id: int, *, require_active: bool = True) -> TokenPair | None:
    """A new login of the user; None if the user does not exist or (`require_active`) is
    disabled. One statement checks and writes: the login row is inserted from the user's row.
    """
    now = utcnow()
    conn = await db.connection()  # Core statements: the ORM session's layer only costs time
    await conn.execute(EXPIRED_LOGINS, {"user_id": user_id, "now": now})
    session_id = uuid.uuid4().hex
    pair, refresh_hash, expires_at = _pair(user_id, session_id)
    login = {
        "login_id": session_id,
        "owner": user_id,
        "digest": refresh_hash,
        "started": now,
        "expires": expires_at,
    }
    inserted = await conn.execute(_NEW_LOGIN[require_active], login)
    return pair if inserted.rowcount == 1 else None


async def rotate(db: AsyncSession, refresh_token: str, origin: Origin) -> TokenPair:
    """Spend a refresh token for a new pair. A spent one presented again revokes its login
    (and the reuse is recorded: the 401 commits both)."""
    try:
        claims = tokens.decode(refresh_token, TokenType.refresh)
    except tokens.InvalidToken:
        raise NotAuthenticated(INVALID_REFRESH) from None
    login = await db.get(AuthSession, claims.session_id, with_for_update=True)
    if login is None or login.user_id != claims.user_id or login.revoked_at is not None:
        raise NotAuthenticated(INVALID_REFRESH)
    if not hmac.compare_digest(login.refresh_token_hash, _digest(refresh_token)):
        login.revoked_at = utcnow()
        await db.flush()
        owner = await db.get(User, login.user_id)
        actor = audit.UserRef(owner.id, owner.username) if owner else None
        target = ("user", login.user_id)
        await audit.record(db, "auth.refresh_reuse", actor, target, {}, origin)
        raise RefreshTokenReused(login.user_id, login.id)
    user = await db.get(User, login.user_id)
    if user is None or not user.is_active:
        raise NotAuthenticated(INVALID_REFRESH)
    pair, login.refresh_token_hash, login.expires_at = _pair(login.user_id, login.id)
    await db.flush()
    return pair


async def log_out(
    db: AsyncSession,
    user: User,
    session_id: str,
    refresh_token: str | None,
    all_devices: bool,
    origin: Origin,
) -> None:
    """End this login (and the one of `refresh_token`), or every login of the user."""
    if all_devices:
        await revoke_all(db, user.id)
    else:
        await revoke(db, user.id, session_id)
        if refresh_token:
            await revoke_refresh_token(db, user.id, refresh_token)
    changes = {"all_devices": {"old": None, "new": True}} if all_devices else {}
    await audit.record(db, "auth.logout", user, ("user", user.id), changes, origin)


async def revoke(db: AsyncSession, user_id: int, session_id: str) -> None:
    await db.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.user_id == user_id)
        .where(AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


async def revoke_refresh_token(db: AsyncSession, user_id: int, refresh_token: str) -> None:
    """Revoke the login a refresh token belongs to, if it is a valid one of this user's.
    Anything else is ignored: it must not stop the caller's own logout, and another user's
    token is not the caller's to end."""
    try:
        claims = tokens.decode(refresh_token, TokenType.refresh)
    except tokens.InvalidToken:
        return
    if claims.user_id == user_id:
        await revoke(db, user_id, claims.session_id)


async def revoke_all(db: AsyncSession, user_id: int) -> None:
    """End every login of a user: each access and refresh token issued so far stops working."""
    await db.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
