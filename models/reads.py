"""Reads outside any session: the statements of the public read routes, run as cheaply as the
database allows, each seeing the latest commit (autocommit: no snapshot older than the
statement, so no stale read after a write, in any worker). Rows come back as mappings
(column name → value).

On a SQLite file a quick read (by id, a page near the start: a few rows by an index) runs on
the event loop itself, through a connection of its own: it takes microseconds, where a trip
to aiosqlite's thread and back costs more than the read. Any other read (a search, a page
far from the start) goes to that thread, through the async engine, so that the loop keeps
serving meanwhile; `seconds` bounds it (503).

On PostgreSQL a statement built once is sent by asyncpg itself on a connection of the pool
(asyncpg's cache prepares it once per connection), without SQLAlchemy's execution around
it, which costs more than a short read's round trip. Its parameters must be plain values
(no type processing).
"""

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from functools import lru_cache
from typing import Annotated, Any, cast

from fastapi import Depends, Request
from sqlalchemy import Connection, Dialect, Executable, create_engine, event, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.compiler import SQLCompiler

from models.availability import unreachable
from models.engine import SQLITE_AUTOCOMMIT, add_sqlite_functions, went_down

Params = Mapping[str, Any] | None
Rows = Sequence[Mapping[Any, Any]]  # SQLAlchemy's RowMapping, or asyncpg's Record


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
        self,
        stmt: Executable,
        params: Params = None,
        *,
        quick: bool = True,
        built_once: bool = True,
    ) -> Rows:
        """The rows of `stmt`. `quick`: a few index lookups, microseconds (SQLite: on the
        loop). `built_once`: the statement object is a constant, compiled once for asyncpg
        (PostgreSQL); else SQLAlchemy sends it, which renders what asyncpg cannot take."""
        if quick and (rows := self._on_loop(stmt, params)) is not None:
            return rows
        if built_once and self.dialect == "postgresql":
            return await self._fetch(stmt, params)
        async with self.connect() as conn:
            return (await conn.execute(stmt, params)).mappings().all()

    async def first(self, stmt: Executable, params: Params = None) -> Mapping[Any, Any] | None:
        rows = await self.all(stmt, params)
        return rows[0] if rows else None

    def on_loop(self, stmt: Executable, params: Params = None) -> Mapping[Any, Any] | None:
        """SQLite: the first row of a quick read, read on the loop; None when there is none,
        on PostgreSQL, or when the file is busy (read it the usual way then)."""
        rows = self._on_loop(stmt, params)
        return rows[0] if rows else None

    def _on_loop(self, stmt: Executable, params: Params) -> Rows | None:
        """The rows, read on the loop (SQLite); None on PostgreSQL, or when the file is busy
        or unreadable (the thread's way waits, or reports it)."""
        if self._loop is None:
            return None
        try:
            return self._loop.execute(stmt, params).mappings().all()
        except OperationalError:
            return None

    async def _fetch(self, stmt: Executable, params: Params) -> Rows:
        compiled = _compiled(stmt, self.engine.dialect)
        values = compiled.construct_params(params) or {}
        args = [values[name] for name in compiled.positiontup or ()]
        async with self.engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            try:
                records: Rows = await driver.fetch(compiled.string, *args)
            except Exception as error:
                if not unreachable(error):
                    raise
                await conn.invalidate()  # not handed out again half-way through a statement
                raise went_down(self.engine.sync_engine, error) from error
        return records

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


@lru_cache(maxsize=64)
def _compiled(stmt: Executable, dialect: Dialect) -> SQLCompiler:
    """Compiled once: the quick reads are statements built once (by identity)."""
    return cast(SQLCompiler, stmt.compile(dialect=dialect))  # type: ignore[attr-defined]


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
