"""Hostile payloads: huge numbers, deep nesting, NUL and control characters, broken Unicode.

Each answers a clear 4xx (never a 500 or a recursion error) and leaves the database as it was.
"""

import json

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from models.user import User
from tests.factories import auth_headers, make_item
from tests.security.conftest import snapshot

JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ('{"name": "a", "quantity": 2147483648}', 422),  # 2^31
        ('{"name": "a", "quantity": 9223372036854775808}', 422),  # 2^63
        ('{"name": "a", "quantity": 1' + "0" * 400 + "}", 422),  # 10^400
        ('{"name": "a", "quantity": 1' + "0" * 5000 + "}", 422),  # past Python's digit limit
        ('{"name": "a", "quantity": -9223372036854775809}', 422),
        ('{"name": "a", "quantity": 1e400}', 422),  # overflows to infinity
        ('{"name": "a", "quantity": NaN}', 422),
        ('{"name": "a", "quantity": 1.5}', 422),
        ('{"name": "a", "quantity": "5"}', 422),
        ('{"name": "a", "quantity": true}', 422),
        ('{"name": "a\\u0000b", "quantity": 1}', 422),  # NUL
        ('{"name": "a\\u001bb", "quantity": 1}', 422),  # ESC (terminal escapes)
        ('{"name": "a", "quantity": 1, "sku": "X\\r\\nY"}', 422),  # header/log injection
        ('{"name": "a", "quantity": 1, "description": "\\u0000"}', 422),
        ('{"name": "a\\ud800b", "quantity": 1}', 422),  # lone surrogate
        ('{"name": "a", "quantity": 1, "description": "\\udfff"}', 422),
        ("[" * 5000 + "]" * 5000, 422),  # deeper than the parser's recursion limit
        ('{"a":' * 3000 + "1" + "}" * 3000, 422),
        ("[" * 50 + "]" * 50, 422),  # parses, but is not an item
        ('{"name": "a", "quantity": 1', 422),  # truncated
        ("", 422),
    ],
)
async def test_hostile_item_bodies_are_refused(
    client: AsyncClient, db: AsyncSession, editor: User, body: str, status: int
) -> None:
    headers = {**await auth_headers(db, editor), **JSON}
    before = await snapshot(db)
    r = await client.post("/items", content=body.encode(), headers=headers)
    assert r.status_code == status, r.text
    assert isinstance(r.json()["detail"], list)
    assert await snapshot(db) == before


async def test_invalid_utf8_is_422(client: AsyncClient, db: AsyncSession, editor: User) -> None:
    headers = {**await auth_headers(db, editor), **JSON}
    before = await snapshot(db)
    r = await client.post("/items", content=b'{"name": "\xff\xfe", "quantity": 1}', headers=headers)
    assert r.status_code == 422
    assert await snapshot(db) == before


@pytest.mark.parametrize(
    "path",
    [
        "/items/2147483648",
        "/items/9223372036854775808",
        "/items/1" + "0" * 400,
        "/items/-1",
        "/items/0",
        "/items?skip=1" + "0" * 400,
        "/items?limit=9223372036854775808",
        "/items?min_quantity=-1",
        "/items?q=%00",
        "/items?q=a%1bb",
        "/users/1" + "0" * 400,
    ],
)
async def test_hostile_paths_and_queries_are_422(
    client: AsyncClient, db: AsyncSession, admin: User, path: str
) -> None:
    headers = await auth_headers(db, admin)
    before = await snapshot(db)
    r = await client.get(path, headers=headers)
    assert r.status_code == 422, r.text
    assert await snapshot(db) == before


@pytest.mark.parametrize(
    "patch",
    [
        {"quantity": 2**31},
        {"quantity": -1},
        {"name": "\u0000"},
        {"name": "ok\u0007"},
        {"sku": "\u0085NEL"},  # C1 next line
        {"name": "a\u009b31m"},  # C1 CSI, a terminal escape
        {"name": "one\u2028two"},  # Unicode line separator
        {"description": "\u009b2J"},
        {"name": None},
    ],
)
async def test_hostile_item_updates_change_nothing(
    client: AsyncClient, db: AsyncSession, editor: User, patch: dict[str, object]
) -> None:
    item = await make_item(db, name="Bolt", quantity=3)
    headers = await auth_headers(db, editor)
    before = await snapshot(db)
    r = await client.patch(f"/items/{item.id}", json=patch, headers=headers)
    assert r.status_code == 422
    assert await snapshot(db) == before


