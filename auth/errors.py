from fastapi import HTTPException, status

from models.session import KeepChanges

BEARER = {"WWW-Authenticate": "Bearer"}
# The messages of the errors below, also shown as examples in the OpenAPI schema.
NOT_AUTHENTICATED = "Not authenticated"
INVALID_REFRESH = "Invalid refresh token"
TOO_MANY_FAILED_LOGINS = "Too many failed logins; try again later"


class NotAuthenticated(HTTPException):
    """401 with the Bearer challenge: no, invalid, expired or revoked token."""

    def __init__(self, detail: str = "Could not validate credentials") -> None:
        super().__init__(status.HTTP_401_UNAUTHORIZED, detail, headers=BEARER)


class NotAuthenticatedKeepChanges(NotAuthenticated, KeepChanges):
    """A 401 whose request still commits (a replayed refresh token revokes its login)."""


class PermissionDenied(HTTPException):
    def __init__(self, detail: str = "Your role does not allow this") -> None:
        super().__init__(status.HTTP_403_FORBIDDEN, detail)


class RefreshTokenReused(NotAuthenticatedKeepChanges):
    """A spent refresh token came back: its login is revoked (and stays so: the change commits)."""

    def __init__(self, user_id: int, session_id: str) -> None:
        super().__init__("Refresh token already used; this login is revoked")
        self.user_id = user_id
        self.session_id = session_id


class LoginThrottled(HTTPException):
    """429: too many failed logins; `Retry-After` says when the window lets one through."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            status.HTTP_429_TOO_MANY_REQUESTS,
            TOO_MANY_FAILED_LOGINS,
            headers={"Retry-After": str(retry_after)},
        )
        self.retry_after = retry_after
