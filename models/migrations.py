"""Run the Alembic migrations from code (the CLI and the tests build databases this way), and
the lock that lets instances starting at once take turns at it."""

import asyncio
import fcntl
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from models.settings import get_database_settings

ROOT = Path(__file__).resolve().parent.parent
# pg_advisory_lock's key for "migrating and creating the first admin": b"inventor".
ADVISORY_KEY = int.from_bytes(b"inventor", "big")
WAITING = "another instance is migrating the database; waiting for it"

log = logging.getLogger("models.migrations")


def alembic_config(url: str | None = None) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.attributes["configure_logger"] = False
    if url:
        config.attributes["url"] = url
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Bring the database to `revision`. Call it outside a running event loop."""
    command.upgrade(alembic_config(url), revision)


@contextmanager
def startup_lock(url: str | None = None) -> Iterator[None]:
    """Held while an instance migrates and creates the first admin, so that instances starting
    at once on one fresh database take turns (without it the loser died of 'database is
    locked' on SQLite, of a duplicate type or user on PostgreSQL). SQLite: a file lock beside
    the database; PostgreSQL: a session advisory lock. Either is freed if the process dies."""
    url = url or get_database_settings().database_url
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        with _advisory_lock(url):
            yield
    elif parsed.database in (None, "", ":memory:"):
        yield
    else:
        with _file_lock(Path(f"{parsed.database}.lock")):
            yield


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning(WAITING)
            fcntl.flock(file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


@contextmanager
def _advisory_lock(url: str) -> Iterator[None]:
    # The migrations run their own event loops (asyncio.run); the connection that holds the
    # lock lives in a thread with a loop of its own, for as long as they take.
    acquired, release = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    async def hold() -> None:
        settings = get_database_settings()
        engine = create_async_engine(
            url,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={"timeout": settings.DB_CONNECT_TIMEOUT},
        )
        try:
            async with engine.connect() as conn:
                key = {"key": ADVISORY_KEY}
                if not await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), key):
                    log.warning(WAITING)
                    await conn.execute(text("SELECT pg_advisory_lock(:key)"), key)
                acquired.set()
                await asyncio.to_thread(release.wait)
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), key)
        finally:
            await engine.dispose()

    def run() -> None:
        try:
            asyncio.run(hold())
        except BaseException as exc:  # handed to the waiting caller
            failure.append(exc)
        finally:
            acquired.set()

    holder = threading.Thread(target=run, name="startup-lock", daemon=True)
    holder.start()
    acquired.wait()
    try:
        if failure:
            raise failure[0]
        yield
    finally:
        release.set()
        holder.join()
