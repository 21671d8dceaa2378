from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from api.deps import UserDep
from api.schemas.common import error_responses
from api.schemas.users import (
    PasswordChange,
    ProfileUpdate,
    UserCreate,
    UserList,
    UserOut,
    UserQuery,
    UserRead,
    UserUpdate,
)
from api.services import users
from auth import events
from auth.deps import AdminUser, CurrentUser
from models.session import SessionDep
from models.user import User

router = APIRouter(prefix="/users", tags=["users"])


def _out(user: object) -> UserOut:
    return UserOut(user=UserRead.model_validate(user))


def _event(event: str, request: Request, actor: User, target: User, **fields: events.Value) -> None:
    events.emit(
        event,
        address=events.client_address(request),
        user_id=actor.id,
        username=actor.username,
        target_user_id=target.id,
        target_username=target.username,
        **fields,
    )


@router.get("/me", summary="My profile")
async def read_me(user: CurrentUser) -> UserOut:
    return _out(user)


@router.patch("/me", summary="Update my profile", responses=error_responses(409))
async def update_me(user: CurrentUser, data: ProfileUpdate, db: SessionDep) -> UserOut:
    """Only `email` and `full_name`; a role or status cannot be changed here."""
    return _out(await users.update_profile(db, user, data))


@router.post(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Change my password",
    responses=error_responses(400),
)
async def change_my_password(
    user: CurrentUser, data: PasswordChange, db: SessionDep, request: Request
) -> None:
    """Every token issued before, this one included, stops working."""
    await users.change_password(db, user, data)
    _event("password_changed", request, user, user)


@router.get("", summary="List users")
async def list_users(
    _: AdminUser, db: SessionDep, query: Annotated[UserQuery, Query()]
) -> UserList:
    rows, total = await users.search(db, query)
    return UserList(
        users=[UserRead.model_validate(r) for r in rows],
        total=total,
        total_exact=True,
        skip=query.skip,
        limit=query.limit,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a user",
    responses=error_responses(409),
)
async def create_user(
    admin: AdminUser, data: UserCreate, db: SessionDep, request: Request, response: Response
) -> UserOut:
    user = await users.create(db, data)
    _event("user_created", request, admin, user, role=user.role.value)
    response.headers["Location"] = f"/users/{user.id}"
    return _out(user)


@router.get("/{user_id}", summary="Get a user", responses=error_responses(404))
async def read_user(_: AdminUser, user: UserDep) -> UserOut:
    return _out(user)


@router.patch("/{user_id}", summary="Update a user", responses=error_responses(404, 409))
async def update_user(
    admin: AdminUser, user: UserDep, data: UserUpdate, db: SessionDep, request: Request
) -> UserOut:
    """A new password or disabling ends every login of that user. Leaving no active admin
    is refused (409)."""
    role, active = user.role, user.is_active
    await users.update(db, user, data)
    if user.role != role:
        _event("role_changed", request, admin, user, old=role.value, new=user.role.value)
    if user.is_active != active:
        _event("status_changed", request, admin, user, old=active, new=user.is_active)
    if data.password is not None:
        _event("password_reset", request, admin, user)
    return _out(user)


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a user",
    responses=error_responses(404, 409),
)
async def delete_user(admin: AdminUser, user: UserDep, db: SessionDep, request: Request) -> None:
    """The items the user created or changed are kept."""
    await users.delete(db, user)
    _event("user_deleted", request, admin, user)