@pytest.mark.parametrize(
    "body",
    [
        {"username": "bob\u0000", "password": "long enough pw"},
        {"username": "bob", "password": "long enough pw\ud800"},
        {"username": "bob", "password": "long enough pw", "full_name": "Bob\u001b[2J"},
        {"username": "bob", "password": "x" * 129},
    ],
)
async def test_hostile_user_bodies_are_refused(
    client: AsyncClient, db: AsyncSession, admin: User, body: dict[str, str]
) -> None:
    headers = await auth_headers(db, admin)
    before = await snapshot(db)
    r = await client.post("/users", content=json.dumps(body), headers={**headers, **JSON})
    assert r.status_code == 422
    assert await snapshot(db) == before


async def test_lone_surrogate_in_current_password_is_422(
    client: AsyncClient, db: AsyncSession, viewer: User
) -> None:
    headers = await auth_headers(db, viewer)
    before = await snapshot(db)
    body = {"current_password": "\ud800", "new_password": "another long one"}
    r = await client.post(
        "/users/me/password", content=json.dumps(body), headers={**headers, **JSON}
    )
    assert r.status_code == 422
    assert await snapshot(db) == before


@pytest.mark.parametrize(
    ("token", "status"), [("\ud800", 422), ("a.b.c", 401), ("x" * 4096, 401), ("x" * 4097, 422)]
)
async def test_broken_refresh_tokens_are_refused(
    client: AsyncClient, db: AsyncSession, token: str, status: int
) -> None:
    before = await snapshot(db)
    body = json.dumps({"refresh_token": token})
    r = await client.post("/token/refresh", content=body, headers=JSON)
    assert r.status_code == status, r.text
    assert await snapshot(db) == before


INVISIBLE = ["\u202e", "\u202d", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f"]
INVISIBLE += ["\u200b", "\u061c", "\ufeff"]


@pytest.mark.parametrize("char", INVISIBLE, ids=[f"U+{ord(c):04X}" for c in INVISIBLE])
async def test_text_direction_and_invisible_characters_are_refused_in_one_line_fields(
    client: AsyncClient, db: AsyncSession, admin: User, char: str
) -> None:
    """Issue 14, point 11: "invoice" + U+202E + "gpj.exe" shows as "invoiceexe.jpg" in lists."""
    headers = {**await auth_headers(db, admin), **JSON}
    item = await make_item(db, name="plain")
    await db.commit()
    before = await snapshot(db)
    bodies = [
        ("POST", "/items", {"name": f"invoice{char}gpj.exe", "quantity": 1}),
        ("POST", "/items", {"name": "a", "quantity": 1, "sku": f"SKU{char}1"}),
        ("PATCH", f"/items/{item.id}", {"name": f"x{char}y"}),
        (
            "POST",
            "/users",
            {"username": "bob", "password": "long enough pw", "full_name": f"B{char}b"},
        ),
        ("PATCH", "/users/me", {"full_name": f"Root{char}"}),
    ]
    for method, path, body in bodies:
        r = await client.request(method, path, content=json.dumps(body), headers=headers)
        assert r.status_code == 422, (path, body)
        assert "invisible or text-direction" in r.text
    assert await snapshot(db) == before


async def test_joiners_stay_allowed(client: AsyncClient, db: AsyncSession, admin: User) -> None:
    headers = {**await auth_headers(db, admin), **JSON}
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one emoji, joined by ZWJ
    r = await client.post("/items", json={"name": f"{family} kit", "quantity": 1}, headers=headers)
    assert r.status_code == 201
    assert r.json()["item"]["name"] == f"{family} kit"
