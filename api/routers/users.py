from typing import Annotated

from fastapi import APIRouter, Query, Response, status

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
from auth.audit import OriginDep
from auth.bearer_first import BearerFirstRoute
from auth.deps import AdminUser, CurrentUser
from auth.throttle import ThrottleDep
from models.session import SessionDep

router = APIRouter(prefix="/users", tags=["users"], route_class=BearerFirstRoute)


def _out(user: object) -> UserOut:
    return UserOut(user=UserRead.model_validate(user))


@router.get("/me", summary="My profile")
async def read_me(user: CurrentUser) -> UserOut:
    """The logged-in user's own record."""
    return _out(user)


@router.patch(
    "/me",
    summary="Update my profile",
    responses=error_responses((409, "A user with this e-mail already exists")),
)
async def update_me(
    user: CurrentUser, data: ProfileUpdate, db: SessionDep, origin: OriginDep
) -> UserOut:
    """Only `email` and `full_name`; a role or status cannot be changed here."""
    return _out(await users.update_profile(db, user, data, origin))


@router.post(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Change my password",
    responses=error_responses((400, "Current password is incorrect")),
)
async def change_my_password(
    user: CurrentUser,
    data: PasswordChange,
    db: SessionDep,
    throttle: ThrottleDep,
    origin: OriginDep,
) -> None:
    """Every token issued before, this one included, stops working. Wrong current passwords
    are throttled like failed logins (429 with `Retry-After`)."""
    await users.change_password(db, throttle, user, data, origin)


@router.get("", summary="List users")
async def list_users(
    _: AdminUser, db: SessionDep, query: Annotated[UserQuery, Query()]
) -> UserList:
    """A page of users, filtered by role or active flag, or searched by username, e-mail or name."""
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
    responses=error_responses((409, "A user with this username already exists")),
)
async def create_user(
    admin: AdminUser, data: UserCreate, db: SessionDep, origin: OriginDep, response: Response
) -> UserOut:
    """Usernames and e-mail addresses are unique regardless of case (409)."""
    user = await users.create(db, data, admin, origin)
    response.headers["Location"] = f"/users/{user.id}"
    return _out(user)


@router.get("/{user_id}", summary="Get a user", responses=error_responses(404))
async def read_user(_: AdminUser, user: UserDep) -> UserOut:
    """Any user's record, by id."""
    return _out(user)


@router.patch(
    "/{user_id}",
    summary="Update a user",
    responses=error_responses(404, (409, users.LAST_ADMIN)),
)
async def update_user(
    admin: AdminUser, user: UserDep, data: UserUpdate, db: SessionDep, origin: OriginDep
) -> UserOut:
    """A new password or disabling ends every login of that user. Leaving no active admin
    is refused (409)."""
    return _out(await users.update(db, user, data, admin, origin))


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a user",
    responses=error_responses(404, (409, users.LAST_ADMIN)),
)
async def delete_user(admin: AdminUser, user: UserDep, db: SessionDep, origin: OriginDep) -> None:
    """The items the user created or changed are kept."""
    await users.delete(db, user, admin, origin)
