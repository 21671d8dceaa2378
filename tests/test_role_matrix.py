"""Every route by every kind of caller, checked against the one role table in auth/permissions.

The routes are read from a throwaway app at collection time and each route's capability from
its guard dependency, so a new route is in the matrix without anyone adding it here.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from auth.permissions import Capability, allows, role_table_markdown
from models.enums import Role
from tests.factories import auth_headers, make_item, make_user

README = Path(__file__).resolve().parent.parent / "README.md"
# Writes that must stay open to anonymous callers: they are how one logs in.
PUBLIC_WRITES = {("POST", "/token"), ("POST", "/token/refresh")}
CALLERS = ["anonymous", "viewer", "editor", "admin", "disabled"]


@dataclass(frozen=True)
class RouteCase:
    method: str
    path: str
    guards: frozenset[Capability]

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What a caller needs: the guards' capabilities; unguarded routes are public reads."""
        return self.guards or frozenset({Capability.read})

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def guard_capabilities(dependant: Dependant) -> Iterator[Capability]:
    """The capability of every `auth.deps.require(...)` guard in the dependency tree."""
    for dep in dependant.dependencies:
        capability = getattr(dep.call, "capability", None)
        if isinstance(capability, Capability):
            yield capability
        yield from guard_capabilities(dep)


def route_cases() -> list[RouteCase]:
    cases = []
    for context in iter_route_contexts(create_app().router.routes):
        if not isinstance(context.route, APIRoute):
            continue
        assert context.path is not None
        dependant = getattr(context, "dependant", None) or context.route.dependant
        guards = frozenset(guard_capabilities(dependant))
        for method in sorted(context.methods or ()):
            cases.append(RouteCase(method, context.path, guards))
    return cases


ROUTES = route_cases()


# The contract's routes and the capability each needs (docs/api.md). A route missing here
# is still in the matrix; this pins the ones the contract names, so a wrong guard is caught.
CONTRACT = {
    "POST /token": Capability.read,
    "POST /token/refresh": Capability.read,
    "POST /logout": Capability.own_account,
    "GET /items": Capability.read,
    "GET /items/{item_id}": Capability.read,
    "POST /items": Capability.edit_items,
    "PATCH /items/{item_id}": Capability.edit_items,
    "DELETE /items/{item_id}": Capability.delete_items,
    "GET /users/me": Capability.own_account,
    "PATCH /users/me": Capability.own_account,
    "POST /users/me/password": Capability.own_account,
    "GET /users": Capability.manage_users,
    "POST /users": Capability.manage_users,
    "GET /users/{user_id}": Capability.manage_users,
    "PATCH /users/{user_id}": Capability.manage_users,
    "DELETE /users/{user_id}": Capability.manage_users,
    "PATCH /item-image/{item_id}": Capability.edit_items,
    "DELETE /item-image/{item_id}": Capability.edit_items,
    "GET /static/{file}": Capability.read,
    "POST /items/{item_id}/adjust": Capability.edit_items,
    "GET /items/{item_id}/movements": Capability.read_movements,
    "GET /movements": Capability.read_movements,
    "GET /audit": Capability.read_audit,
    "GET /health": Capability.read,
    "GET /ready": Capability.read,
}


@pytest.mark.parametrize(("route", "capability"), CONTRACT.items())
def test_contract_route_has_its_capability(route: str, capability: Capability) -> None:
    found = {str(r): r.capabilities for r in ROUTES}
    assert route in found, f"{route} is not served"
    assert found[route] == {capability}


@pytest.mark.parametrize("route", [r for r in ROUTES if r.method != "GET"], ids=str)
def test_every_write_is_guarded(route: RouteCase) -> None:
    if (route.method, route.path) in PUBLIC_WRITES:
        assert not route.guards
    else:
        assert route.guards, f"{route} has no auth.deps.require(...) guard"


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("route", ROUTES, ids=str)
async def test_role_matrix(
    client: AsyncClient, db: AsyncSession, route: RouteCase, caller: str
) -> None:
    item = await make_item(db)
    target = await make_user(db)
    headers: dict[str, str] = {}
    role: Role | None = None
    if caller == "disabled":
        # The strongest role, yet disabled: refused as if anonymous.
        headers = await auth_headers(db, await make_user(db, Role.admin, is_active=False))
    elif caller != "anonymous":
        role = Role(caller)
        headers = await auth_headers(db, await make_user(db, role))
    # Another active admin, so an admin acting on themselves never meets the last-admin rule.
    await make_user(db, Role.admin)
    path = route.path.format(item_id=item.id, user_id=target.id, file=f"{'0' * 32}.png")

    r = await client.request(route.method, path, headers=headers, json={})

    allowed = all(allows(role, c) for c in route.capabilities)
    if allowed:
        assert r.status_code not in (401, 403), r.text
        assert r.status_code < 500, r.text
    elif role is None:
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"] == "Bearer"
    else:
        assert r.status_code == 403, r.text
        assert r.json() == {"detail": "Your role does not allow this"}


def test_readme_role_table_matches_permissions() -> None:
    match = re.search(
        r"<!-- role-table -->\n(.*?)\n<!-- /role-table -->", README.read_text(), re.DOTALL
    )
    assert match, "README.md lacks the <!-- role-table --> markers"
    assert match.group(1).strip() == role_table_markdown()
