"""Many writes at once: each is answered with success and lands in the database.

With SQLITE_BUSY_TIMEOUT_MS=0, two writers of one process meeting in SQLite would fail at once
("database is locked"), so this shows that a process queues its own writers (models/engine.py).
"""

import asyncio
import os

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.enums import Role
from models.item import Item
from tests.factories import auth_headers, make_item, make_user

WRITERS = 25


@pytest.fixture(autouse=True)
def _no_busy_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQLITE_BUSY_TIMEOUT_MS", "0")


async def test_concurrent_creates_all_succeed(client: AsyncClient, db: AsyncSession) -> None:
    headers = await auth_headers(db, await make_user(db, Role.editor))

    async def create(n: int) -> int:
        r = await client.post("/items", json={"name": f"Box {n}", "quantity": n}, headers=headers)
        return r.status_code

    statuses = await asyncio.gather(*(create(n) for n in range(WRITERS)))

    assert statuses == [201] * WRITERS
    assert await db.scalar(select(func.count()).select_from(Item)) == WRITERS


# On PostgreSQL concurrent updates of one row are not queued: the losers answer 409 (stale version).
@pytest.mark.skipif(bool(os.environ.get("TEST_DATABASE_URL")), reason="SQLite's writer queue")
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
