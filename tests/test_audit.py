"""The audit trail: every write route records its event (actor, action, target, changes) in the
transaction of its change, GET /audit reads them, and no secret is ever in one."""

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from httpx import AsyncClient, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.audit_event import AuditEvent
from models.enums import Role
from models.item import Item
from models.user import User
from tests.factories import PASSWORD, auth_headers, bearer, count, fresh, login_pair, make_user
from tests.imagefiles import png
from tests.stock_checks import assert_movements_add_up
from tests.test_role_matrix import ROUTES


@dataclass
class Ctx:
    client: AsyncClient
    db: AsyncSession
    admin: User
    editor: User
    admin_headers: dict[str, str]
    editor_headers: dict[str, str]
    item_id: int


@dataclass
class Expected:
    action: str
    actor: User | None
    target: tuple[str, int] | None
    changes: dict[str, Any]


Case = Callable[[Ctx], Awaitable[tuple[Response, Expected]]]
CASES: dict[str, Case] = {}


def case(route: str) -> Callable[[Case], Case]:
    def register(fn: Case) -> Case:
        CASES[route] = fn
        return fn

    return register


@case("POST /token")
async def _login(c: Ctx) -> tuple[Response, Expected]:
    r = await c.client.post("/token", data={"username": c.editor.username, "password": PASSWORD})
    return r, Expected("auth.login", c.editor, ("user", c.editor.id), {})


@case("POST /token/refresh")
async def _refresh_reuse(c: Ctx) -> tuple[Response, Expected]:
    _, refresh = await login_pair(c.db, c.editor)
    assert (await c.client.post("/token/refresh", json={"refresh_token": refresh})).is_success
    r = await c.client.post("/token/refresh", json={"refresh_token": refresh})
    assert r.status_code == 401
    return r, Expected("auth.refresh_reuse", c.editor, ("user", c.editor.id), {})


@case("POST /logout")
async def _logout(c: Ctx) -> tuple[Response, Expected]:
    r = await c.client.post("/logout", headers=c.editor_headers)
    return r, Expected("auth.logout", c.editor, ("user", c.editor.id), {})


@case("POST /items")
async def _create_item(c: Ctx) -> tuple[Response, Expected]:
    body = {"name": "Nut", "quantity": 3, "sku": "NUT", "reorder_level": 1}
    r = await c.client.post("/items", json=body, headers=c.editor_headers)
    changes = {
        "name": {"old": None, "new": "Nut"},
        "quantity": {"old": None, "new": 3},
        "description": {"old": None, "new": None},
        "sku": {"old": None, "new": "NUT"},
        "reorder_level": {"old": None, "new": 1},
    }
    return r, Expected("item.create", c.editor, ("item", r.json()["item"]["id"]), changes)


@case("PATCH /items/{item_id}")
async def _update_item(c: Ctx) -> tuple[Response, Expected]:
    body = {"name": "Renamed", "quantity": 9, "description": None}
    r = await c.client.patch(f"/items/{c.item_id}", json=body, headers=c.editor_headers)
    changes = {"name": {"old": "Bolt", "new": "Renamed"}, "quantity": {"old": 5, "new": 9}}
    return r, Expected("item.update", c.editor, ("item", c.item_id), changes)


@case("DELETE /items/{item_id}")
async def _delete_item(c: Ctx) -> tuple[Response, Expected]:
    r = await c.client.delete(f"/items/{c.item_id}", headers=c.admin_headers)
    changes = {
        "name": {"old": "Bolt", "new": None},
        "quantity": {"old": 5, "new": None},
        "description": {"old": None, "new": None},
        "sku": {"old": "BOLT", "new": None},
        "reorder_level": {"old": None, "new": None},
        "image_src": {"old": None, "new": None},
    }
    return r, Expected("item.delete", c.admin, ("item", c.item_id), changes)


