"""On PostgreSQL reads run in autocommit: no BEGIN or COMMIT trips for a read request, nor for
the reads a login makes before it hashes."""

import pytest
from httpx import AsyncClient
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.ext.asyncio import AsyncSession

from models.enums import Role
from tests.conftest import POSTGRES_URL
from tests.factories import PASSWORD, auth_headers, make_item, make_user

pytestmark = [
    pytest.mark.perf,
    pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL's transactions"),
]


@pytest.fixture
def begins(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """One entry per transaction the driver begins (a BEGIN round trip unless autocommit)."""
    started: list[object] = []
    original = AsyncAdapt_asyncpg_connection._start_transaction

    async def counted(self: AsyncAdapt_asyncpg_connection) -> None:
        if self.isolation_level != "autocommit":
            started.append(self.isolation_level)
        await original(self)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "_start_transaction", counted)
    return started


async def test_reads_begin_no_transaction(
    client: AsyncClient, db: AsyncSession, begins: list[object]
) -> None:
    item = await make_item(db)
    headers = await auth_headers(db, await make_user(db, Role.viewer))
    begins.clear()

    for path in (f"/items/{item.id}", "/items?limit=5", "/users/me"):
        r = await client.get(path, headers=headers)
        assert r.status_code == 200, r.text

    assert begins == []


async def test_writes_still_run_in_a_transaction(
    client: AsyncClient, db: AsyncSession, begins: list[object]
) -> None:
    headers = await auth_headers(db, await make_user(db, Role.editor))
    begins.clear()

    r = await client.post("/items", json={"name": "Bolt", "quantity": 1}, headers=headers)

    assert r.status_code == 201, r.text
    assert len(begins) == 1


async def test_a_login_begins_one_transaction_its_write(
    client: AsyncClient, db: AsyncSession, begins: list[object]
) -> None:
    user = await make_user(db, Role.viewer)
    begins.clear()

    r = await client.post("/token", data={"username": user.username, "password": PASSWORD})

    assert r.status_code == 200, r.text
    assert len(begins) == 1  # the new login's; the throttle and account reads began none
