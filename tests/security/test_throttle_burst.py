"""A burst of concurrent wrong guesses against a real server with two workers: the throttle
counts each attempt before judging it, so at most the limit are judged (401) and the rest are
refused (429 with Retry-After), on SQLite, PostgreSQL and Redis alike."""

import asyncio
import os
import secrets
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from models.tables import metadata
from tests.conftest import POSTGRES_URL
from tests.server import running_server

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/5")
LIMIT = 5
WORKERS = 2
BURST = 40
PASSWORD = "burst-admin-password"


@pytest.fixture(params=["sqlite", "postgresql", "redis"])
def store_env(request: pytest.FixtureRequest, database_url: str) -> Iterator[dict[str, str]]:
    env = {
        "LOGIN_FAILURES_PER_PAIR": str(LIMIT),
        "LOGIN_FAILURES_PER_USERNAME": "1000",
        "LOGIN_FAILURES_PER_ADDRESS": "1000",
    }
    if request.param == "postgresql":
        if not POSTGRES_URL:
            pytest.skip("TEST_DATABASE_URL names no PostgreSQL database")
        yield {**env, "DATABASE_URL": POSTGRES_URL}
        _empty_postgres()
    elif request.param == "redis":
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5)
        try:
            client.ping()
        except redis.RedisError:
            pytest.skip(f"no Redis at {REDIS_URL}")
        prefix = f"inventory-test:{secrets.token_hex(8)}:"  # this test's keys alone
        yield {**env, "REDIS_URL": REDIS_URL, "REDIS_KEY_PREFIX": prefix}
        for key in client.scan_iter(match=f"{prefix}*", count=500):
            client.delete(key)
        client.close()
    else:
        yield env


def _empty_postgres() -> None:
    async def empty() -> None:
        engine = create_async_engine(POSTGRES_URL)
        names = ", ".join(t.name for t in metadata.sorted_tables)
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        await engine.dispose()

    asyncio.run(empty())


async def _burst(base: str) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=BURST)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        guesses = [
            client.post("/token", data={"username": "admin", "password": f"guess {n}"})
            for n in range(BURST)
        ]
        return await asyncio.gather(*guesses)


def test_a_burst_of_wrong_guesses_judges_at_most_the_limit(
    store_env: dict[str, str], tmp_path: Path
) -> None:
    with running_server(tmp_path / "srv", PASSWORD, workers=WORKERS, settings=store_env) as base:
        answers = asyncio.run(_burst(base))
        after = httpx.post(f"{base}/token", data={"username": "admin", "password": PASSWORD})
    statuses = Counter(r.status_code for r in answers)
    assert set(statuses) == {401, 429}, statuses
    assert statuses[401] == LIMIT  # exact: no slack, whatever the number of workers
    for r in answers:
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) >= 1
            assert r.json() == {"detail": "Too many failed logins; try again later"}
    assert after.status_code == 429  # the right password too, while the window is full