@case("POST /items/{item_id}/adjust")
async def _adjust(c: Ctx) -> tuple[Response, Expected]:
    body = {"delta": -2, "reason": "sold"}
    r = await c.client.post(f"/items/{c.item_id}/adjust", json=body, headers=c.editor_headers)
    changes = {"quantity": {"old": 5, "new": 3}}
    return r, Expected("item.adjust", c.editor, ("item", c.item_id), changes)


@case("PATCH /item-image/{item_id}")
async def _upload_image(c: Ctx) -> tuple[Response, Expected]:
    files = {"file": ("bolt.png", png(), "image/png")}
    r = await c.client.patch(f"/item-image/{c.item_id}", files=files, headers=c.editor_headers)
    changes = {"image_src": {"old": None, "new": r.json()["item"]["image_src"]}}
    return r, Expected("item.image", c.editor, ("item", c.item_id), changes)


@case("DELETE /item-image/{item_id}")
async def _remove_image(c: Ctx) -> tuple[Response, Expected]:
    files = {"file": ("bolt.png", png(), "image/png")}
    up = await c.client.patch(f"/item-image/{c.item_id}", files=files, headers=c.editor_headers)
    name = up.json()["item"]["image_src"]
    r = await c.client.delete(f"/item-image/{c.item_id}", headers=c.editor_headers)
    changes = {"image_src": {"old": name, "new": None}}
    return r, Expected("item.image", c.editor, ("item", c.item_id), changes)


@case("PATCH /users/me")
async def _update_me(c: Ctx) -> tuple[Response, Expected]:
    body = {"email": "Eddie@Example.com", "full_name": "Eddie E."}
    r = await c.client.patch("/users/me", json=body, headers=c.editor_headers)
    changes = {
        "email": {"old": None, "new": "eddie@example.com"},
        "full_name": {"old": None, "new": "Eddie E."},
    }
    return r, Expected("user.update", c.editor, ("user", c.editor.id), changes)


@case("POST /users/me/password")
async def _change_password(c: Ctx) -> tuple[Response, Expected]:
    body = {"current_password": PASSWORD, "new_password": "a new long secret"}
    r = await c.client.post("/users/me/password", json=body, headers=c.editor_headers)
    return r, Expected("user.password", c.editor, ("user", c.editor.id), {})


@case("POST /users")
async def _create_user(c: Ctx) -> tuple[Response, Expected]:
    body = {"username": "Newbie", "password": "new user secret", "role": "editor"}
    r = await c.client.post("/users", json=body, headers=c.admin_headers)
    changes = {
        "username": {"old": None, "new": "newbie"},
        "email": {"old": None, "new": None},
        "full_name": {"old": None, "new": None},
        "role": {"old": None, "new": "editor"},
        "is_active": {"old": None, "new": True},
    }
    return r, Expected("user.create", c.admin, ("user", r.json()["user"]["id"]), changes)


@case("PATCH /users/{user_id}")
async def _update_user(c: Ctx) -> tuple[Response, Expected]:
    body = {"role": "viewer", "is_active": False, "full_name": "Ed"}
    r = await c.client.patch(f"/users/{c.editor.id}", json=body, headers=c.admin_headers)
    changes = {
        "full_name": {"old": None, "new": "Ed"},
        "role": {"old": "editor", "new": "viewer"},
        "is_active": {"old": True, "new": False},
    }
    return r, Expected("user.update", c.admin, ("user", c.editor.id), changes)


@case("DELETE /users/{user_id}")
async def _delete_user(c: Ctx) -> tuple[Response, Expected]:
    r = await c.client.delete(f"/users/{c.editor.id}", headers=c.admin_headers)
    changes = {
        "username": {"old": "eddie", "new": None},
        "email": {"old": None, "new": None},
        "full_name": {"old": None, "new": None},
        "role": {"old": "editor", "new": None},
        "is_active": {"old": True, "new": None},
    }
    return r, Expected("user.delete", c.admin, ("user", c.editor.id), changes)


