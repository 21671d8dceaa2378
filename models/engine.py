import contextlib
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

from sqlalchemy import ClauseElement, Engine, Executable, event, make_url
from sqlalchemy.engine import Connection, ExceptionContext, ExecutionContext
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
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
# Session.info key: the WriterTurn that begin_write made for the session's next transaction.
_NEXT_WRITER = "inventory.next_writer"


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


def _locked(context: ExceptionContext) -> DatabaseUnavailable | None:
    """SQLite: another program held the file's lock past busy_timeout. A 503 (try again),
    not a 500; the connection is sound and the database not down."""
    error: BaseException | None = context.original_exception
    while error is not None:
        if isinstance(error, sqlite3.OperationalError):
            busy = getattr(error, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY
            return DatabaseUnavailable(describe(error)) if busy else None
        error = error.__cause__ or error.__context__
    return None


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
        # The connection returned last goes out first: one writer after another takes the
        # same connection (SessionWithTurns), with its page cache.
        pool_use_lifo=True,
    )
    busy_ms = settings.SQLITE_BUSY_TIMEOUT_MS
    event.listen(engine.sync_engine, "handle_error", _locked)

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
        if turn is None or turn.begun:
            return
        if context is not None and context.execution_options.get(BEFORE_WRITING):
            return  # reads on its own (SQLite's autocommit), before the writer's turn
        await_(turn.take())  # taken already unless a read BEFORE_WRITING came first
        turn.begun = True
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


class SessionWithTurns(Session):
    """A session whose SQLite writer (begin_write) waits for its turn before it takes a
    connection from the pool, not while holding one.

    Waiting writers then hold no connections, and one writer after another takes the same
    connection from the (LIFO) pool: SQLite keeps a connection's page cache while nobody else
    has written, and drops it when another connection has, so a writer on a connection of its
    own would read again every page it touches (bench/RESULTS.md: creates a second 1.14 times
    on one worker). Session.get_bind is where SQLAlchemy asks which engine a statement, a
    flush or `connection()` goes to, before it takes a connection (so code that only wants
    the database's kind asks `dialect_name`, not get_bind).
    """

    def get_bind(
        self,
        mapper: Any = None,
        *,
        clause: ClauseElement | None = None,
        **kw: Any,
    ) -> Engine | Connection:
        turn: WriterTurn | None = self.info.pop(_NEXT_WRITER, None)
        if turn is not None:
            reads_first = isinstance(clause, Executable) and clause.get_execution_options().get(
                BEFORE_WRITING
            )
            if not reads_first:
                await_(turn.take())
            try:
                self.connection(execution_options={SQLITE_WRITER: turn})
            except BaseException:
                turn.end()  # no transaction began: none would end the turn
                raise
        return super().get_bind(mapper, clause=clause, **kw)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Objects stay usable after commit: responses are built from them.
    return async_sessionmaker(
        engine, expire_on_commit=False, autoflush=False, sync_session_class=SessionWithTurns
    )


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


def will_write(session: AsyncSession) -> bool:
    """Whether the session's transaction is a writer's, begun or about to be (begin_write)."""
    return session.in_transaction() or _NEXT_WRITER in session.info


def dialect_name(session: AsyncSession) -> str:
    """The session's database kind, without asking Session.get_bind (SessionWithTurns)."""
    bind = session.bind
    assert bind is not None
    return bind.dialect.name


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
    # This service's writers queue for their turn instead of polling SQLite's lock, at the
    # transaction's first statement (SessionWithTurns); the turn ends with the transaction,
    # whichever way it ends.
    turn = WriterTurn(sqlite_writers(bind))
    on_commit(session, turn.end)
    on_rollback(session, turn.end)
    session.info[_NEXT_WRITER] = turn
