"""User management rules: uniqueness, the last active admin, revoking logins on changes; each
change recorded in the audit trail (never a password or its hash)."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import BadRequest, Conflict, NotFound
from api.schemas.users import PasswordChange, ProfileUpdate, UserCreate, UserQuery, UserUpdate
from auth import audit, sessions
from auth.audit import COMMAND_LINE, Actor, Origin
from auth.passwords import hash_password, verify_password
from auth.throttle import LoginThrottle
from models.constraints import constraint_name
from models.enums import Role
from models.user import User

USER_NOT_FOUND = "User not found"
LAST_ADMIN = "This would leave no active admin"
# Constraint names (models.base NAMING_CONVENTION) and what a clash with each means.
_UNIQUE = {
    "uq_users_username": "A user with this username already exists",
    "uq_users_email": "A user with this e-mail already exists",
}
# What the audit trail records of a user.
USER_FIELDS = ("username", "email", "full_name", "role", "is_active")


def _fields(user: User) -> dict[str, Any]:
    return {name: getattr(user, name) for name in USER_FIELDS}


async def get(db: AsyncSession, user_id: int) -> User:
    user = await db.get(User, user_id)
    if user is None:
        raise NotFound(USER_NOT_FOUND)
    return user


async def search(db: AsyncSession, query: UserQuery) -> tuple[Sequence[User], int]:
    where: list[ColumnElement[bool]] = []
    if query.role is not None:
        where.append(User.role == query.role)
    if query.is_active is not None:
        where.append(User.is_active.is_(query.is_active))
    if query.q:
        where.append(
            or_(
                *(
                    c.icontains(query.q, autoescape=True)
                    for c in (User.username, User.email, User.full_name)
                )
            )
        )
    total = await db.scalar(select(func.count()).select_from(User).where(*where))
    stmt = select(User).where(*where).order_by(User.id).offset(query.skip).limit(query.limit)
    return (await db.scalars(stmt)).all(), total or 0


async def _flush(db: AsyncSession) -> None:
    try:
        await db.flush()
    except IntegrityError as exc:
        detail = _UNIQUE.get(constraint_name(exc) or "")
        if detail is None:
            raise
        raise Conflict(detail) from None


def _email(value: str | None) -> str | None:
    return value.lower() if value else None


async def create(
    db: AsyncSession, data: UserCreate, actor: Actor | None = None, origin: Origin = COMMAND_LINE
) -> User:
    """A new user; `actor` None: created from the command line."""
    user = User(
        username=data.username.lower(),
        password_hash=await hash_password(data.password),
        email=_email(data.email),
        full_name=data.full_name,
        role=data.role,
        is_active=True,
    )
    db.add(user)
    await _flush(db)
    await audit.record(
        db, "user.create", actor, ("user", user.id), audit.created(_fields(user)), origin
    )
    return user


def _profile(user: User, data: ProfileUpdate) -> None:
    changes = data.model_dump(include={"email", "full_name"}, exclude_unset=True)
    if "email" in changes:
        changes["email"] = _email(changes["email"])
    for field, value in changes.items():
        setattr(user, field, value)


async def update_profile(db: AsyncSession, user: User, data: ProfileUpdate, origin: Origin) -> User:
    """The caller's own e-mail and name."""
    before = _fields(user)
    _profile(user, data)
    await _flush(db)
    await _record_update(db, user, before, user, origin)
    return user


async def _record_update(
    db: AsyncSession, actor: Actor | None, before: dict[str, Any], user: User, origin: Origin
) -> None:
    changes = audit.changed(before, _fields(user))
    if changes:
        await audit.record(db, "user.update", actor, ("user", user.id), changes, origin)


async def _lock_admins(db: AsyncSession) -> None:
    """Serialise changes to the set of active admins (row locks on PostgreSQL; SQLite's write
    transactions are serial already), so two admins cannot demote each other at once."""
    await db.execute(
        select(User.id).where(User.role == Role.admin, User.is_active.is_(True)).with_for_update()
    )


async def _ensure_admin_remains(db: AsyncSession) -> None:
    await db.flush()
    remaining = await db.scalar(
        select(func.count())
        .select_from(User)
        .where(User.role == Role.admin, User.is_active.is_(True))
    )
    if not remaining:
        raise Conflict(LAST_ADMIN)


def _is_active_admin(user: User) -> bool:
    return user.role == Role.admin and user.is_active


async def update(
    db: AsyncSession,
    user: User,
    data: UserUpdate,
    actor: Actor | None = None,
    origin: Origin = COMMAND_LINE,
) -> User:
    """An admin's change of a user (`actor` None: from the command line)."""
    was_admin = _is_active_admin(user)
    if was_admin:
        await _lock_admins(db)
    before = _fields(user)
    _profile(user, data)
    fields = data.model_fields_set
    password = data.password if "password" in fields else None
    revoke = False
    if "role" in fields and data.role is not None:
        user.role = data.role
    if "is_active" in fields and data.is_active is not None:
        revoke = user.is_active and not data.is_active
        user.is_active = data.is_active
    if was_admin and not _is_active_admin(user):
        await _ensure_admin_remains(db)
    if revoke and password is None:  # a new password ends them below
        await sessions.revoke_all(db, user.id)
    await _flush(db)
    await _record_update(db, actor, before, user, origin)
    if password is not None:
        await set_password(db, user, password, actor, origin)
    return user


async def delete(
    db: AsyncSession, user: User, actor: Actor | None = None, origin: Origin = COMMAND_LINE
) -> None:
    """The user; the items they touched are kept, their last state stays in the audit trail
    (`actor` None: from the command line)."""
    last = audit.removed(_fields(user))
    await audit.record(db, "user.delete", actor, ("user", user.id), last, origin)
    if _is_active_admin(user):
        await _lock_admins(db)
        await db.delete(user)
        await _ensure_admin_remains(db)
    else:
        await db.delete(user)
        await db.flush()


async def change_password(
    db: AsyncSession, throttle: LoginThrottle, user: User, data: PasswordChange, origin: Origin
) -> None:
    """Throttled like a login, per user: a stolen access token must not become a way to
    guess the account's password (429 past the limit, even for the right one)."""
    attempt = await throttle.reserve_password_change(user.id)
    ok, _ = await verify_password(data.current_password, user.password_hash)
    if not ok:
        raise BadRequest("Current password is incorrect")
    await throttle.succeeded(attempt)
    await set_password(db, user, data.new_password, user, origin)


async def set_password(
    db: AsyncSession,
    user: User,
    password: str,
    actor: Actor | None = None,
    origin: Origin = COMMAND_LINE,
) -> None:
    """A new password; every login of the user ends."""
    user.password_hash = await hash_password(password)
    await sessions.revoke_all(db, user.id)
    await db.flush()
    await audit.record(db, "user.password", actor, ("user", user.id), {}, origin)


async def ensure_first_admin(db: AsyncSession, admin: UserCreate) -> User | None:
    """Create the first admin when there are no users at all; None if there are some."""
    if await db.scalar(select(User.id).limit(1)) is not None:
        return None
    return await create(db, admin)
