"""/users/me and the admin /users routes, with the database after each write."""

from typing import Any

import pytest
from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncSession

from models.enums import Role
from models.item import Item
from models.user import User
from tests.factories import (
    PASSWORD,
    auth_headers,
    bearer,
    count,
    login_pair,
    make_item,
    make_user,
    row,
    sessions_of,
)

USER_KEYS = {
    "id",
    "username",
    "email",
    "full_name",
    "role",
    "is_active",
    "created_at",
    "updated_at",
}
LAST_ADMIN = {"detail": "This would leave no active admin"}
NEW_PASSWORD = "a brand new passphrase"


def user_json(r: Response) -> dict[str, Any]:
    """The response's user, checked to carry exactly the public fields (never a hash)."""
    user: dict[str, Any] = r.json()["user"]
    assert set(user) == USER_KEYS
    return user


async def can_log_in(client: AsyncClient, username: str, password: str) -> bool:
    r = await client.post("/token", data={"username": username, "password": password})
    return r.status_code == 200


@pytest.fixture
async def admin(db: AsyncSession) -> User:
    return await make_user(db, Role.admin, username="boss")


@pytest.fixture
async def admin_headers(db: AsyncSession, admin: User) -> dict[str, str]:
    return await auth_headers(db, admin)


@pytest.fixture
async def viewer(db: AsyncSession) -> User:
    return await make_user(db, Role.viewer, username="vera", email="vera@example.com")


# --- /users/me --------------------------------------------------------------------------


async def test_me_returns_own_profile(client: AsyncClient, db: AsyncSession, viewer: User) -> None:
    r = await client.get("/users/me", headers=await auth_headers(db, viewer))
    assert r.status_code == 200
    user = user_json(r)
    assert (user["id"], user["username"], user["email"], user["role"], user["is_active"]) == (
        viewer.id,
        "vera",
        "vera@example.com",
        "viewer",
        True,
    )


async def test_patch_me_updates_email_and_name(
    client: AsyncClient, db: AsyncSession, viewer: User
) -> None:
    r = await client.patch(
        "/users/me",
        json={"email": "Vera.New@Example.com", "full_name": "Vera Viewer"},
        headers=await auth_headers(db, viewer),
    )
    assert r.status_code == 200
    assert user_json(r)["email"] == "vera.new@example.com"
    stored = await row(db, User, viewer.id)
    assert stored is not None
    assert (stored["email"], stored["full_name"]) == ("vera.new@example.com", "Vera Viewer")


async def test_patch_me_null_clears_email(
    client: AsyncClient, db: AsyncSession, viewer: User
) -> None:
    r = await client.patch(
        "/users/me", json={"email": None}, headers=await auth_headers(db, viewer)
    )
    assert r.status_code == 200
    stored = await row(db, User, viewer.id)
    assert stored is not None
    assert stored["email"] is None


@pytest.mark.parametrize(
    "payload",
    [
        {"role": "admin"},
        {"is_active": False},
        {"username": "someone"},
        {"password": "a long enough one"},
        {"full_name": "Vera", "role": "editor"},
        {"email": "not an address"},
        {"full_name": " "},
        {"full_name": "x" * 201},
    ],
)
async def test_patch_me_rejects_other_fields_and_changes_nothing(
    client: AsyncClient, db: AsyncSession, viewer: User, payload: dict[str, Any]
) -> None:
    headers = await auth_headers(db, viewer)
    before = await row(db, User, viewer.id)
    r = await client.patch("/users/me", json=payload, headers=headers)
    assert r.status_code == 422
    assert await row(db, User, viewer.id) == before


async def test_patch_me_duplicate_email_is_409(
    client: AsyncClient, db: AsyncSession, viewer: User
) -> None:
    await make_user(db, email="taken@example.com")
    headers = await auth_headers(db, viewer)
    before = await row(db, User, viewer.id)
    r = await client.patch("/users/me", json={"email": "TAKEN@example.com"}, headers=headers)
    assert r.status_code == 409
    assert r.json() == {"detail": "A user with this e-mail already exists"}
    assert await row(db, User, viewer.id) == before


