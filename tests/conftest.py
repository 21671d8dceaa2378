"""Every test gets a clean database built by the Alembic migrations and the real app on top.

SQLite (default): the migrated file is built once, then copied afresh for each test.
PostgreSQL (TEST_DATABASE_URL=postgresql+asyncpg://...): the run creates a database of its own
(`test_<random>`) on that server, migrates it once, empties its tables after each test and
drops it at the end, so runs sharing a server leave each other alone. The app's own commit
code runs in both.
"""

import asyncio
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, create_async_engine

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

# The server TEST_DATABASE_URL names; this run's own database on it (created in the session).
POSTGRES_SERVER_URL = os.environ.get("TEST_DATABASE_URL", "")
POSTGRES_URL = (
    make_url(POSTGRES_SERVER_URL)
    .set(database=f"test_{secrets.token_hex(6)}")
    .render_as_string(hide_password=False)
    if POSTGRES_SERVER_URL
    else ""
)
# The tests' short name for it: forget every cached setting after changing the environment.
clear_settings = clear_cached_settings


@pytest.fixture(scope="session", autouse=True)
def postgres_database() -> Iterator[None]:
    """This run's own PostgreSQL database, created empty and dropped at the end."""
    if not POSTGRES_URL:
        yield
        return
    with new_database(POSTGRES_SERVER_URL, make_url(POSTGRES_URL).database or ""):
        yield


@contextmanager
def new_database(server_url: str, name: str) -> Iterator[str]:
    """Database `name`, created empty on the PostgreSQL server `server_url` connects to and
    dropped afterwards; yields its URL."""

    async def run(statement: str) -> None:
        engine = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def migrated_template(
    tmp_path_factory: pytest.TempPathFactory, postgres_database: None
) -> Path | str:
    """A migrated database: a SQLite file to copy, or the PostgreSQL URL (migrated in place)."""
    if POSTGRES_URL:
        migrations.upgrade(POSTGRES_URL)
        return POSTGRES_URL
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrations.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


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
            async with application.state.engine.begin() as conn:
                await empty_tables(conn)


async def empty_tables(conn: AsyncConnection | AsyncSession) -> None:
    """PostgreSQL: every table emptied, identities restarted."""
    names = ", ".join(t.name for t in metadata.sorted_tables)
    await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@asynccontextmanager
async def app_client(
    monkeypatch: pytest.MonkeyPatch, **settings: str
) -> AsyncIterator[AsyncClient]:
    """A client of an app of its own, built after `settings` are set (the `client` fixture's
    app is built before a test can change any)."""
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    clear_settings()
    application = create_app()
    async with (
        application.router.lifespan_context(application),
        AsyncClient(transport=ASGITransport(app=application), base_url="http://testserver") as c,
    ):
        yield c


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
