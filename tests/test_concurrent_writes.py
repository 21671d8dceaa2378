"""Many writes at once: each is answered with success and lands in the database.

With SQLITE_BUSY_TIMEOUT_MS=0, two writers of one process meeting in SQLite would fail at once
("database is locked"), so this shows that a process queues its own writers (models/engine.py).
"""

import asyncio

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.enums import Role
from models.item import Item
from models.writers import sqlite_writers
from tests.conftest import POSTGRES_URL
from tests.factories import auth_headers, count, make_item, make_user
from tests.waiting import until

WRITERS = 25


@pytest.fixture(autouse=True)
def _no_busy_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQLITE_BUSY_TIMEOUT_MS", "0")


async def test_concurrent_creates_all_succeed(client: AsyncClient, db: AsyncSession) -> None:
    headers = await auth_headers(db, await make_user(db, Role.editor))
    responses = await asyncio.gather(
        *(
            client.post("/items", json={"name": f"Box {n}", "quantity": n}, headers=headers)
            for n in range(WRITERS)
        )
    )
    assert [r.status_code for r in responses] == [201] * WRITERS, [r.text for r in responses]
    assert len({r.json()["item"]["id"] for r in responses}) == WRITERS
    assert await count(db, Item) == WRITERS


# SQLite queues the writers; PostgreSQL queues them on the item's row lock (SELECT FOR UPDATE).
async def test_concurrent_patches_of_one_item_all_apply(
    client: AsyncClient, db: AsyncSession
) -> None:
    headers = await auth_headers(db, await make_user(db, Role.editor))
    item = await make_item(db, quantity=0)

    async def patch(n: int) -> int:
        r = await client.patch(f"/items/{item.id}", json={"quantity": n + 1}, headers=headers)
        return r.status_code

    statuses = await asyncio.gather(*(patch(n) for n in range(WRITERS)))

    assert statuses == [200] * WRITERS
    await db.refresh(item)
    assert item.version == 1 + WRITERS


@pytest.mark.skipif(bool(POSTGRES_URL), reason="SQLite's writer turn")
async def test_credentials_are_checked_before_the_writer_turn(
    app: FastAPI, client: AsyncClient, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write request waits for SQLite's one writer only once its caller is known: a revoked
    token is refused while another transaction writes, and a valid one waits its turn."""
    editor = await make_user(db, Role.editor)
    headers = await auth_headers(db, editor)
    revoked = await auth_headers(db, editor)
    assert (await client.post("/logout", headers=revoked)).status_code == 204
    writers = sqlite_writers(app.state.engine)
    assert writers is not None
    body = {"name": "Box", "quantity": 1}
    queued = asyncio.Event()
    acquire = writers.acquire

    async def queue_up() -> None:
        queued.set()
        await acquire()

    await acquire()  # another transaction is writing
    try:
        monkeypatch.setattr(writers, "acquire", queue_up)
        refused = await asyncio.wait_for(client.post("/items", json=body, headers=revoked), 10)
        assert not queued.is_set()
        waiting = asyncio.create_task(client.post("/items", json=body, headers=headers))
        await asyncio.wait_for(queued.wait(), 10)  # its credentials checked, it asks for a turn
        assert not waiting.done()  # and waits, the turn being held above
    finally:
        writers.release()

    assert refused.status_code == 401
    assert (await waiting).status_code == 201
    assert await db.scalar(select(func.count()).select_from(Item)) == 1


@pytest.mark.skipif(bool(POSTGRES_URL), reason="SQLite's writer turn")
async def test_writers_wait_for_their_turn_without_a_connection(
    app: FastAPI, client: AsyncClient, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writers queued for SQLite's one writer hold no pooled connection while they wait (a
    connection is taken once the turn is: models/engine.SessionWithTurns)."""
    headers = await auth_headers(db, await make_user(db, Role.editor))
    await db.commit()
    writers = sqlite_writers(app.state.engine)
    assert writers is not None
    pool = app.state.engine.sync_engine.pool
    queued = 0
    acquire = writers.acquire

    async def queue_up() -> None:
        nonlocal queued
        queued += 1
        await acquire()

    await acquire()  # another transaction is writing
    try:
        monkeypatch.setattr(writers, "acquire", queue_up)
        held = pool.checkedout()
        waiting = [
            asyncio.create_task(
                client.post("/items", json={"name": f"Box {n}", "quantity": 1}, headers=headers)
            )
            for n in range(5)
        ]
        await until(lambda: queued == 5)
        assert pool.checkedout() == held
    finally:
        writers.release()

    assert [(await w).status_code for w in waiting] == [201] * 5
