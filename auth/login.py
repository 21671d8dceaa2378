from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from auth.errors import NotAuthenticated
from auth.passwords import verify_password
from models.user import User

BAD_CREDENTIALS = "Incorrect username or password"


async def authenticate(db: AsyncSession, username: str, password: str) -> User:
    """The active user with these credentials, or 401.

    Unknown user, wrong password and disabled account answer alike and each pays for one
    password verification, so neither the answer nor its timing tells them apart.
    """
    user = await db.scalar(select(User).where(User.username == username.strip().lower()))
    ok, new_hash = await verify_password(password, user.password_hash if user else None)
    if user is None or not ok or not user.is_active:
        raise NotAuthenticated(BAD_CREDENTIALS)
    if new_hash:
        user.password_hash = new_hash
    return user
