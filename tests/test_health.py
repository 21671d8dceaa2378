"""Liveness and readiness."""

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import create_async_engine


async def test_health_is_ok(client: AsyncClient) -> None:
    r = await client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_ready_when_database_answers(client: AsyncClient) -> None:
    r = await client.get("/ready")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_not_ready_when_database_is_unreachable(app: FastAPI, client: AsyncClient) -> None:
    working = app.state.engine
    # Nothing listens there (a port of this suite's range that no test serves on). A broken
    # SQLite path would do too, but aiosqlite then leaves a worker thread that outlives the loop.
    broken = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:8219/nothing")
    app.state.engine = broken
    try:
        ready = await client.get("/ready")
        health = await client.get("/health")
    finally:
        app.state.engine = working
        await broken.dispose()
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable"}
    assert health.status_code == 200
