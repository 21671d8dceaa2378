"""Reads outside any session: the statements of the public read routes, run as cheaply as the
database allows, each seeing the latest commit (autocommit: no snapshot older than the
statement, so no stale read after a write, in any worker).

On a SQLite file a quick read (a point read, a first page) runs on the event loop itself,
through a connection of its own: it takes microseconds, where a trip to aiosqlite's thread
and back costs more than the read (bench/RESULTS.md). A read that may take long (a search,
a page far from the start) goes to the thread, through the async engine, so that the loop
keeps serving meanwhile; `seconds` bounds it (503). On PostgreSQL every read goes through
the async engine, in autocommit (one round trip, no BEGIN or COMMIT).
"""

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Connection, Executable, Row, create_engine, event, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import StaticPool

from models.engine import SQLITE_AUTOCOMMIT, add_sqlite_functions

Params = Mapping[str, Any] | None


class ReadTooLong(Exception):
    """A read bounded by `seconds` was stopped."""


class Reads:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._loop: Connection | None = None
        database = engine.url.database
        if self.dialect == "sqlite" and database and database != ":memory:":
            with suppress(OperationalError):  # cannot open it: the thread's way reports that
                self._loop = _loop_connection(engine)

    async def all(
        self, stmt: Executable, params: Params = None, *, quick: bool = True
    ) -> Sequence[Row[Any]]:
        """The rows of `stmt`. `quick`: it reads a few rows by an index (on SQLite it then
        runs on the event loop)."""
        if quick and self._loop is not None:
            try:
                return self._loop.execute(stmt, params).all()
            except OperationalError:
                pass  # busy, or the file unreadable: the thread's way waits, or reports it
        async with self.connect() as conn:
            return (await conn.execute(stmt, params)).all()

    async def first(self, stmt: Executable, params: Params = None) -> Row[Any] | None:
        rows = await self.all(stmt, params)
        return rows[0] if rows else None

    @asynccontextmanager
    async def connect(self, seconds: float | None = None) -> AsyncIterator[AsyncConnection]:
        """A connection of the async engine in autocommit; with `seconds`, each statement
        on it stops after that long (ReadTooLong)."""
        async with self.engine.connect() as conn:
            if self.dialect == "postgresql":
                await conn.execution_options(isolation_level="AUTOCOMMIT")
            else:
                await conn.execution_options(**{SQLITE_AUTOCOMMIT: True})
            if seconds is None:
                yield conn
            else:
                async with _bounded(conn, seconds):
                    yield conn

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()
            self._loop.engine.dispose()
            self._loop = None


def _loop_connection(engine: AsyncEngine) -> Connection:
    """A synchronous connection to the same SQLite file, opened now, used on the loop only."""
    sync = create_engine(
        engine.url.set(drivername="sqlite"),
        echo=engine.echo,
        hide_parameters=True,
        poolclass=StaticPool,
    )

    @event.listens_for(sync, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The file is in WAL mode already (the async engine's connections set it). No busy
        # wait on the loop (busy_timeout stays 0): a read that finds the file busy goes the
        # thread's way. What this connection runs is a read, whatever a caller passes.
        dbapi_connection.execute("PRAGMA query_only=ON")
        add_sqlite_functions(dbapi_connection)

    return sync.connect().execution_options(isolation_level="AUTOCOMMIT")


@asynccontextmanager
async def _bounded(conn: AsyncConnection, seconds: float) -> AsyncIterator[None]:
    driver = (await conn.get_raw_connection()).driver_connection
    if conn.dialect.name == "sqlite":
        # sqlite3's interrupt() may be called from any thread; it stops the running statement.
        sqlite = driver._conn  # type: ignore[union-attr]
        timer = asyncio.get_running_loop().call_later(seconds, sqlite.interrupt)
        try:
            yield
        except OperationalError as exc:
            if "interrupted" in str(exc.orig):
                raise ReadTooLong() from None
            raise
        finally:
            timer.cancel()
        return
    await conn.execute(text(f"SET statement_timeout = {max(1, int(seconds * 1000))}"))
    try:
        yield
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == "57014":  # query_canceled
            raise ReadTooLong() from None
        raise
    finally:
        await conn.execute(text("RESET statement_timeout"))


async def get_reads(request: Request) -> Reads:
    reads: Reads = request.app.state.reads
    return reads


ReadsDep = Annotated[Reads, Depends(get_reads)]
