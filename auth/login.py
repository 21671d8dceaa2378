from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from auth.errors import NotAuthenticated
from auth.passwords import MAX_PASSWORD_LENGTH, verify_password
from models.user import User

BAD_CREDENTIALS = "Incorrect username or password"


async def authenticate(db: AsyncSession, username: str, password: str) -> User:
    """The active user with these credentials, or 401.

    Unknown user, wrong password and disabled account answer alike and each pays for one
    password verification, so neither the answer nor its timing tells them apart.
    """
    name = username.strip().lower()
    # Credentials no account can have take the unknown-user path (same answer, same cost):
    # PostgreSQL refuses a NUL in text, passlib a password over 4 KiB; neither is a 500.
    possible = "\x00" not in name and len(password) <= MAX_PASSWORD_LENGTH
    user = await db.scalar(select(User).where(User.username == name)) if possible else None
    ok, new_hash = await verify_password(
        password[:MAX_PASSWORD_LENGTH], user.password_hash if user else None
    )
    if user is None or not ok or not user.is_active:
        raise NotAuthenticated(BAD_CREDENTIALS)
    if new_hash:
        user.password_hash = new_hash
    return user
