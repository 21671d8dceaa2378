from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from auth import sessions
from auth.deps import CurrentUser, PrincipalDep
from auth.login import authenticate
from auth.schemas import LogoutRequest, RefreshRequest, TokenPair
from models.session import SessionDep

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_401: dict[int | str, dict[str, Any]] = {401: {"description": "Bad credentials or token"}}

router = APIRouter(tags=["auth"])


@router.post("/token", summary="Log in (OAuth2 password flow)", responses=_401)
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], db: SessionDep, response: Response
) -> TokenPair:
    """Exchange a username and password for an access token and a refresh token."""
    user = await authenticate(db, form.username, form.password)
    response.headers.update(NO_STORE)
    return await sessions.start(db, user)


@router.post("/token/refresh", summary="Exchange a refresh token for a new pair", responses=_401)
async def refresh(body: RefreshRequest, db: SessionDep, response: Response) -> TokenPair:
    """The refresh token is spent. Presenting a spent one again revokes its whole login."""
    response.headers.update(NO_STORE)
    return await sessions.rotate(db, body.refresh_token)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, summary="Log out", responses=_401)
async def logout(
    principal: PrincipalDep,
    _user: CurrentUser,
    db: SessionDep,
    body: Annotated[LogoutRequest | None, Body()] = None,
    all_devices: Annotated[bool, Query(alias="all", description="End every login")] = False,
) -> None:
    """End this login (and the one of `refresh_token`, if given); `?all=true` ends them all."""
    user_id = principal.user.id
    if all_devices:
        await sessions.revoke_all(db, user_id)
        return
    await sessions.revoke(db, user_id, principal.session_id)
    if body and body.refresh_token:
        await sessions.revoke_refresh_token(db, user_id, body.refresh_token)
