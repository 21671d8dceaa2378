from typing import NamedTuple

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from auth import audit, events, sessions
from auth.audit import Origin
from auth.errors import LoginThrottled, NotAuthenticated, NotAuthenticatedKeepChanges
from auth.passwords import MAX_PASSWORD_LENGTH, verify_password
from auth.schemas import TokenPair
from auth.throttle import LoginThrottle
from models.engine import begin_write, end_read, use_autocommit
from models.user import User

BAD_CREDENTIALS = "Incorrect username or password"

# Columns, not the ORM object, and built once: a login storm pays for every step of this path.
_ACCOUNT = select(User.id, User.username, User.password_hash).where(
    User.username == bindparam("name"), User.is_active
)


class Verified(NamedTuple):
    user_id: int
    username: str
    new_hash: str | None  # the password hashed anew, when the stored hash is outdated


async def authenticate(db: AsyncSession, username: str, password: str) -> Verified:
    """The active user with these credentials, or 401. It reads, then ends its transaction
    before the hash: a login waiting for the hasher holds no pooled connection and no lock.

    Unknown user, wrong password and disabled account answer alike and each pays for one
    password verification, so neither the answer nor its timing tells them apart.
    """
    name = username.strip().lower()
    # Credentials no account can have take the unknown-user path (same answer, same cost):
    # PostgreSQL refuses a NUL in text, passlib a password over 4 KiB; neither is a 500.
    possible = "\x00" not in name and len(password) <= MAX_PASSWORD_LENGTH
    found = None
    if possible:
        found = (await (await db.connection()).execute(_ACCOUNT, {"name": name})).first()
    await end_read(db)
    # A disabled account is checked against the dummy hash, like an unknown one.
    stored_hash = found.password_hash if found else None
    ok, new_hash = await verify_password(password[:MAX_PASSWORD_LENGTH], stored_hash)
    if found is None or not ok:
        raise NotAuthenticated(BAD_CREDENTIALS)
    return Verified(found.id, found.username, new_hash)


async def log_in(
    db: AsyncSession, throttle: LoginThrottle, username: str, password: str, origin: Origin
) -> TokenPair:
    """`authenticate`, behind the login throttle, then a new login session; each outcome
    logged.

    The attempt is counted before the password is judged (the throttle's reservation commits
    at once), so concurrent guesses cannot outrun the limit; a throttled attempt is refused
    before any password check. A failure keeps its count (and its audit record commits with
    the 401: KeepChanges); a success takes the count back.
    """
    address = origin.address or "unknown"
    try:
        attempt = await throttle.reserve(username, address)
    except LoginThrottled as exc:
        events.emit(
            "login_throttled", address=address, username=username, retry_after=exc.retry_after
        )
        raise
    # The account is read outside a transaction: no BEGIN and no ROLLBACK round trip.
    await use_autocommit(db)
    try:
        verified: Verified | None = await authenticate(db, username, password)
    except NotAuthenticated:
        verified = None
    # Writing starts once the password is checked: on SQLite no login holds the database's
    # one writer's turn while it hashes.
    await begin_write(db)
    if verified is None:
        await audit.record(db, "auth.login_failed", None, None, {}, origin)
        raise NotAuthenticatedKeepChanges(BAD_CREDENTIALS)
    if verified.new_hash:
        await db.execute(
            update(User)
            .where(User.id == verified.user_id)
            .values(password_hash=verified.new_hash)
            .execution_options(synchronize_session=False)
        )
    await throttle.succeeded(attempt)
    pair = await sessions.start(db, verified.user_id)
    if pair is None:  # disabled or deleted while the hash was checked: all of it rolls back
        raise NotAuthenticated(BAD_CREDENTIALS)
    actor = audit.UserRef(verified.user_id, verified.username)
    await audit.record(db, "auth.login", actor, ("user", verified.user_id), {}, origin)
    return pair
