"""The whole schema, route by route: a new route cannot ship undocumented.

Expectations are worked out here from the routes themselves (their dependencies, body and path),
not from api/openapi.py, so a mistake there shows up as a failure here.
"""

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from httpx import AsyncClient

from auth.deps import oauth2_scheme
from auth.permissions import Capability, allows
from models.enums import Role

Schema = dict[str, Any]
ERROR_REF = "#/components/schemas/ErrorOut"
VALIDATION_REF = "#/components/schemas/HTTPValidationError"


@pytest.fixture
async def schema(client: AsyncClient) -> Schema:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    body: Schema = r.json()
    return body


def _operations(schema: Schema) -> Iterator[tuple[str, str, Schema]]:
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            yield path, method, op


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _routes(app: FastAPI) -> dict[tuple[str, str], Any]:
    """(path, method) → the route's context (its .name, .summary, .dependant)."""
    found: dict[tuple[str, str], Any] = {}
    for context in iter_route_contexts(app.router.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and route.include_in_schema:
            for method in context.methods or ():
                found[(str(context.path), method.lower())] = context
    return found


def _component(schema: Schema, ref: str) -> Schema:
    component: Schema = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return component


def _refs(body_schema: Schema) -> list[str]:
    """The named schemas a body uses: one $ref, or an optional one (anyOf with null)."""
    if "$ref" in body_schema:
        return [body_schema["$ref"]]
    options = body_schema.get("anyOf", [])
    assert options, f"anonymous inline schema: {body_schema}"
    refs = [o["$ref"] for o in options if "$ref" in o]
    assert len(refs) + sum(o == {"type": "null"} for o in options) == len(options), body_schema
    return refs


def _expected_errors(path: str, op: Schema, route: Any) -> set[str]:
    calls = list(_calls(route.dependant))
    expected = set()
    if oauth2_scheme in calls:
        expected.add("401")
        capabilities: list[Capability] = [c.capability for c in calls if hasattr(c, "capability")]
        if any(not allows(Role.viewer, c) for c in capabilities):
            expected.add("403")
    if "requestBody" in op:
        expected |= {"413", "422"}
        if "multipart/form-data" in op["requestBody"]["content"]:
            expected.add("415")
    if "{" in path:
        expected.add("404")
    if path == "/token":
        expected.add("429")
    return expected


def test_every_route_is_in_the_schema(app: FastAPI, schema: Schema) -> None:
    documented = {(p, m) for p, m, _ in _operations(schema)}
    assert documented == set(_routes(app))
    assert len(documented) >= 18


def test_operation_ids_are_the_route_names_and_unique(app: FastAPI, schema: Schema) -> None:
    routes = _routes(app)
    ids = [op["operationId"] for _, _, op in _operations(schema)]
    assert len(ids) == len(set(ids))
    for path, method, op in _operations(schema):
        assert re.fullmatch(r"[a-z][a-z0-9_]*", op["operationId"]), op["operationId"]
        assert op["operationId"] == routes[(path, method)].name


def test_every_operation_has_a_described_tag_a_written_summary_and_a_description(
    app: FastAPI, schema: Schema
) -> None:
    described = {t["name"] for t in schema["tags"] if t.get("description")}
    routes = _routes(app)
    for path, method, op in _operations(schema):
        assert op.get("tags"), (method, path)
        assert set(op["tags"]) <= described, (method, path, op["tags"])
        # FastAPI would make one up from the function name; a person writes it.
        assert routes[(path, method)].summary, (method, path)
        assert op.get("description"), (method, path)  # the endpoint's docstring


def test_security_is_declared_exactly_on_guarded_routes(app: FastAPI, schema: Schema) -> None:
    routes = _routes(app)
    for path, method, op in _operations(schema):
        guarded = oauth2_scheme in list(_calls(routes[(path, method)].dependant))
        assert bool(op.get("security")) == guarded, (method, path)
        if guarded:
            assert op["security"] == [{"OAuth2PasswordBearer": []}]


def test_every_error_a_route_can_answer_is_documented(app: FastAPI, schema: Schema) -> None:
    routes = _routes(app)
    for path, method, op in _operations(schema):
        expected = _expected_errors(path, op, routes[(path, method)])
        assert expected <= set(op["responses"]), (method, path, expected - set(op["responses"]))


def test_error_responses_carry_the_error_model_and_an_example(schema: Schema) -> None:
    for path, method, op in _operations(schema):
        for status, response in op["responses"].items():
            if int(status) < 400 or int(status) >= 500:
                continue
            content = response["content"]["application/json"]
            ref = VALIDATION_REF if status == "422" else ERROR_REF
            assert content["schema"] == {"$ref": ref}, (method, path, status)
            if status != "422":
                assert content["example"]["detail"], (method, path, status)
            assert response["description"], (method, path, status)


def test_401_and_429_name_their_headers(schema: Schema) -> None:
    for _, _, op in _operations(schema):
        if "401" in op["responses"] and op.get("security"):
            assert "WWW-Authenticate" in op["responses"]["401"]["headers"]
        if "429" in op["responses"]:
            assert "Retry-After" in op["responses"]["429"]["headers"]


def test_json_bodies_use_named_models_with_examples(schema: Schema) -> None:
    for path, method, op in _operations(schema):
        bodies = []
        request = op.get("requestBody", {}).get("content", {}).get("application/json")
        if request:
            bodies.append(request["schema"])
        for status, response in op["responses"].items():
            media = response.get("content", {}).get("application/json")
            if status.startswith("2") and media:
                bodies.append(media["schema"])
        for body in bodies:
            for ref in _refs(body):
                assert _component(schema, ref).get("examples"), (method, path, ref)


def test_spot_check_create_item(schema: Schema) -> None:
    op = schema["paths"]["/items"]["post"]
    assert set(op["responses"]) == {"201", "401", "403", "409", "413", "422"}
    assert op["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ItemCreate"
    }


def test_spot_check_public_and_own_account_routes(schema: Schema) -> None:
    assert set(schema["paths"]["/items/{item_id}"]["get"]["responses"]) == {
        "200",
        "304",
        "404",
        "422",
    }
    assert "security" not in schema["paths"]["/items"]["get"]
    # Any logged-in role may read its own profile: 401 is possible, 403 is not.
    assert set(schema["paths"]["/users/me"]["get"]["responses"]) == {"200", "401"}
    assert "429" in schema["paths"]["/token"]["post"]["responses"]
