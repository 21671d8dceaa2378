from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from auth import sessions
from auth.audit import OriginDep
from auth.deps import CurrentUser, PrincipalDep
from auth.errors import INVALID_REFRESH, NOT_AUTHENTICATED
from auth.login import BAD_CREDENTIALS, log_in
from auth.schemas import LogoutRequest, RefreshRequest, TokenPair
from auth.throttle import LoginThrottleDep
from models.session import ReadFirstSessionDep, SessionDep

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _401(detail: str) -> dict[int | str, dict[str, Any]]:
    example = {"application/json": {"example": {"detail": detail}}}
    return {401: {"description": "Bad credentials or token", "content": example}}


_429: dict[int | str, dict[str, Any]] = {
    429: {
        "description": "Too many failed logins; `Retry-After` says how many seconds to wait",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    }
}

router = APIRouter(tags=["auth"])


@router.post(
    "/token", summary="Log in (OAuth2 password flow)", responses={**_401(BAD_CREDENTIALS), **_429}
)
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    db: ReadFirstSessionDep,
    throttle: LoginThrottleDep,
    origin: OriginDep,
    response: Response,
) -> TokenPair:
    """Exchange a username and password for an access token and a refresh token.

    Repeated failures are throttled (429 with `Retry-After`), even for the right password.
    """
    pair = await log_in(db, throttle, form.username, form.password, origin)
    response.headers.update(NO_STORE)
    return pair


@router.post(
    "/token/refresh",
    summary="Exchange a refresh token for a new pair",
    responses=_401(INVALID_REFRESH),
)
async def refresh(
    body: RefreshRequest, db: SessionDep, origin: OriginDep, response: Response
) -> TokenPair:
    """The refresh token is spent. Presenting a spent one again revokes its whole login."""
    response.headers.update(NO_STORE)
    return await sessions.rotate(db, body.refresh_token, origin)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Log out",
    responses=_401(NOT_AUTHENTICATED),
)
async def logout(
    principal: PrincipalDep,
    _user: CurrentUser,
    db: SessionDep,
    origin: OriginDep,
    body: Annotated[LogoutRequest | None, Body()] = None,
    all_devices: Annotated[bool, Query(alias="all", description="End every login")] = False,
) -> None:
    """End this login (and the one of `refresh_token`, if given); `?all=true` ends them all."""
    refresh_token = body.refresh_token if body else None
    await sessions.log_out(
        db, principal.user, principal.session_id, refresh_token, all_devices, origin
    )