# --- /users/me/password -----------------------------------------------------------------


async def test_change_password_is_204_and_stores_new_hash(
    client: AsyncClient, db: AsyncSession, viewer: User
) -> None:
    before = await row(db, User, viewer.id)
    assert before is not None
    r = await client.post(
        "/users/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=await auth_headers(db, viewer),
    )
    assert r.status_code == 204
    assert r.content == b""
    after = await row(db, User, viewer.id)
    assert after is not None
    assert after["password_hash"] != before["password_hash"]
    assert NEW_PASSWORD not in after["password_hash"]
    assert await can_log_in(client, "vera", NEW_PASSWORD)
    assert not await can_log_in(client, "vera", PASSWORD)


async def test_change_password_revokes_earlier_tokens(
    client: AsyncClient, db: AsyncSession, viewer: User
) -> None:
    access, refresh = await login_pair(db, viewer)
    other_access, _ = await login_pair(db, viewer)
    r = await client.post(
        "/users/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(access),
    )
    assert r.status_code == 204
    for token in (access, other_access):
        r = await client.get("/users/me", headers=bearer(token))
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
    r = await client.post("/token/refresh", json={"refresh_token": refresh})
    assert r.status_code == 401
    assert all(s.revoked_at is not None for s in await sessions_of(db, viewer))


async def test_change_password_with_wrong_current_is_400(
    client: AsyncClient, db: AsyncSession, viewer: User
) -> None:
    headers = await auth_headers(db, viewer)
    before = await row(db, User, viewer.id)
    r = await client.post(
        "/users/me/password",
        json={"current_password": "not my password", "new_password": NEW_PASSWORD},
        headers=headers,
    )
    assert r.status_code == 400
    assert r.json() == {"detail": "Current password is incorrect"}
    assert await row(db, User, viewer.id) == before
    assert (await client.get("/users/me", headers=headers)).status_code == 200


@pytest.mark.parametrize(
    "payload",
    [
        {"current_password": PASSWORD, "new_password": "short"},
        {"current_password": PASSWORD, "new_password": "x" * 129},
        {"current_password": PASSWORD},
        {"new_password": NEW_PASSWORD},
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "role": "admin"},
    ],
    ids=["too short", "too long", "no new", "no current", "extra field"],
)
async def test_change_password_rejects_invalid_body(
    client: AsyncClient, db: AsyncSession, viewer: User, payload: dict[str, Any]
) -> None:
    headers = await auth_headers(db, viewer)
    before = await row(db, User, viewer.id)
    r = await client.post("/users/me/password", json=payload, headers=headers)
    assert r.status_code == 422
    assert await row(db, User, viewer.id) == before
    assert all(s.revoked_at is None for s in await sessions_of(db, viewer))


# --- admin: list ------------------------------------------------------------------------


async def test_list_users_pages_with_total(
    client: AsyncClient, db: AsyncSession, admin: User, admin_headers: dict[str, str]
) -> None:
    others = [await make_user(db) for _ in range(3)]
    r = await client.get("/users", params={"skip": 1, "limit": 2}, headers=admin_headers)
    assert r.status_code == 200
    body = r.json()
    assert (body["total"], body["skip"], body["limit"]) == (4, 1, 2)
    assert [u["id"] for u in body["users"]] == [others[0].id, others[1].id]
    assert all(set(u) == USER_KEYS for u in body["users"])


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"role": "editor"}, ["ed"]),
        ({"role": "admin"}, ["boss"]),
        ({"is_active": "false"}, ["gone"]),
        ({"is_active": "true", "role": "viewer"}, ["vera"]),
        ({"q": "VER"}, ["vera"]),
        ({"q": "example.org"}, ["ed"]),
        ({"q": "smith"}, ["gone"]),
    ],
)
async def test_list_users_filters(
    client: AsyncClient,
    db: AsyncSession,
    admin_headers: dict[str, str],
    viewer: User,
    params: dict[str, str],
    expected: list[str],
) -> None:
    await make_user(db, Role.editor, username="ed", email="ed@example.org")
    gone = await make_user(db, username="gone", is_active=False)
    gone.full_name = "Gone Smith"
    db.add(gone)
    await db.commit()
    r = await client.get("/users", params=params, headers=admin_headers)
    assert r.status_code == 200
    assert [u["username"] for u in r.json()["users"]] == expected
    assert r.json()["total"] == len(expected)


