import asyncio
import fcntl
import os
from typing import Any
from weakref import WeakKeyDictionary

from anyio import to_thread
from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import await_only as await_  # await_only: also on SQLAlchemy 2.0

from models.settings import DatabaseSettings

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
        pool_size=settings.DB_POOL_SIZE,
        max_overflow=settings.DB_MAX_OVERFLOW,
        pool_timeout=settings.DB_POOL_TIMEOUT,
        pool_pre_ping=settings.DB_POOL_PRE_PING,
    )


def _sqlite_engine(url: str, settings: DatabaseSettings) -> AsyncEngine:
    if url.startswith("sqlite+aiosqlite:///") and ":memory:" not in url:
        settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(
        url,
        echo=settings.DB_ECHO,
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


async def begin_write(session: AsyncSession) -> None:
    """Start the session's transaction as a writer (BEGIN IMMEDIATE on SQLite, no-op elsewhere)."""
    await session.connection(execution_options={SQLITE_IMMEDIATE: True})


class SQLiteWriters:
    """One writer at a time across this database's processes, queued instead of polling.

    SQLite has one writer at a time, and its busy handler makes the others poll with growing
    sleeps: the process whose next writer is already waiting wins the lock back at once, so the
    other process's writers starve past busy_timeout ("database is locked", a 500) while the
    pollers burn CPU. Here a writer first queues in its process (an asyncio lock, first come
    first served), then takes an exclusive flock on a file beside the database, which the
    kernel hands to a waiting process as soon as it is released. SQLite's own lock is then free
    whenever a writer of this service begins, and the busy handler only meets other programs.
    """

    def __init__(self, database: str) -> None:
        self._path = f"{database}-writer.lock"
        self._queue = asyncio.Lock()
        self._fd = -1

    async def __aenter__(self) -> None:
        await self._queue.acquire()
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    await to_thread.run_sync(fcntl.flock, fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
        except BaseException:
            self._queue.release()
            raise
        self._fd = fd

    async def __aexit__(self, *_exc: object) -> None:
        os.close(self._fd)  # releases the flock
        self._fd = -1
        self._queue.release()


_writers: WeakKeyDictionary[Engine, SQLiteWriters] = WeakKeyDictionary()


def sqlite_writers(engine: AsyncEngine) -> SQLiteWriters | None:
    """The writer queue of a file-backed SQLite engine; None for other databases."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    writers = _writers.get(engine.sync_engine)
    if writers is None:
        writers = _writers[engine.sync_engine] = SQLiteWriters(database)
    return writers
