from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from auth import events
from auth.errors import LoginThrottled, NotAuthenticated, NotAuthenticatedKeepChanges
from auth.passwords import MAX_PASSWORD_LENGTH, verify_password
from auth.throttle import LoginThrottle
from models.engine import begin_write, end_read
from models.user import User

BAD_CREDENTIALS = "Incorrect username or password"


async def authenticate(db: AsyncSession, username: str, password: str) -> tuple[int, str | None]:
    """The id of the active user with these credentials, and a new hash of the password when
    the stored one uses outdated parameters; or 401. It reads, then ends its transaction
    before the hash: a login waiting for the hasher holds no pooled connection and no lock.

    Unknown user, wrong password and disabled account answer alike and each pays for one
    password verification, so neither the answer nor its timing tells them apart.
    """
    name = username.strip().lower()
    # Credentials no account can have take the unknown-user path (same answer, same cost):
    # PostgreSQL refuses a NUL in text, passlib a password over 4 KiB; neither is a 500.
    possible = "\x00" not in name and len(password) <= MAX_PASSWORD_LENGTH
    user = await db.scalar(select(User).where(User.username == name)) if possible else None
    if user is not None and not user.is_active:
        user = None  # checked against the dummy hash, like an unknown account
    user_id, stored_hash = (user.id, user.password_hash) if user else (None, None)
    await end_read(db)
    ok, new_hash = await verify_password(password[:MAX_PASSWORD_LENGTH], stored_hash)
    if user_id is None or not ok:
        raise NotAuthenticated(BAD_CREDENTIALS)
    return user_id, new_hash


async def log_in(
    db: AsyncSession, throttle: LoginThrottle, username: str, password: str, address: str
) -> User:
    """`authenticate`, behind the login throttle, with each outcome logged.

    A throttled attempt is refused before any password check (cheap, and no guess is judged).
    A failure is counted, and its 401 still commits that count (KeepChanges).
    """
    try:
        await throttle.check(username, address)
    except LoginThrottled as exc:
        events.emit(
            "login_throttled", address=address, username=username, retry_after=exc.retry_after
        )
        raise
    try:
        user_id, new_hash = await authenticate(db, username, password)
    except NotAuthenticated:
        user_id, new_hash = None, None
    # Writing starts once the password is checked: on SQLite no login holds the database's
    # one writer's turn while it hashes.
    await begin_write(db)
    if user_id is None:
        await throttle.failed(username, address)
        events.emit("login_failed", address=address, username=username)
        raise NotAuthenticatedKeepChanges(BAD_CREDENTIALS)
    user = await db.get(User, user_id, populate_existing=True)
    if user is None or not user.is_active:  # deleted or disabled while the hash was checked
        raise NotAuthenticated(BAD_CREDENTIALS)
    if new_hash:
        user.password_hash = new_hash
    await throttle.succeeded(username, address)
    events.emit("login_succeeded", address=address, user_id=user.id, username=user.username)
    return user