@pytest.mark.parametrize(
    "params", [{"role": "owner"}, {"limit": 0}, {"limit": 101}, {"skip": -1}, {"is_active": "x"}]
)
async def test_list_users_rejects_bad_query(
    client: AsyncClient, admin_headers: dict[str, str], params: dict[str, Any]
) -> None:
    r = await client.get("/users", params=params, headers=admin_headers)
    assert r.status_code == 422


# --- admin: create ----------------------------------------------------------------------


async def test_create_user_defaults_to_viewer(
    client: AsyncClient, db: AsyncSession, admin_headers: dict[str, str]
) -> None:
    r = await client.post(
        "/users",
        json={"username": "NewGuy", "password": PASSWORD, "email": "New@Example.com"},
        headers=admin_headers,
    )
    assert r.status_code == 201, r.text
    user = user_json(r)
    assert (user["username"], user["role"], user["is_active"], user["email"]) == (
        "newguy",
        "viewer",
        True,
        "new@example.com",
    )
    assert r.headers["location"] == f"/users/{user['id']}"
    stored = await row(db, User, user["id"])
    assert stored is not None
    assert (stored["username"], stored["role"]) == ("newguy", Role.viewer)
    assert stored["password_hash"].startswith("$argon2id$")
    assert await can_log_in(client, "NEWGUY", PASSWORD)


async def test_create_user_with_role(
    client: AsyncClient, db: AsyncSession, admin_headers: dict[str, str]
) -> None:
    r = await client.post(
        "/users",
        json={"username": "eddie", "password": PASSWORD, "role": "editor", "full_name": "Ed"},
        headers=admin_headers,
    )
    assert r.status_code == 201
    stored = await row(db, User, user_json(r)["id"])
    assert stored is not None
    assert (stored["role"], stored["full_name"]) == (Role.editor, "Ed")


async def test_create_user_duplicate_username_ignoring_case_is_409(
    client: AsyncClient, db: AsyncSession, admin_headers: dict[str, str], viewer: User
) -> None:
    before = await count(db, User)
    r = await client.post(
        "/users", json={"username": "VERA", "password": PASSWORD}, headers=admin_headers
    )
    assert r.status_code == 409
    assert r.json() == {"detail": "A user with this username already exists"}
    assert await count(db, User) == before


async def test_create_user_duplicate_email_is_409(
    client: AsyncClient, db: AsyncSession, admin_headers: dict[str, str], viewer: User
) -> None:
    before = await count(db, User)
    r = await client.post(
        "/users",
        json={"username": "vera2", "password": PASSWORD, "email": "VERA@example.com"},
        headers=admin_headers,
    )
    assert r.status_code == 409
    assert r.json() == {"detail": "A user with this e-mail already exists"}
    assert await count(db, User) == before


@pytest.mark.parametrize(
    "username",
    ["ab", "x" * 51, "has space", "ünïcode", "a/b", "semi;colon", "", "tab\there", "bob\n"],
)
async def test_create_user_rejects_bad_username(
    client: AsyncClient, db: AsyncSession, admin_headers: dict[str, str], username: str
) -> None:
    before = await count(db, User)
    r = await client.post(
        "/users", json={"username": username, "password": PASSWORD}, headers=admin_headers
    )
    assert r.status_code == 422
    assert await count(db, User) == before


