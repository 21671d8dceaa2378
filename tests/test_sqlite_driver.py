"""SQLite statements give the usual cursor results, and take one trip each to aiosqlite's
thread (the trip counts are marked `perf`: `make test-perf`)."""

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from models.engine import create_engine
from models.enums import Role
from models.settings import DatabaseSettings
from tests.conftest import POSTGRES_URL
from tests.factories import auth_headers, make_item, make_user
from tests.waiting import until


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of each function aiosqlite runs on its thread, in order."""
    calls: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(
        self: aiosqlite.Connection, fn: object, *args: object, **kwargs: object
    ) -> object:
        calls.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return calls


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(DatabaseSettings(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/t.db"))
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)"))
    yield engine
    await engine.dispose()


async def test_statements_give_the_usual_cursor_results(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        inserted = await conn.execute(text("INSERT INTO t (name) VALUES ('a'), ('b')"))
        assert inserted.rowcount == 2
        assert inserted.lastrowid == 2

        result = await conn.execute(text("SELECT id, name FROM t ORDER BY id"))
        assert list(result.keys()) == ["id", "name"]
        assert result.all() == [(1, "a"), (2, "b")]

        nothing = await conn.execute(text("SELECT id FROM t WHERE id > 5"))
        assert list(nothing.keys()) == ["id"]
        assert nothing.all() == []

        many = await conn.execute(
            text("UPDATE t SET name = :name WHERE id = :id"),
            [{"id": 1, "name": "x"}, {"id": 2, "name": "y"}],
        )
        assert many.rowcount == 2
        assert (await conn.execute(text("SELECT group_concat(name) FROM t"))).scalar() == "x,y"


async def test_a_failed_statement_keeps_the_transaction(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO t (id) VALUES (1)"))
    async with engine.connect() as conn:
        with pytest.raises(exc.IntegrityError):
            await conn.execute(text("INSERT INTO t (id) VALUES (1)"))  # BEGIN ran
        await conn.execute(text("INSERT INTO t (id) VALUES (2)"))
        await conn.rollback()
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 1


@pytest.mark.perf
async def test_each_statement_is_one_trip(engine: AsyncEngine, trips: list[str]) -> None:
    async with engine.begin() as conn:
        trips.clear()
        await conn.execute(text("INSERT INTO t (name) VALUES ('a'), ('b')"))
        assert trips == ["_on_thread"]
        trips.clear()
        (await conn.execute(text("SELECT id, name FROM t ORDER BY id"))).all()
        assert trips == ["_on_thread"]


@pytest.mark.perf
async def test_begin_goes_with_the_first_statement(engine: AsyncEngine, trips: list[str]) -> None:
    trips.clear()
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO t (id) VALUES (1)"))
    assert len(trips) == 2  # BEGIN with the INSERT, then COMMIT

    trips.clear()
    async with engine.connect() as conn:
        await conn.commit()  # a transaction that never ran a statement
    assert trips == []


@pytest.mark.perf
@pytest.mark.skipif(bool(POSTGRES_URL), reason="SQLite's driver")
async def test_an_item_read_makes_no_trip(
    client: AsyncClient, db: AsyncSession, trips: list[str]
) -> None:
    """GET /items/{id} reads on the event loop (models/reads.py)."""
    item = await make_item(db)
    await db.commit()
    trips.clear()

    r = await client.get(f"/items/{item.id}")

    assert r.status_code == 200, r.text
    assert trips == []


@pytest.mark.perf
@pytest.mark.skipif(bool(POSTGRES_URL), reason="SQLite's driver")
async def test_a_writers_later_statements_make_no_trip(
    client: AsyncClient, db: AsyncSession, trips: list[str]
) -> None:
    """POST /items runs four statements (the caller's login, the item, its movement, its
    audit event) in one trip, the COMMIT. The login is read on the loop (models/reads.py);
    BEGIN IMMEDIATE (SQLite's lock being free), the item, its movement and its audit event
    run in place."""
    headers = await auth_headers(db, await make_user(db, role=Role.editor))
    await db.commit()
    trips.clear()

    r = await client.post("/items", json={"name": "Bolt", "quantity": 5}, headers=headers)

    assert r.status_code == 201, r.text
    assert trips == ["commit"]


@pytest.mark.skipif(bool(POSTGRES_URL), reason="SQLite's lock")
async def test_a_writer_waits_for_another_programs_lock_off_the_loop(
    app: FastAPI, client: AsyncClient, db: AsyncSession, trips: list[str]
) -> None:
    """BEGIN IMMEDIATE is tried on the loop without waiting; when another program holds
    SQLite's write lock, it goes to aiosqlite's thread and waits there (busy_timeout) while
    the loop serves others, and the write lands once the lock is free."""
    headers = await auth_headers(db, await make_user(db, role=Role.editor))
    item = await make_item(db)
    await db.commit()
    other = sqlite3.connect(app.state.engine.url.database, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        trips.clear()
        body = {"name": "Bolt", "quantity": 5}
        writing = asyncio.create_task(client.post("/items", json=body, headers=headers))
        await until(lambda: "_on_thread" in trips)  # its BEGIN waits on the thread
        assert (await client.get(f"/items/{item.id}")).status_code == 200
        assert not writing.done()
        other.execute("COMMIT")
        r = await writing
    finally:
        other.close()
    assert r.status_code == 201, r.text
    assert trips == ["_on_thread", "commit"]


@pytest.fixture
def short_busy_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQLITE_BUSY_TIMEOUT_MS", "50")  # before the app is built


@pytest.mark.skipif(bool(POSTGRES_URL), reason="SQLite's lock")
async def test_another_programs_lock_held_past_the_busy_timeout_is_503(
    short_busy_wait: None, app: FastAPI, client: AsyncClient, db: AsyncSession
) -> None:
    """Not a 500: the database is there but another program keeps it locked; nothing is
    written, and the next write after the lock is gone succeeds."""
    headers = await auth_headers(db, await make_user(db, role=Role.editor))
    await db.commit()
    body = {"name": "Bolt", "quantity": 5}
    other = sqlite3.connect(app.state.engine.url.database, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        refused = await client.post("/items", json=body, headers=headers)
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert refused.status_code == 503, refused.text
    assert refused.headers["retry-after"]
    assert (await client.get("/items")).json()["total"] == 0
    assert (await client.post("/items", json=body, headers=headers)).status_code == 201
