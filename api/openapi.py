"""The OpenAPI schema, completed in one place so that every route, whoever writes it, documents
the errors it can answer: routes declare only their own (404 for a lookup that is not a path id,
409, 412); what follows from their shape is added here:

- a bearer-guarded route: 401, plus 403 when its role guard can refuse a logged-in user;
- a request body: 413 (too large) and 422; a multipart upload also 400 (broken framing)
  and 415;
- a path parameter: 404;
- a throttled route (`THROTTLED`): 429 with `Retry-After`.

Every error answer gets the error model and an example. `tests/test_openapi.py` holds every
operation to this, and to a tag, a summary, a readable operationId and models with examples.
"""

import re
from collections.abc import Callable, Iterator, Sequence
from http import HTTPStatus
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute

from api.errors import Conflict, NotFound
from api.imaging import NOT_AN_IMAGE
from api.middleware import BodyTooLarge
from api.schemas.common import ErrorOut
from api.upload import INVALID as INVALID_MULTIPART
from auth.errors import NOT_AUTHENTICATED, TOO_MANY_FAILED_LOGINS, PermissionDenied
from auth.permissions import MINIMUM_ROLE, Capability
from models.enums import Role

Schema = dict[str, Any]

TAGS: dict[str, str] = {
    "auth": "Log in (OAuth2 password flow), refresh the token pair, log out.",
    "items": "Items and their stock. Reads are public; writes need an editor, deletes an admin.",
    "images": "One image per item, judged by its bytes, served under /static.",
    "stock": "Every item's stock movements (each change of a quantity, with its reason).",
    "users": "Your own profile and password; managing users is for admins.",
    "audit": "The audit trail of every write and login: for admins, read-only.",
    "operations": "Liveness and readiness probes.",
}

# Operation ids (route names) that answer 429 when throttled.
THROTTLED = frozenset({"login"})

# status: (description, example detail). Each example is what the implied error answers
# (400: broken multipart framing; 401: no token; 404: "<Thing> not found" from the path); a
# route whose own message differs declares it (`error_responses((409, "…"))`).
# tests/test_error_examples.py provokes every documented error and compares.
ERRORS: dict[int, tuple[str, str]] = {
    400: ("Bad request", INVALID_MULTIPART),
    401: ("Not authenticated: no token, or an invalid, expired or revoked one", NOT_AUTHENTICATED),
    403: ("Your role does not allow this", PermissionDenied().detail),
    404: ("Not found", NotFound.detail),
    409: ("Conflict with the current state", Conflict.detail),
    412: (
        "The If-Match ETag is stale",
        "Item has changed since that ETag; reload it and try again",
    ),
    413: ("Request body too large", BodyTooLarge().detail),
    415: ("Not an accepted image (JPEG, PNG, GIF, WebP)", NOT_AN_IMAGE),
    429: ("Too many failed logins; wait for Retry-After seconds", TOO_MANY_FAILED_LOGINS),
}

_ERROR_REF = "#/components/schemas/ErrorOut"
_HEADERS: dict[int, Schema] = {
    401: {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
    429: {
        "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}},
    },
}


def operation_id(route: APIRoute) -> str:
    """The route's function name (`list_items`, `create_item`): readable in Swagger UI and a
    good method name in generated clients. tests/test_openapi.py keeps them unique."""
    return route.name


def refine(schema: Schema, routes: Sequence[BaseRoute]) -> Schema:
    """Complete `schema` (FastAPI's) in place; see the module docstring."""
    schema.setdefault("components", {}).setdefault("schemas", {}).setdefault(
        "ErrorOut", ErrorOut.model_json_schema()
    )
    guards = _capabilities_by_operation(routes)
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            statuses = _implied_errors(path, operation, guards.get((path, method), ()))
            responses = operation.setdefault("responses", {})
            for status in statuses:
                responses.setdefault(str(status), {})
            for status, response in responses.items():
                _complete_error(int(status), response, path)
    used = {
        tag
        for ops in schema.get("paths", {}).values()
        for op in ops.values()
        for tag in op.get("tags", ())
    }
    schema["tags"] = [{"name": n, "description": d} for n, d in TAGS.items() if n in used]
    for scheme in schema["components"].get("securitySchemes", {}).values():
        scheme.setdefault(
            "description", "Press Authorize and log in with your username and password."
        )
    return schema


def _implied_errors(path: str, operation: Schema, capabilities: Sequence[Capability]) -> set[int]:
    statuses: set[int] = set()
    if operation.get("security"):
        statuses.add(401)
        if any(_can_refuse_a_user(c) for c in capabilities):
            statuses.add(403)
    body = operation.get("requestBody")
    if body:
        statuses.update({413, 422})
        if "multipart/form-data" in body.get("content", {}):
            statuses.update({400, 415})  # 400: broken multipart framing
    if "{" in path:
        statuses.add(404)
    if operation["operationId"] in THROTTLED:
        statuses.add(429)
    return statuses


def _complete_error(status: int, response: Schema, path: str) -> None:
    if status < 400 or status == 422:  # 422 keeps FastAPI's validation-error model
        return
    phrase = HTTPStatus(status).phrase
    description, detail = ERRORS.get(status, (phrase, phrase))
    if status == 404 and (looked_up := re.search(r"\{(\w+)_id\}", path)):
        detail = f"{looked_up.group(1).capitalize()} not found"
    if not response.get("description") or response["description"] == phrase:
        response["description"] = description
    content = response.setdefault("content", {}).setdefault("application/json", {})
    schema = content.setdefault("schema", {"$ref": _ERROR_REF})
    if schema == {"$ref": _ERROR_REF} and "example" not in content and "examples" not in content:
        content["example"] = {"detail": detail}
    if status in _HEADERS:
        response.setdefault("headers", {}).update(_HEADERS[status])


def _can_refuse_a_user(capability: Capability) -> bool:
    needed = MINIMUM_ROLE[capability]
    return needed is not None and needed.rank > min(r.rank for r in Role)


def _capabilities_by_operation(
    routes: Sequence[BaseRoute],
) -> dict[tuple[str, str], list[Capability]]:
    """(path, method) → the capabilities its role guards require, read off the dependencies."""
    found: dict[tuple[str, str], list[Capability]] = {}
    for context in iter_route_contexts(routes):
        dependant = getattr(context, "dependant", None)
        if not isinstance(dependant, Dependant) or not context.path:
            continue
        capabilities = [c for call in _calls(dependant) if (c := getattr(call, "capability", None))]
        for method in context.methods or ():
            found[(context.path, method.lower())] = capabilities
    return found


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)
