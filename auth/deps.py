"""Who is calling, and may they: the current-user dependency and the role guards."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import Table, bindparam, inspect, select
from sqlalchemy.orm import make_transient_to_detached

from auth import tokens
from auth.errors import NOT_AUTHENTICATED, NotAuthenticated, PermissionDenied
from auth.permissions import Capability, allows
from auth.tokens import TokenType
from models.engine import BEFORE_WRITING
from models.reads import Reads
from models.session import SessionDep
from models.user import AuthSession, User

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="token", auto_error=False)


# Built once: every authenticated request runs it. Checked before a write request's
# transaction takes SQLite's one writer's turn. The user's columns, not the ORM's loading:
# the row becomes the session's User below (loading one cost a create 6% of its CPU).
_ACTIVE_LOGIN_USER = (
    select(*cast(Table, User.__table__).c)
    .join(AuthSession, AuthSession.user_id == User.id)
    .where(User.id == bindparam("user_id"), User.is_active.is_(True))
    .where(AuthSession.id == bindparam("session_id"), AuthSession.revoked_at.is_(None))
    .execution_options(**{BEFORE_WRITING: True})
)


@dataclass(frozen=True, slots=True)
class Principal:
    user: User
    session_id: str


async def get_principal(
    request: Request, db: SessionDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> Principal:
    """The caller, as the database says now: a revoked login or a disabled user is refused."""
    if not token:
        raise NotAuthenticated(NOT_AUTHENTICATED)
    try:
        claims = tokens.decode(token, TokenType.access)
    except tokens.InvalidToken:
        raise NotAuthenticated() from None
    params = {"user_id": claims.user_id, "session_id": claims.session_id}
    reads: Reads = request.app.state.reads
    # On SQLite read on the loop; else (or when the file is busy, or nobody matches: checked
    # again) in the request's session.
    row = reads.on_loop(_ACTIVE_LOGIN_USER, params)
    if row is None:
        conn = await db.connection(bind_arguments={"clause": _ACTIVE_LOGIN_USER})
        row = (await conn.execute(_ACTIVE_LOGIN_USER, params)).mappings().first()
        if row is None:
            raise NotAuthenticated()
    # Attached to the session as the row says it is (persistent, unchanged), with no second
    # read; merged into the one the session holds, if a dependency before loaded it.
    user = User(**row)
    make_transient_to_detached(user)
    key = inspect(user).key
    if key is not None and db.identity_map.get(key) is not None:
        user = await db.merge(user, load=False)
    else:
        db.add(user)
    return Principal(user, claims.session_id)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


@cache
def require(capability: Capability) -> Callable[[Principal], Awaitable[User]]:
    """A dependency that lets through only users whose current role holds `capability`."""

    async def guard(principal: PrincipalDep) -> User:
        if not allows(principal.user.role, capability):
            raise PermissionDenied()
        return principal.user

    guard.capability = capability  # type: ignore[attr-defined]  # read by the role-matrix test
    guard.__name__ = f"require_{capability.name}"
    return guard


CurrentUser = Annotated[User, Depends(require(Capability.own_account))]
EditorUser = Annotated[User, Depends(require(Capability.edit_items))]
ItemDeleter = Annotated[User, Depends(require(Capability.delete_items))]
AdminUser = Annotated[User, Depends(require(Capability.manage_users))]
StockViewer = Annotated[User, Depends(require(Capability.read_movements))]
AuditReader = Annotated[User, Depends(require(Capability.read_audit))]
