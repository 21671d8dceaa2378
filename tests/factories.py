"""Typed helpers that put rows in the database and mint credentials for tests."""

import itertools
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from auth import sessions
from auth.passwords import hash_password
from models.enums import Role
from models.item import Item
from models.user import User

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
    await db.commit()
    return item


async def login_pair(db: AsyncSession, user: User) -> tuple[str, str]:
    """(access, refresh) for a fresh login of `user`, as /token would issue them."""
    pair = await sessions.start(db, user)
    await db.commit()
    return pair.access_token, pair.refresh_token


async def auth_headers(db: AsyncSession, user: User) -> dict[str, str]:
    access, _ = await login_pair(db, user)
    return {"Authorization": f"Bearer {access}"}
