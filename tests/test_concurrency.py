"""Concurrent requests on one database: writers wait for each other instead of failing."""

import asyncio

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from auth import login as login_module
from auth.passwords import verify_password
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

WRITERS = 20


async def test_concurrent_patches_with_one_etag_let_exactly_one_through(
    client: AsyncClient, db: AsyncSession
) -> None:
    headers = await auth_headers(db, await make_user(db, Role.editor))
    item = await make_item(db, quantity=0)
    responses = await asyncio.gather(
        *(
            client.patch(
                f"/items/{item.id}",
                json={"quantity": n},
                headers={**headers, "If-Match": '"1"'},
            )
            for n in range(1, WRITERS + 1)
        )
    )
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 1, statuses
    assert set(statuses) <= {200, 409, 412}, [r.text for r in responses]
    [winner] = [r.json()["item"] for r in responses if r.status_code == 200]
    stored = await row(db, Item, item.id)
    assert stored is not None
    assert (stored["version"], stored["quantity"]) == (2, winner["quantity"])


async def test_two_admins_demoting_each_other_at_once_leave_one_admin(
    client: AsyncClient, db: AsyncSession
) -> None:
    first = await make_user(db, Role.admin)
    second = await make_user(db, Role.admin)
    first_headers = await auth_headers(db, first)
    second_headers = await auth_headers(db, second)
    responses = await asyncio.gather(
        client.patch(f"/users/{second.id}", json={"role": "viewer"}, headers=first_headers),
        client.patch(f"/users/{first.id}", json={"role": "viewer"}, headers=second_headers),
    )
    statuses = sorted(r.status_code for r in responses)
    # The loser either lost its admin role before its turn (403) or met the last-admin rule.
    assert statuses in ([200, 403], [200, 409]), [r.text for r in responses]
    rows = [await row(db, User, u.id) for u in (first, second)]
    assert sorted(str(r["role"]) for r in rows if r) == ["admin", "viewer"]


async def test_one_refresh_token_used_twice_at_once_revokes_the_login(
    client: AsyncClient, db: AsyncSession
) -> None:
    user = await make_user(db)
    _, refresh = await login_pair(db, user)
    responses = await asyncio.gather(
        *(client.post("/token/refresh", json={"refresh_token": refresh}) for _ in range(2))
    )
    assert sorted(r.status_code for r in responses) == [200, 401]
    [winner] = [r.json() for r in responses if r.status_code == 200]
    r = await client.get("/users/me", headers=bearer(winner["access_token"]))
    assert r.status_code == 401
    assert all(s.revoked_at is not None for s in await sessions_of(db, user))


async def _login_held_in_its_hash(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> tuple[asyncio.Task[Response], asyncio.Event]:
    """Start a login of "slowpoke" and return once it is in its password hash, with the
    event that lets the hash finish."""
    hashing, finish = asyncio.Event(), asyncio.Event()

    async def held_verify(password: str, stored: str | None) -> tuple[bool, str | None]:
        hashing.set()
        await finish.wait()
        return await verify_password(password, stored)

    monkeypatch.setattr(login_module, "verify_password", held_verify)
    login = asyncio.create_task(
        client.post("/token", data={"username": "slowpoke", "password": PASSWORD})
    )
    await asyncio.wait_for(hashing.wait(), timeout=30)
    return login, finish


async def test_a_write_goes_through_while_a_login_checks_its_password(
    client: AsyncClient, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The password hash runs before the login's transaction writes: it holds no write lock
    (on SQLite the one lock every writer needs) while it hashes."""
    await make_user(db, Role.viewer, username="slowpoke")
    headers = await auth_headers(db, await make_user(db, Role.editor))
    login, finish = await _login_held_in_its_hash(client, monkeypatch)

    created = await client.post(
        "/items", json={"name": "Meanwhile", "quantity": 1}, headers=headers
    )

    assert created.status_code == 201, created.text
    assert not login.done()
    finish.set()
    assert (await login).status_code == 200
    assert await count(db, Item) == 1


async def test_a_login_waiting_for_its_password_hash_holds_no_connection(
    app: FastAPI, client: AsyncClient, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A login storm queues for the hasher without taking the pool's connections from reads."""
    await make_user(db, Role.viewer, username="slowpoke")
    await db.commit()
    login, finish = await _login_held_in_its_hash(client, monkeypatch)
    checked_out = app.state.engine.pool.checkedout()
    finish.set()

    assert checked_out == 0
    assert (await login).status_code == 200


@pytest.mark.parametrize("change", ["disabled", "deleted"])
async def test_an_account_disabled_while_its_login_hashes_gets_no_login(
    client: AsyncClient, db: AsyncSession, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """The login read an active account; by the time the hash says the password is right, the
    account is disabled or gone: 401, and no login session is written."""
    user = await make_user(db, Role.viewer, username="slowpoke")
    await db.commit()
    login, finish = await _login_held_in_its_hash(client, monkeypatch)
    if change == "disabled":
        await db.execute(update(User).where(User.id == user.id).values(is_active=False))
    else:
        await db.execute(delete(User).where(User.id == user.id))
    await db.commit()
    finish.set()

    r = await login
    assert r.status_code == 401, r.text
    assert r.json() == {"detail": "Incorrect username or password"}
    assert await sessions_of(db, user) == []
