"""SQLite's one writer at a time, queued fairly across this service's workers."""

import asyncio
import fcntl
import os
from weakref import WeakKeyDictionary

from anyio import to_thread
from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine


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

    async def acquire(self) -> None:
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

    def release(self) -> None:
        """Synchronous: it runs in SQLAlchemy's end-of-transaction event."""
        os.close(self._fd)  # releases the flock
        self._fd = -1
        self._queue.release()


class WriterTurn:
    """One write transaction's turn: taken at its first statement, ended with it."""

    def __init__(self, writers: SQLiteWriters | None) -> None:
        self.writers = writers  # None: an in-memory database, one process
        self.taken = False
        self.begun = False  # its BEGIN IMMEDIATE is sent (models/engine.py)

    async def take(self) -> None:
        if self.taken:
            return
        if self.writers is not None:
            await self.writers.acquire()
        self.taken = True

    def end(self) -> None:
        self.begun = False
        if self.taken:
            self.taken = False
            if self.writers is not None:
                self.writers.release()


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
