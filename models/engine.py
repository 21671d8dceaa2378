from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import await_only as await_  # await_only: also on SQLAlchemy 2.0

from models.pool import FairQueuePool
from models.settings import DatabaseSettings
from models.transaction_hooks import on_commit, on_rollback
from models.writers import sqlite_writers

# Execution option a write transaction sets so SQLite takes the write lock at BEGIN: a deferred
# transaction that reads, then writes after another writer committed, fails at once with
# SQLITE_BUSY instead of waiting.
SQLITE_IMMEDIATE = "sqlite_immediate"


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    url = settings.database_url
    if url.startswith("sqlite"):
        return _sqlite_engine(url, settings)
    return create_async_engine(
        url,
        echo=settings.DB_ECHO,
        poolclass=FairQueuePool,
        pool_size=settings.DB_POOL_SIZE,
        max_overflow=settings.DB_MAX_OVERFLOW,
        pool_timeout=settings.DB_POOL_TIMEOUT,
        pool_pre_ping=settings.DB_POOL_PRE_PING,
    )


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _sqlite_engine(url: str, settings: DatabaseSettings) -> AsyncEngine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(
        url,
        echo=settings.DB_ECHO,
        poolclass=FairQueuePool,
        pool_size=settings.DB_POOL_SIZE,
        max_overflow=settings.DB_MAX_OVERFLOW,
        pool_timeout=settings.DB_POOL_TIMEOUT,
    )
    busy_ms = settings.SQLITE_BUSY_TIMEOUT_MS

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy, not the driver, emits BEGIN (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit that was answered survives a power cut, also in WAL mode.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cursor.close()
        # SQLite's lower() folds ASCII only; case-insensitive searches (icontains) must match
        # "Ö" with "ö" as they do on PostgreSQL.
        dbapi_connection.create_function("lower", 1, _lower, deterministic=True)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(SQLITE_IMMEDIATE)
        # Straight to aiosqlite: one trip to its thread, where exec_driver_sql takes three
        # (open a cursor, execute, close it). Every request pays this.
        driver = conn.connection.driver_connection
        assert driver is not None
        await_(driver.execute("BEGIN IMMEDIATE" if immediate else "BEGIN"))

    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Objects stay usable after commit: responses are built from them.
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def end_read(session: AsyncSession) -> None:
    """End a transaction that has only read, before slow work (hashing, receiving an upload),
    so it holds no lock or snapshot meanwhile. Loaded objects expire: re-read what you use."""
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("ending the transaction would drop unflushed changes")
    await session.rollback()


async def begin_write(session: AsyncSession) -> None:
    """Start the session's transaction as a writer (BEGIN IMMEDIATE on SQLite).

    Call it before the transaction has read anything: SQLite cannot turn a reader into a
    writer once another writer has committed after it began. A request that reads and does
    slow work first calls `end_read`, then this, then re-reads (`populate_existing`) what it
    is about to change.
    """
    writers = sqlite_writers(session.bind) if isinstance(session.bind, AsyncEngine) else None
    if writers is not None:
        # This service's writers queue for their turn instead of polling SQLite's lock; the
        # turn ends with the transaction, whichever way it ends.
        await writers.acquire()
        on_commit(session, writers.release)
        on_rollback(session, writers.release)
    await session.connection(execution_options={SQLITE_IMMEDIATE: True})
