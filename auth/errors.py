from fastapi import HTTPException, status

from models.session import KeepChanges

BEARER = {"WWW-Authenticate": "Bearer"}


class NotAuthenticated(HTTPException):
    """401 with the Bearer challenge: no, invalid, expired or revoked token."""

    def __init__(self, detail: str = "Could not validate credentials") -> None:
        super().__init__(status.HTTP_401_UNAUTHORIZED, detail, headers=BEARER)


class NotAuthenticatedKeepChanges(NotAuthenticated, KeepChanges):
    """A 401 whose request still commits (a replayed refresh token revokes its login)."""


class PermissionDenied(HTTPException):
    def __init__(self, detail: str = "Your role does not allow this") -> None:
        super().__init__(status.HTTP_403_FORBIDDEN, detail)