def test_every_write_route_has_an_audit_case() -> None:
    """A new write route cannot ship without its audit event: add its case above."""
    assert sorted(str(r) for r in ROUTES if r.method != "GET") == sorted(CASES)


@pytest.fixture
async def ctx(client: AsyncClient, db: AsyncSession) -> Ctx:
    admin = await make_user(db, Role.admin, username="root")
    editor = await make_user(db, Role.editor, username="eddie")
    r = await client.post(
        "/items",
        json={"name": "Bolt", "quantity": 5, "sku": "BOLT"},
        headers=await auth_headers(db, editor),
    )
    ctx = Ctx(
        client,
        db,
        admin,
        editor,
        await auth_headers(db, admin),
        await auth_headers(db, editor),
        r.json()["item"]["id"],
    )
    await _events(db)  # the item's creation: not what the cases look at
    return ctx


async def _events(db: AsyncSession, after: int = 0) -> list[AuditEvent]:
    await fresh(db)
    stmt = select(AuditEvent).where(AuditEvent.id > after).order_by(AuditEvent.id)
    return list(await db.scalars(stmt))


@pytest.mark.parametrize("route", sorted(CASES))
async def test_each_write_records_its_event(ctx: Ctx, route: str) -> None:
    already = max((e.id for e in await _events(ctx.db)), default=0)

    r, expected = await CASES[route](ctx)

    assert r.status_code < 500, r.text
    events = [e for e in await _events(ctx.db, already) if e.action == expected.action]
    event = events[-1]
    actor = expected.actor
    assert (event.actor_id, event.actor_username) == (
        (actor.id, actor.username) if actor else (None, None)
    )
    assert (event.target_type, event.target_id) == (expected.target or (None, None))
    assert event.changes == expected.changes
    assert event.address == "127.0.0.1"
    assert event.request_id == r.headers["x-request-id"]


async def test_a_refused_write_records_nothing(ctx: Ctx) -> None:
    already = await count(ctx.db, AuditEvent)
    r = await ctx.client.post(
        f"/items/{ctx.item_id}/adjust",
        json={"delta": -6, "reason": "sold"},
        headers=ctx.editor_headers,
    )
    assert r.status_code == 409
    r = await ctx.client.post(
        "/items", json={"name": "Dup", "quantity": 1, "sku": "BOLT"}, headers=ctx.editor_headers
    )
    assert r.status_code == 409
    assert await count(ctx.db, AuditEvent) == already


async def test_a_failed_login_is_recorded_though_it_answers_401(ctx: Ctx) -> None:
    r = await ctx.client.post("/token", data={"username": "eddie", "password": "wrong one!"})
    assert r.status_code == 401
    [event] = await _events(ctx.db, max(e.id for e in await _events(ctx.db)) - 1)
    assert (event.action, event.actor_id, event.target_id) == ("auth.login_failed", None, None)


