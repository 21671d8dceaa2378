"""Typed domain errors raised by services, and the handlers that render every error."""

import logging
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException

from api.middleware import DEFAULT_HEADERS
from api.request_log import ERROR_LOGGED, current_request_id
from models.availability import DatabaseUnavailable

log = logging.getLogger("api")

# A 500 is rendered outside every middleware (Starlette's ServerErrorMiddleware is outermost),
# so it brings its own security headers.
_ERROR_HEADERS = {name.decode(): value.decode() for name, value in DEFAULT_HEADERS}


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


class ServiceUnavailable(DomainError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    detail = "Service unavailable"


class InsufficientStorage(DomainError):
    status_code = status.HTTP_507_INSUFFICIENT_STORAGE
    detail = "Insufficient storage"


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


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 shape without each error's `input`: it would echo what was sent,
    passwords included."""
    assert isinstance(exc, RequestValidationError)
    errors = [{k: v for k, v in e.items() if k != "input"} for e in exc.errors()]
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


async def _http_error(request: Request, exc: Exception) -> Response:
    """FastAPI answers 400 for a body Python's JSON parser gave up on (invalid UTF-8, nesting
    deeper than its recursion limit, integers of thousands of digits); like any other
    malformed JSON that is a 422."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, (ValueError, RecursionError)):
        error = {"type": "json_invalid", "loc": ["body"], "msg": "JSON decode error"}
        return JSONResponse({"detail": [error]}, status_code=422)
    return await http_exception_handler(request, exc)


# Seconds a client is asked to wait before trying again while the database is unavailable.
RETRY_AFTER_SECONDS = 5


async def _database_unavailable(_request: Request, _exc: Exception) -> JSONResponse:
    # Logged once when it goes and once when it is back (models/availability.py), not here.
    return JSONResponse(
        error_body("The database is unavailable; try again shortly"),
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
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
    return JSONResponse(
        error_body("Internal server error"), status_code=500, headers=_ERROR_HEADERS
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(StaleDataError, _stale_data)
    app.add_exception_handler(DatabaseUnavailable, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected)