@pytest.mark.parametrize("username", ["abc", "x" * 50, "a.b_c-d@e.org", "Mixed.Case9"])
async def test_create_user_accepts_valid_username(
    client: AsyncClient, db: AsyncSession, admin_headers: dict[str, str], username: str
) -> None:
    r = await client.post(
        "/users", json={"username": username, "password": PASSWORD}, headers=admin_headers
    )
    assert r.status_code == 201
    stored = await row(db, User, user_json(r)["id"])
    assert stored is not None
    assert stored["username"] == username.lower()


@pytest.mark.parametrize(
    ("password", "status"), [("x" * 7, 422), ("x" * 8, 201), ("x" * 128, 201), ("x" * 129, 422)]
)
async def test_create_user_password_length(
    client: AsyncClient, db: AsyncSession, admin_headers: dict[str, str], password: str, status: int
) -> None:
    before = await count(db, User)
    r = await client.post(
        "/users", json={"username": "pwtest", "password": password}, headers=admin_headers
    )
    assert r.status_code == status
    assert await count(db, User) == before + (status == 201)


@pytest.mark.parametrize(
    "payload",
    [
        {"username": "newbie", "password": PASSWORD, "role": "owner"},
        {"username": "newbie", "password": PASSWORD, "is_active": False},
        {"username": "newbie", "password": PASSWORD, "password_hash": "x"},
        {"username": "newbie"},
        {"password": PASSWORD},
        {"username": "newbie", "password": PASSWORD, "email": "nope"},
    ],
)
async def test_create_user_rejects_invalid_body(
    client: AsyncClient, db: AsyncSession, admin_headers: dict[str, str], payload: dict[str, Any]
) -> None:
    before = await count(db, User)
    r = await client.post("/users", json=payload, headers=admin_headers)
    assert r.status_code == 422
    assert await count(db, User) == before


# --- admin: get / patch / delete --------------------------------------------------------


async def test_get_user(client: AsyncClient, admin_headers: dict[str, str], viewer: User) -> None:
    r = await client.get(f"/users/{viewer.id}", headers=admin_headers)
    assert r.status_code == 200
    assert user_json(r)["username"] == "vera"


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_missing_user_is_404(
    client: AsyncClient, admin_headers: dict[str, str], method: str
) -> None:
    r = await client.request(method, "/users/9999", json={}, headers=admin_headers)
    assert r.status_code == 404
    assert r.json() == {"detail": "User not found"}


@pytest.mark.parametrize("user_id", ["abc", "0", str(2**31)])
async def test_invalid_user_id_is_422(
    client: AsyncClient, admin_headers: dict[str, str], user_id: str
) -> None:
    r = await client.get(f"/users/{user_id}", headers=admin_headers)
    assert r.status_code == 422


async def test_patch_user_changes_role(
    client: AsyncClient, db: AsyncSession, admin_headers: dict[str, str], viewer: User
) -> None:
    r = await client.patch(f"/users/{viewer.id}", json={"role": "editor"}, headers=admin_headers)
    assert r.status_code == 200
    assert user_json(r)["role"] == "editor"
    stored = await row(db, User, viewer.id)
    assert stored is not None
    assert stored["role"] == Role.editor


async def test_demotion_applies_to_the_next_request(
    client: AsyncClient, db: AsyncSession, admin_headers: dict[str, str]
) -> None:
    editor = await make_user(db, Role.editor)
    headers = await auth_headers(db, editor)
    r = await client.patch(f"/users/{editor.id}", json={"role": "viewer"}, headers=admin_headers)
    assert r.status_code == 200
    r = await client.post("/items", json={"name": "A", "quantity": 1}, headers=headers)
    assert r.status_code == 403
    assert await count(db, Item) == 0


