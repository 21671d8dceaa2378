"""Every test gets a clean database built by the Alembic migrations and the real app on top.

SQLite (default): the migrated file is built once, then copied afresh for each test.
PostgreSQL (TEST_DATABASE_URL=postgresql+asyncpg://...): migrated once, tables emptied after
each test. The app's own commit code runs in both.
"""

import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# Cheap hashing and a fixed key for the whole run; set before any settings are read.
os.environ.update(
    ARGON2_MEMORY_COST_KIB="64",
    ARGON2_TIME_COST="1",
    SECRET_KEY=secrets.token_urlsafe(48),
    ENVIRONMENT="development",
)

from api.app import create_app
from models import migrations
from models.settings import clear_cached_settings
from models.tables import metadata

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL", "")
# The tests' short name for it: forget every cached setting after changing the environment.
clear_settings = clear_cached_settings


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path | str:
    """A migrated database: a SQLite file to copy, or the PostgreSQL URL (migrated in place)."""
    if POSTGRES_URL:
        _reset_postgres(POSTGRES_URL)
        migrations.upgrade(POSTGRES_URL)
        return POSTGRES_URL
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrations.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


def _reset_postgres(url: str) -> None:
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    async def reset() -> None:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await engine.dispose()

    asyncio.run(reset())


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def database_url(
    migrated_template: Path | str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    data_dir.mkdir()
    if isinstance(migrated_template, str):
        url = migrated_template
    else:
        target = data_dir / "inventory.db"
        shutil.copyfile(migrated_template, target)
        url = f"sqlite+aiosqlite:///{target}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DATA_DIR", str(data_dir))
    clear_settings()
    yield url
    clear_settings()


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app()
    async with application.router.lifespan_context(application):
        yield application
        if POSTGRES_URL:
            await _empty_tables(application)


async def _empty_tables(application: FastAPI) -> None:
    names = ", ".join(t.name for t in metadata.sorted_tables)
    async with application.state.engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    transport = ASGITransport(app=app)
    async with AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def db(app: FastAPI) -> AsyncIterator[AsyncSession]:
    """A session of the test's own, to arrange rows and to check what a request left behind."""
    async with app.state.sessionmaker() as session:
        yield session
