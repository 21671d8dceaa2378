"""Typed helpers that put rows in the database and mint credentials for tests."""

import itertools
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from auth import sessions
from auth.passwords import hash_password
from models.enums import MovementReason, Role
from models.item import Item
from models.stock_movement import StockMovement
from models.user import AuthSession, User

PASSWORD = "correct horse battery"
_seq = itertools.count(1)


async def make_user(
    db: AsyncSession,
    role: Role = Role.viewer,
    *,
    username: str | None = None,
    password: str = PASSWORD,
    is_active: bool = True,
    email: str | None = None,
) -> User:
    user = User(
        username=(username or f"user{next(_seq)}").lower(),
        password_hash=await hash_password(password),
        role=role,
        is_active=is_active,
        email=email,
    )
    db.add(user)
    await db.commit()
    return user


async def make_item(db: AsyncSession, **fields: Any) -> Item:
    n = next(_seq)
    values: dict[str, Any] = {"name": f"Item {n}", "quantity": n}
    values.update(fields)
    item = Item(**values)
    db.add(item)
    await db.flush()
    if item.quantity:  # as the API would have recorded it
        db.add(
            StockMovement(
                item_id=item.id,
                delta=item.quantity,
                quantity_after=item.quantity,
                reason=MovementReason.received,
                created_at=item.created_at,
            )
        )
    await db.commit()
    return item


async def login_pair(db: AsyncSession, user: User) -> tuple[str, str]:
    """(access, refresh) for a fresh login of `user`, as /token would issue them."""
    # A disabled user's login is one made before it was disabled.
    pair = await sessions.start(db, user.id, require_active=False)
    assert pair is not None
    await db.commit()
    return pair.access_token, pair.refresh_token


async def auth_headers(db: AsyncSession, user: User) -> dict[str, str]:
    access, _ = await login_pair(db, user)
    return {"Authorization": f"Bearer {access}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def fresh(db: AsyncSession) -> None:
    """End the test session's transaction so the next read sees what requests committed.

    Objects are detached first: they keep their loaded values (a rollback would expire them,
    and a later attribute access would then need IO the test did not ask for).
    """
    db.expunge_all()
    await db.rollback()


async def row(db: AsyncSession, model: type[Any], id_: object) -> dict[str, Any] | None:
    """The committed row as a dict of column values (None if gone)."""
    await fresh(db)
    table = model.__table__
    result = await db.execute(select(table).where(table.c.id == id_))
    found = result.mappings().one_or_none()
    return dict(found) if found is not None else None


async def count(db: AsyncSession, model: type[Any]) -> int:
    await fresh(db)
    return int(await db.scalar(select(func.count()).select_from(model)) or 0)


async def sessions_of(db: AsyncSession, user: User) -> list[AuthSession]:
    """The user's logins as committed now, oldest first."""
    await fresh(db)
    stmt = select(AuthSession).where(AuthSession.user_id == user.id)
    return list(await db.scalars(stmt.order_by(AuthSession.created_at)))
