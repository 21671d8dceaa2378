"""Error responses in the OpenAPI document, derived from each route's guards.

A minimal version, so the schema-conformance fuzz run can hold the app to its documentation:
401 wherever a login is needed, 403 wherever a role above viewer is, 413 wherever a body is
read, with the `{"detail": ...}` schema. Routes may document more themselves.
"""

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from api.schemas.common import ErrorOut
from auth.deps import get_principal
from auth.permissions import allows
from models.enums import Role

_ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}
_DESCRIPTIONS = {
    401: "Not logged in, or the token is invalid, expired or revoked",
    403: "The caller's role does not allow this",
    413: "Request body too large",
}


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dep in dependant.dependencies:
        if dep.call is not None:
            yield dep.call
        yield from _calls(dep)


def _error_codes(route: APIRoute) -> list[int]:
    calls = list(_calls(route.dependant))
    codes = []
    if get_principal in calls:
        codes.append(401)
    capabilities = [c.capability for c in calls if hasattr(c, "capability")]
    if any(not allows(Role.viewer, cap) for cap in capabilities):
        codes.append(403)
    if route.body_field is not None:
        codes.append(413)
    return codes


def install_openapi(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault("ErrorOut", ErrorOut.model_json_schema())
        for context in iter_route_contexts(app.router.routes):
            route = context.route
            if not isinstance(route, APIRoute) or not route.include_in_schema:
                continue
            for method in route.methods or ():
                operation = schema["paths"].get(context.path, {}).get(method.lower())
                if operation is None:
                    continue
                responses = operation.setdefault("responses", {})
                for code in _error_codes(route):
                    responses.setdefault(
                        str(code),
                        {
                            "description": _DESCRIPTIONS[code],
                            "content": {"application/json": {"schema": _ERROR_REF}},
                        },
                    )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
