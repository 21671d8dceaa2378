"""Login sessions: issue a token pair, rotate it, revoke one login or all of a user's."""

import hashlib
import hmac
import uuid
from datetime import timedelta

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from auth import tokens
from auth.errors import NotAuthenticated, RefreshTokenReused
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


def _pair(login: AuthSession) -> TokenPair:
    access_ttl, refresh_ttl = _ttls()
    access, _ = tokens.issue(login.user_id, login.id, TokenType.access, access_ttl)
    refresh, claims = tokens.issue(login.user_id, login.id, TokenType.refresh, refresh_ttl)
    login.refresh_token_hash = _digest(refresh)
    login.expires_at = claims.expires_at
    return TokenPair(
        access_token=access, expires_in=int(access_ttl.total_seconds()), refresh_token=refresh
    )


async def start(db: AsyncSession, user: User) -> TokenPair:
    # Expired logins of this user are dead weight; a revoked one is kept until it expires,
    # so a replayed refresh token of it is still recognised.
    await db.execute(
        delete(AuthSession).where(AuthSession.user_id == user.id, AuthSession.expires_at < utcnow())
    )
    login = AuthSession(id=uuid.uuid4().hex, user_id=user.id)
    pair = _pair(login)
    db.add(login)
    await db.flush()
    return pair


async def rotate(db: AsyncSession, refresh_token: str) -> TokenPair:
    """Spend a refresh token for a new pair. A spent one presented again revokes its login."""
    try:
        claims = tokens.decode(refresh_token, TokenType.refresh)
    except tokens.InvalidToken:
        raise NotAuthenticated("Invalid refresh token") from None
    login = await db.get(AuthSession, claims.session_id, with_for_update=True)
    if login is None or login.user_id != claims.user_id or login.revoked_at is not None:
        raise NotAuthenticated("Invalid refresh token")
    if not hmac.compare_digest(login.refresh_token_hash, _digest(refresh_token)):
        login.revoked_at = utcnow()
        await db.flush()
        raise RefreshTokenReused(login.user_id, login.id)
    user = await db.get(User, login.user_id)
    if user is None or not user.is_active:
        raise NotAuthenticated("Invalid refresh token")
    pair = _pair(login)
    await db.flush()
    return pair


async def revoke(db: AsyncSession, user_id: int, session_id: str) -> None:
    await db.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.user_id == user_id)
        .where(AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


async def revoke_refresh_token(db: AsyncSession, user_id: int, refresh_token: str) -> None:
    """Revoke the login a refresh token belongs to, if it is a valid one of this user's."""
    try:
        claims = tokens.decode(refresh_token, TokenType.refresh)
    except tokens.InvalidToken:
        raise NotAuthenticated("Invalid refresh token") from None
    if claims.user_id != user_id:
        raise NotAuthenticated("Invalid refresh token")
    await revoke(db, user_id, claims.session_id)


async def revoke_all(db: AsyncSession, user_id: int) -> None:
    """End every login of a user: each access and refresh token issued so far stops working."""
    await db.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
