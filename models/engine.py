import contextlib
import os
import stat
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, make_url
from sqlalchemy.engine import Connection, ExceptionContext, ExecutionContext
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import await_only as await_  # await_only: also on SQLAlchemy 2.0

from models.availability import DatabaseUnavailable, describe, unreachable
from models.pool import FairQueuePool
from models.settings import DatabaseSettings
from models.sqlite_driver import WRITER_BEGIN, OneTripConnection, OneTripDBAPI
from models.transaction_hooks import on_commit, on_rollback
from models.writers import WriterTurn, sqlite_writers

# Execution option of a write transaction on SQLite: its WriterTurn. The transaction begins at
# its first statement, with the writer's turn and BEGIN IMMEDIATE (a deferred transaction that
# reads, then writes after another writer committed, fails at once with SQLITE_BUSY).
SQLITE_WRITER = "sqlite_writer"
# Execution option of reads without a transaction on SQLite (use_autocommit): each statement
# on its own.
SQLITE_AUTOCOMMIT = "sqlite_autocommit"
# Statement option: this read may run before the write transaction begins (on SQLite, on its
# own, outside the writer's turn). For the caller's credentials, checked before anything else,
# so that the one writer at a time does not wait for them.
BEFORE_WRITING = "before_writing"


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    url = settings.database_url
    if url.startswith("sqlite"):
        return _sqlite_engine(url, settings)
    engine = create_async_engine(
        url,
        echo=settings.DB_ECHO,
        # Echo shows the statements, never their values (password hashes, tokens' digests).
        hide_parameters=True,
        poolclass=FairQueuePool,
        pool_size=settings.DB_POOL_SIZE,
        max_overflow=settings.DB_MAX_OVERFLOW,
        pool_timeout=settings.DB_POOL_TIMEOUT,
        pool_pre_ping=settings.DB_POOL_PRE_PING,
        # asyncpg: `timeout` bounds opening a connection, `command_timeout` each statement.
        connect_args={
            "timeout": settings.DB_CONNECT_TIMEOUT,
            "command_timeout": settings.DB_COMMAND_TIMEOUT or None,
        },
    )
    event.listen(engine.sync_engine, "handle_error", _unavailable)
    return engine


def _unavailable(context: ExceptionContext) -> DatabaseUnavailable | None:
    """A lost connection or a statement past its timeout: the connection is dropped (not
    handed out again half-way through a statement) and the request answered 503."""
    error = context.original_exception
    if not isinstance(error, Exception):
        return None  # cancelled: the client went away, not the database
    if not (context.is_disconnect or unreachable(error)):
        return None
    context.is_disconnect = True
    return went_down(context.engine, error)


def went_down(engine: Engine | None, error: Exception) -> DatabaseUnavailable:
    """The 503 of a connection lost or stalled (its pool's availability notes it)."""
    pool = engine.pool if engine is not None else None
    if not isinstance(pool, FairQueuePool):
        return DatabaseUnavailable(describe(error))
    return pool.availability.went_down(describe(error))


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def add_sqlite_functions(dbapi_connection: Any) -> None:
    # SQLite's lower() folds ASCII only; case-insensitive searches (icontains) must match
    # "Ö" with "ö" as they do on PostgreSQL.
    dbapi_connection.create_function("lower", 1, _lower, deterministic=True)


def _sqlite_engine(url: str, settings: DatabaseSettings) -> AsyncEngine:
    database = make_url(url).database
    if database and database != ":memory:":
        _private_database(Path(database))
    engine = create_async_engine(
        url,
        module=OneTripDBAPI(),
        echo=settings.DB_ECHO,
        hide_parameters=True,
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
        add_sqlite_functions(dbapi_connection)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if SQLITE_WRITER in options:
            return  # begins at its first statement (_on_statement)
        if options.get(SQLITE_AUTOCOMMIT):
            return  # each statement on its own (use_autocommit)
        _begin_with_next_statement(conn, "BEGIN")

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _on_statement(
        conn: Connection,
        _cursor: Any,
        _statement: str,
        _parameters: Any,
        context: ExecutionContext | None,
        _executemany: bool,
    ) -> None:
        turn: WriterTurn | None = conn.get_execution_options().get(SQLITE_WRITER)
        if turn is None or turn.taken:
            return
        if context is not None and context.execution_options.get(BEFORE_WRITING):
            return  # reads on its own (SQLite's autocommit), before the writer's turn
        await_(turn.take())
        _begin_with_next_statement(conn, WRITER_BEGIN)

    return engine


def _private_database(path: Path) -> None:
    """The database holds password hashes: its folder (when created here) and its files are
    the service's user's alone. SQLite gives the -wal and -shm files the database's mode."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))  # an empty file is a new database
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(OSError):  # gone, or not ours to change
            mode = stat.S_IMODE(file.stat().st_mode)
            if mode & 0o077:
                file.chmod(mode & 0o700)


def _begin_with_next_statement(conn: Connection, begin: str) -> None:
    # SQLAlchemy, not the driver, begins transactions (see _on_connect); the BEGIN goes to
    # aiosqlite's thread in the same trip as the statement that follows (models/sqlite_driver).
    driver = conn.connection.dbapi_connection
    assert isinstance(driver, OneTripConnection)
    driver.begin_with = begin


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Objects stay usable after commit: responses are built from them.
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def end_read(session: AsyncSession) -> None:
    """End the reads (a read-only transaction, or autocommit reads after `use_autocommit`)
    before slow work (hashing, receiving an upload): the session gives its connection back and
    holds no lock or snapshot meanwhile. Loaded objects expire: re-read what you use."""
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("ending the transaction would drop unflushed changes")
    await session.rollback()


async def use_autocommit(session: AsyncSession) -> None:
    """Run a read-only request's statements (or a request's reads before it ends them with
    `end_read`) in autocommit, without a transaction around them.

    PostgreSQL: under READ COMMITTED each statement of a transaction sees its own snapshot
    anyway, so autocommit reads see what they would in a transaction, without the BEGIN and
    COMMIT round trips (GET /items/{id}: one round trip instead of three). SQLite does the
    same: each statement reads its own snapshot, and there is no COMMIT trip to end the
    request. What must share one snapshot goes in one statement (a list page and its total).
    """
    bind = session.bind
    if not isinstance(bind, AsyncEngine):
        return
    if bind.dialect.name == "postgresql":
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    elif bind.dialect.name == "sqlite":
        await session.connection(execution_options={SQLITE_AUTOCOMMIT: True})


async def begin_write(session: AsyncSession) -> None:
    """Make the session's next transaction a writer's (on SQLite: BEGIN IMMEDIATE, in the
    writer's turn, at its first statement).

    Call it before the transaction has read anything: SQLite cannot turn a reader into a
    writer once another writer has committed after it began. A request that reads and does
    slow work first calls `end_read`, then this, then re-reads (`populate_existing`) what it
    is about to change.
    """
    bind = session.bind
    if not isinstance(bind, AsyncEngine) or bind.dialect.name != "sqlite":
        await session.connection()
        return
    # This service's writers queue for their turn instead of polling SQLite's lock; the turn
    # ends with the transaction, whichever way it ends.
    turn = WriterTurn(sqlite_writers(bind))
    on_commit(session, turn.end)
    on_rollback(session, turn.end)
    await session.connection(execution_options={SQLITE_WRITER: turn})
