"""Typed domain errors raised by services, and the handlers that render every error."""

import logging
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from api.request_log import ERROR_LOGGED, current_request_id

log = logging.getLogger("api")


class DomainError(Exception):
    status_code = status.HTTP_400_BAD_REQUEST
    detail = "Bad request"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.detail)
        self.detail = detail or self.detail


class BadRequest(DomainError):
    pass


class NotFound(DomainError):
    status_code = status.HTTP_404_NOT_FOUND
    detail = "Not found"


class Conflict(DomainError):
    status_code = status.HTTP_409_CONFLICT
    detail = "Conflict with the current state"


class PreconditionFailed(DomainError):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    detail = "The resource has changed; reload it and try again"


class ContentTooLarge(DomainError):
    status_code = status.HTTP_413_CONTENT_TOO_LARGE
    detail = "Content too large"


class UnsupportedMediaType(DomainError):
    status_code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    detail = "Unsupported media type"


def error_body(detail: str) -> dict[str, Any]:
    return {"detail": detail}


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return JSONResponse(error_body(exc.detail), status_code=exc.status_code)


async def _integrity_error(_request: Request, _exc: Exception) -> JSONResponse:
    # A constraint a service did not translate; never echo the SQL.
    return JSONResponse(error_body(Conflict.detail), status_code=status.HTTP_409_CONFLICT)


async def _stale_data(_request: Request, _exc: Exception) -> JSONResponse:
    return JSONResponse(
        error_body("Changed by someone else meanwhile; reload it and try again"),
        status_code=status.HTTP_409_CONFLICT,
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    request_id = current_request_id()
    log.error(
        "unhandled error on %s %s id=%s",
        request.method,
        request.url.path,
        request_id,
        exc_info=exc,
        extra={"request_id": request_id},
    )
    request.scope[ERROR_LOGGED] = True
    return JSONResponse(error_body("Internal server error"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(StaleDataError, _stale_data)
    app.add_exception_handler(Exception, _unexpected)