@pytest.mark.parametrize(
    "payload",
    [
        {"role": "owner"},
        {"is_active": "no"},
        {"username": "renamed"},
        {"password": "short"},
        {"password_hash": "x"},
    ],
)
async def test_patch_user_rejects_invalid_body(
    client: AsyncClient,
    db: AsyncSession,
    admin_headers: dict[str, str],
    viewer: User,
    payload: dict[str, Any],
) -> None:
    before = await row(db, User, viewer.id)
    r = await client.patch(f"/users/{viewer.id}", json=payload, headers=admin_headers)
    assert r.status_code == 422
    assert await row(db, User, viewer.id) == before


@pytest.mark.parametrize("field", ["role", "is_active", "password"])
async def test_patch_user_null_for_required_field_is_422(
    client: AsyncClient, db: AsyncSession, admin_headers: dict[str, str], viewer: User, field: str
) -> None:
    before = await row(db, User, viewer.id)
    r = await client.patch(f"/users/{viewer.id}", json={field: None}, headers=admin_headers)
    assert r.status_code == 422
    assert await row(db, User, viewer.id) == before


async def test_patch_user_duplicate_email_is_409(
    client: AsyncClient, db: AsyncSession, admin_headers: dict[str, str], viewer: User
) -> None:
    other = await make_user(db, email="other@example.com")
    before = await row(db, User, other.id)
    r = await client.patch(
        f"/users/{other.id}", json={"email": "Vera@Example.com"}, headers=admin_headers
    )
    assert r.status_code == 409
    assert r.json() == {"detail": "A user with this e-mail already exists"}
    assert await row(db, User, other.id) == before


async def test_list_users_q_ignores_case_of_non_ascii_letters(
    client: AsyncClient, db: AsyncSession, admin_headers: dict[str, str]
) -> None:
    user = await make_user(db, username="zoe")
    user.full_name = "ZOË ÅBERG"
    db.add(user)
    await db.commit()
    r = await client.get("/users", params={"q": "åberg"}, headers=admin_headers)
    assert [u["username"] for u in r.json()["users"]] == ["zoe"]


async def test_disabling_user_revokes_their_tokens(
    client: AsyncClient, db: AsyncSession, admin_headers: dict[str, str], viewer: User
) -> None:
    access, refresh = await login_pair(db, viewer)
    r = await client.patch(f"/users/{viewer.id}", json={"is_active": False}, headers=admin_headers)
    assert r.status_code == 200
    assert user_json(r)["is_active"] is False
    r = await client.get("/users/me", headers=bearer(access))
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert (await client.post("/token/refresh", json={"refresh_token": refresh})).status_code == 401
    assert all(s.revoked_at is not None for s in await sessions_of(db, viewer))
    assert not await can_log_in(client, "vera", PASSWORD)


async def test_reenabling_does_not_revive_old_tokens(
    client: AsyncClient, db: AsyncSession, admin_headers: dict[str, str], viewer: User
) -> None:
    access, _ = await login_pair(db, viewer)
    await client.patch(f"/users/{viewer.id}", json={"is_active": False}, headers=admin_headers)
    r = await client.patch(f"/users/{viewer.id}", json={"is_active": True}, headers=admin_headers)
    assert r.status_code == 200
    assert (await client.get("/users/me", headers=bearer(access))).status_code == 401
    assert await can_log_in(client, "vera", PASSWORD)


async def test_admin_password_reset_revokes_tokens(
    client: AsyncClient, db: AsyncSession, admin_headers: dict[str, str], viewer: User
) -> None:
    access, _ = await login_pair(db, viewer)
    before = await row(db, User, viewer.id)
    assert before is not None
    r = await client.patch(
        f"/users/{viewer.id}", json={"password": NEW_PASSWORD}, headers=admin_headers
    )
    assert r.status_code == 200
    user_json(r)
    assert (await client.get("/users/me", headers=bearer(access))).status_code == 401
    after = await row(db, User, viewer.id)
    assert after is not None
    assert after["password_hash"] != before["password_hash"]
    assert await can_log_in(client, "vera", NEW_PASSWORD)


