"""A route that needs a bearer token refuses a request without a valid one before reading its
body: FastAPI reads (and parses) a JSON body before it runs the route's dependencies, so an
anonymous client could otherwise make every worker read and hold bodies up to the limit.

The check here is the token's signature, type and expiry only (no database); whether its
login is still open is the route's own dependency's to say, as before. The answers are those
of `auth.deps.get_principal`.
"""

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security.utils import get_authorization_scheme_param

from auth import tokens
from auth.deps import get_principal
from auth.errors import BEARER

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class BearerFirstRoute(APIRoute):
    """The route class of every router: routes with a body that need the caller's token
    check it before FastAPI reads the body."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        if not ((self.methods or set()) & BODY_METHODS and _needs_principal(self.dependant)):
            return handler

        async def bearer_first(request: Request) -> Response:
            refusal = _refusal(request)
            return refusal if refusal is not None else await handler(request)

        return bearer_first


def _needs_principal(dependant: Dependant) -> bool:
    return dependant.call is get_principal or any(
        _needs_principal(d) for d in dependant.dependencies
    )


def _refusal(request: Request) -> Response | None:
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization", ""))
    if scheme.lower() != "bearer" or not token:
        detail = "Not authenticated"
    else:
        try:
            tokens.decode(token, tokens.TokenType.access)
        except tokens.InvalidToken:
            detail = "Could not validate credentials"
        else:
            return None
    # The body is never read: close the connection rather than drain it.
    return JSONResponse({"detail": detail}, 401, headers={**BEARER, "Connection": "close"})
