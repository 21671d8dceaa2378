from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from auth import events, sessions
from auth.bearer_first import BearerFirstRoute
from auth.deps import CurrentUser, PrincipalDep
from auth.errors import INVALID_REFRESH, NOT_AUTHENTICATED, RefreshTokenReused
from auth.login import BAD_CREDENTIALS, log_in
from auth.schemas import LogoutRequest, RefreshRequest, TokenPair
from auth.throttle import LoginThrottleDep
from models.session import ReadFirstSessionDep, SessionDep

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _401(detail: str) -> dict[int | str, dict[str, Any]]:
    example = {"application/json": {"example": {"detail": detail}}}
    return {401: {"description": "Bad credentials or token", "content": example}}


THROTTLED: dict[int | str, dict[str, Any]] = {
    429: {
        "description": "Too many failed attempts; `Retry-After` says how many seconds to wait",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    }
}

router = APIRouter(tags=["auth"], route_class=BearerFirstRoute)


@router.post(
    "/token",
    summary="Log in (OAuth2 password flow)",
    responses={**_401(BAD_CREDENTIALS), **THROTTLED},
)
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    db: ReadFirstSessionDep,
    throttle: LoginThrottleDep,
    request: Request,
    response: Response,
) -> TokenPair:
    """Exchange a username and password for an access token and a refresh token.

    Repeated failures are throttled (429 with `Retry-After`), even for the right password.
    """
    address = events.client_address(request)
    pair = await log_in(db, throttle, form.username, form.password, address)
    response.headers.update(NO_STORE)
    return pair


@router.post(
    "/token/refresh",
    summary="Exchange a refresh token for a new pair",
    responses=_401(INVALID_REFRESH),
)
async def refresh(
    body: RefreshRequest, db: SessionDep, request: Request, response: Response
) -> TokenPair:
    """The refresh token is spent. Presenting a spent one again revokes its whole login."""
    response.headers.update(NO_STORE)
    try:
        return await sessions.rotate(db, body.refresh_token)
    except RefreshTokenReused as exc:
        events.emit(
            "refresh_token_reused",
            address=events.client_address(request),
            user_id=exc.user_id,
            session_id=exc.session_id,
        )
        raise


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
    request: Request,
    body: Annotated[LogoutRequest | None, Body()] = None,
    all_devices: Annotated[bool, Query(alias="all", description="End every login")] = False,
) -> None:
    """End this login (and the one of `refresh_token`, if it is one of the caller's; any other
    is ignored); `?all=true` ends them all."""
    user_id = principal.user.id
    if all_devices:
        await sessions.revoke_all(db, user_id)
    else:
        await sessions.revoke(db, user_id, principal.session_id)
        if body and body.refresh_token:
            await sessions.revoke_refresh_token(db, user_id, body.refresh_token)
    events.emit(
        "logout",
        address=events.client_address(request),
        user_id=user_id,
        username=principal.user.username,
        all_devices=all_devices,
    )