async def test_profile_change_keeps_tokens(
    client: AsyncClient, db: AsyncSession, admin_headers: dict[str, str], viewer: User
) -> None:
    access, _ = await login_pair(db, viewer)
    r = await client.patch(f"/users/{viewer.id}", json={"full_name": "V"}, headers=admin_headers)
    assert r.status_code == 200
    assert (await client.get("/users/me", headers=bearer(access))).status_code == 200


async def test_delete_user_keeps_their_items(
    client: AsyncClient, db: AsyncSession, admin_headers: dict[str, str]
) -> None:
    editor = await make_user(db, Role.editor)
    await login_pair(db, editor)
    item = await make_item(db, created_by_id=editor.id, updated_by_id=editor.id)
    r = await client.delete(f"/users/{editor.id}", headers=admin_headers)
    assert r.status_code == 204
    assert r.content == b""
    assert await row(db, User, editor.id) is None
    assert await sessions_of(db, editor) == []
    kept = await row(db, Item, item.id)
    assert kept is not None
    assert (kept["created_by_id"], kept["updated_by_id"]) == (None, None)


async def test_deleted_users_token_is_401(
    client: AsyncClient, db: AsyncSession, admin_headers: dict[str, str], viewer: User
) -> None:
    access, _ = await login_pair(db, viewer)
    assert (await client.delete(f"/users/{viewer.id}", headers=admin_headers)).status_code == 204
    r = await client.get("/users/me", headers=bearer(access))
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"


# --- the last active admin --------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "payload"),
    [
        ("PATCH", {"role": "editor"}),
        ("PATCH", {"role": "viewer"}),
        ("PATCH", {"is_active": False}),
        ("PATCH", {"role": "viewer", "full_name": "Still here"}),
        ("DELETE", None),
    ],
)
async def test_last_admin_cannot_remove_themselves(
    client: AsyncClient,
    db: AsyncSession,
    admin: User,
    admin_headers: dict[str, str],
    method: str,
    payload: dict[str, Any] | None,
) -> None:
    before = await row(db, User, admin.id)
    r = await client.request(method, f"/users/{admin.id}", json=payload, headers=admin_headers)
    assert r.status_code == 409
    assert r.json() == LAST_ADMIN
    assert await row(db, User, admin.id) == before
    assert (await client.get("/users/me", headers=admin_headers)).status_code == 200


async def test_disabled_admin_does_not_count_as_remaining(
    client: AsyncClient, db: AsyncSession, admin: User, admin_headers: dict[str, str]
) -> None:
    await make_user(db, Role.admin, is_active=False)
    before = await row(db, User, admin.id)
    r = await client.patch(f"/users/{admin.id}", json={"role": "viewer"}, headers=admin_headers)
    assert r.status_code == 409
    assert await row(db, User, admin.id) == before


async def test_with_two_admins_one_can_be_demoted(
    client: AsyncClient, db: AsyncSession, admin_headers: dict[str, str]
) -> None:
    other = await make_user(db, Role.admin)
    r = await client.patch(f"/users/{other.id}", json={"role": "editor"}, headers=admin_headers)
    assert r.status_code == 200
    stored = await row(db, User, other.id)
    assert stored is not None
    assert stored["role"] == Role.editor


async def test_with_two_admins_one_can_demote_themselves(
    client: AsyncClient, db: AsyncSession, admin: User, admin_headers: dict[str, str]
) -> None:
    await make_user(db, Role.admin)
    r = await client.patch(f"/users/{admin.id}", json={"role": "viewer"}, headers=admin_headers)
    assert r.status_code == 200
    stored = await row(db, User, admin.id)
    assert stored is not None
    assert stored["role"] == Role.viewer
    assert (await client.get("/users", headers=admin_headers)).status_code == 403


async def test_with_two_admins_one_can_be_deleted(
    client: AsyncClient, db: AsyncSession, admin_headers: dict[str, str]
) -> None:
    other = await make_user(db, Role.admin)
    r = await client.delete(f"/users/{other.id}", headers=admin_headers)
    assert r.status_code == 204
    assert await row(db, User, other.id) is None
