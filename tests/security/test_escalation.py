"""Privilege escalation: every field a client must not set, and every route a role must not use."""

from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from models.enums import Role
from models.user import User
from tests.factories import auth_headers, make_item, make_user
from tests.security.conftest import snapshot

# Server-owned item fields a client might try to set (mass assignment).
ITEM_FIELDS: dict[str, Any] = {
    "id": 999,
    "created_by": 1,
    "created_by_id": 1,
    "updated_by_id": 1,
    "version": 99,
    "image_src": "../../etc/passwd",
    "image_url": "https://evil.example/x.png",
    "created_at": "2000-01-01T00:00:00Z",
    "updated_at": "2000-01-01T00:00:00Z",
}
# Fields of a user the user may not set on themselves.
SELF_FIELDS: dict[str, Any] = {
    "role": "admin",
    "is_active": True,
    "id": 1,
    "username": "root",
    "password": "a new long password",
    "password_hash": "$argon2id$v=19$m=64,t=1,p=1$x$y",
    "created_at": "2000-01-01T00:00:00Z",
}


def _smuggled(
    role: Role, method: str, path: str, body: dict[str, Any], fields: dict[str, Any]
) -> list[Any]:
    return [
        pytest.param(role, method, path, {**body, field: value}, id=f"{method} {path} {field}")
        for field, value in fields.items()
    ]


# Each write with each field its caller must not set.
SMUGGLED = [
    *_smuggled(Role.editor, "POST", "/items", {"name": "Bolt", "quantity": 1}, ITEM_FIELDS),
    *_smuggled(Role.editor, "PATCH", "/items/{item}", {}, ITEM_FIELDS),
    *_smuggled(Role.viewer, "PATCH", "/users/me", {}, SELF_FIELDS),
    *_smuggled(
        Role.admin,
        "POST",
        "/users",
        {"username": "newbie", "password": "long enough pw"},
        {
            f: SELF_FIELDS.get(f, 1)
            for f in ["id", "password_hash", "is_active", "created_at", "version"]
        },
    ),
    *_smuggled(
        Role.admin,
        "PATCH",
        "/users/{viewer}",
        {},
        {f: SELF_FIELDS[f] for f in ["id", "username", "password_hash", "created_at"]},
    ),
]


@pytest.mark.parametrize(("role", "method", "path", "body"), SMUGGLED)
async def test_fields_a_caller_must_not_set_are_refused(
    client: AsyncClient,
    db: AsyncSession,
    admin: User,
    editor: User,
    viewer: User,
    role: Role,
    method: str,
    path: str,
    body: dict[str, Any],
) -> None:
    item = await make_item(db)
    url = path.format(item=item.id, viewer=viewer.id)
    headers = await auth_headers(
        db, {Role.admin: admin, Role.editor: editor, Role.viewer: viewer}[role]
    )
    before = await snapshot(db)
    r = await client.request(method, url, json=body, headers=headers)
    assert r.status_code == 422
    assert await snapshot(db) == before


ADMIN_ONLY = [
    ("GET", "/users", None),
    ("GET", "/users/{other}", None),
    ("GET", "/users/{self}", None),
    ("POST", "/users", {"username": "sneaky", "password": "long enough pw", "role": "admin"}),
    ("PATCH", "/users/{self}", {"role": "admin"}),
    ("PATCH", "/users/{self}", {"is_active": True}),
    ("PATCH", "/users/{other}", {"password": "taken over now"}),
    ("PATCH", "/users/{other}", {"is_active": False}),
    ("DELETE", "/users/{other}", None),
    ("DELETE", "/items/{item}", None),
]


@pytest.mark.parametrize("role", [Role.viewer, Role.editor])
@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ONLY)
async def test_non_admins_cannot_reach_admin_routes(
    client: AsyncClient,
    db: AsyncSession,
    admin: User,
    role: Role,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    caller = await make_user(db, role)
    item = await make_item(db)
    url = path.format(self=caller.id, other=admin.id, item=item.id)
    headers = await auth_headers(db, caller)
    before = await snapshot(db)
    r = await client.request(method, url, json=body, headers=headers)
    assert r.status_code == 403
    assert r.json() == {"detail": "Your role does not allow this"}
    assert await snapshot(db) == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/items", {"name": "Bolt", "quantity": 1}),
        ("PATCH", "/items/{item}", {"quantity": 0}),
    ],
)
async def test_viewers_cannot_write_items(
    client: AsyncClient,
    db: AsyncSession,
    viewer: User,
    method: str,
    path: str,
    body: dict[str, Any],
) -> None:
    item = await make_item(db)
    url = path.format(item=item.id)
    headers = await auth_headers(db, viewer)
    before = await snapshot(db)
    r = await client.request(method, url, json=body, headers=headers)
    assert r.status_code == 403
    assert await snapshot(db) == before


async def test_unknown_user_id_is_403_not_404_for_non_admins(
    client: AsyncClient, db: AsyncSession, viewer: User
) -> None:
    """A non-admin learns nothing about which user ids exist."""
    headers = await auth_headers(db, viewer)
    before = await snapshot(db)
    r = await client.get("/users/424242", headers=headers)
    assert r.status_code == 403
    assert await snapshot(db) == before


async def test_last_admin_cannot_demote_themselves(
    client: AsyncClient, db: AsyncSession, admin: User
) -> None:
    admin_id = admin.id
    headers = await auth_headers(db, admin)
    before = await snapshot(db)
    r = await client.patch(f"/users/{admin_id}", json={"role": "editor"}, headers=headers)
    assert r.status_code == 409
    assert await snapshot(db) == before