async def test_a_failed_commit_leaves_no_event(ctx: Ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    """The event is in the change's transaction: when that does not commit, neither does it."""
    already = await count(ctx.db, AuditEvent)

    async def refuse(self: AsyncSession) -> None:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(AsyncSession, "commit", refuse)
    r = await ctx.client.post(
        "/items", json={"name": "Lost", "quantity": 1}, headers=ctx.editor_headers
    )
    monkeypatch.undo()
    assert r.status_code == 500
    assert await count(ctx.db, AuditEvent) == already
    assert await count(ctx.db, Item) == 1


async def test_audit_reads_newest_first_filtered_and_paged(ctx: Ctx) -> None:
    await _adjust(ctx)
    await _update_item(ctx)
    await _create_user(ctx)

    async def listed(**params: Any) -> list[tuple[str, int | None]]:
        r = await ctx.client.get("/audit", params=params, headers=ctx.admin_headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"events", "total", "skip", "limit"}
        return [(e["action"], e["target_id"]) for e in body["events"]]

    everything = await listed(limit=100)
    assert everything[:3] == [
        ("user.create", everything[0][1]),
        ("item.update", ctx.item_id),
        ("item.adjust", ctx.item_id),
    ]
    assert await listed(action="item.adjust") == [("item.adjust", ctx.item_id)]
    assert await listed(target_type="item", target_id=ctx.item_id) == [
        ("item.update", ctx.item_id),
        ("item.adjust", ctx.item_id),
        ("item.create", ctx.item_id),
    ]
    assert all(a.startswith("user.") for a, _ in await listed(actor_id=ctx.admin.id))
    assert await listed(skip=1, limit=1) == everything[1:2]
    r = await ctx.client.get("/audit", params={"limit": 1}, headers=ctx.admin_headers)
    event = r.json()["events"][0]
    assert set(event) == {
        "id",
        "at",
        "action",
        "actor",
        "target_type",
        "target_id",
        "address",
        "request_id",
        "changes",
    }
    assert event["actor"] == {"id": ctx.admin.id, "username": "root"}
    at = event["at"]
    assert await listed(since=at) == everything[:1]
    newest = (await _events(ctx.db))[-1].at
    assert everything[0] not in await listed(until=(newest - timedelta(microseconds=1)).isoformat())


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 101}, {"actor_id": 0}, {"since": "2026-01-01"}]
)
async def test_audit_queries_are_checked(ctx: Ctx, params: dict[str, Any]) -> None:
    r = await ctx.client.get("/audit", params=params, headers=ctx.admin_headers)
    assert r.status_code == 422


async def test_no_password_hash_or_token_is_ever_recorded(ctx: Ctx) -> None:
    """Every write route once, plus logins and failures with their secrets: none of the
    passwords, hashes or tokens used appears anywhere in the audit table."""
    secrets: set[str] = {PASSWORD, "wrong one!", "a new long secret", "new user secret"}
    r = await ctx.client.post("/token", data={"username": "eddie", "password": "wrong one!"})
    r = await ctx.client.post("/token", data={"username": "eddie", "password": PASSWORD})
    secrets |= {r.json()["access_token"], r.json()["refresh_token"]}
    secrets |= {h["Authorization"].removeprefix("Bearer ") for h in (ctx.admin_headers,)}
    secrets |= {ctx.editor_headers["Authorization"].removeprefix("Bearer ")}
    await fresh(ctx.db)
    fresh_pair = await login_pair(ctx.db, ctx.editor)
    secrets |= set(fresh_pair)
    r = await ctx.client.post("/token/refresh", json={"refresh_token": fresh_pair[1]})
    secrets |= {r.json()["access_token"], r.json()["refresh_token"]}
    r = await ctx.client.post(
        "/logout",
        json={"refresh_token": r.json()["refresh_token"]},
        headers=bearer(r.json()["access_token"]),
    )
    assert r.status_code == 204
    # The last ones end the item, the editor's password, role and account.
    last = [
        "DELETE /items/{item_id}",
        "POST /users/me/password",
        "PATCH /users/{user_id}",
        "DELETE /users/{user_id}",
    ]
    for route in [*sorted(set(CASES) - set(last)), *last]:
        await fresh(ctx.db)  # a write of the test's session must not begin from an old read
        ctx.editor_headers = await auth_headers(ctx.db, ctx.editor)  # logout ends the last
        secrets.add(ctx.editor_headers["Authorization"].removeprefix("Bearer "))
        r, _ = await CASES[route](ctx)
        assert r.status_code < 400 or route == "POST /token/refresh", (route, r.text)
    await fresh(ctx.db)
    secrets |= set(await ctx.db.scalars(select(User.password_hash)))
    secrets |= {ctx.admin.password_hash, ctx.editor.password_hash}

    dump = json.dumps(
        [
            {c.name: getattr(e, c.name) for c in AuditEvent.__table__.columns}
            for e in await _events(ctx.db)
        ],
        default=str,
    )

    assert len(await _events(ctx.db)) > 15
    found = [s for s in secrets if s in dump]
    assert found == []
    await assert_movements_add_up(ctx.db)  # and every write route kept stock accounted for
