"""SQLAlchemy's aiosqlite adapter, with each statement in one trip to aiosqlite's thread, and
the statements of a writer's transaction, once it has begun, run on the event loop itself.

aiosqlite runs every call on the connection's own thread, and each call is a trip there and
back (a queue put, a thread wake-up, a loop wake-up). SQLAlchemy's adapter cursor makes one
trip to open a cursor, one to execute, one to fetch the rows and one to close the cursor: four
for a SELECT, three for an INSERT. Here one function on that thread does all of it and hands
back the rows with the cursor's description, row count and last row id.

A writer's transaction (`BEGIN IMMEDIATE`, in this service's writer's turn: models/writers.py)
holds SQLite's one write lock from its first statement to its commit. Its statements take
microseconds and can wait for nothing once the lock is held, so they run on the loop, in
place: no trip, and no turn of the loop in which other requests' work runs while the lock is
held. The `BEGIN IMMEDIATE` is tried in place too, told not to wait (busy_timeout 0): this
service's writers take their turns before it (models/writers.py), so the lock is free unless
another program holds it, and then the BEGIN goes to the thread to wait as usual. The `COMMIT`
(which waits for the disk) goes to the thread. The connection is opened with
check_same_thread=False; its calls never overlap (each trip is awaited before the next call).
"""

import sqlite3
from collections import deque
from collections.abc import Callable
from typing import Any

import aiosqlite
from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_connection
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util import await_only as await_

_Outcome = tuple[list[Any], Any, int, int | None]

# How a writer's transaction begins (models/engine.py); its later statements run in place.
WRITER_BEGIN = "BEGIN IMMEDIATE"


def _on_thread(
    conn: sqlite3.Connection, begin: str | None, statement: Callable[[sqlite3.Cursor], object]
) -> tuple[_Outcome | None, Exception | None, bool]:
    """On aiosqlite's thread: BEGIN if one is pending, then the statement on a cursor of its
    own. A failed BEGIN raises (nothing began); a failed statement is returned, its
    transaction begun. Last, whether a transaction is open."""
    if begin:
        conn.execute(begin).close()
    cursor = conn.cursor()
    try:
        statement(cursor)
        rows = cursor.fetchall() if cursor.description else []
        outcome = (rows, cursor.description, cursor.rowcount, cursor.lastrowid)
        return outcome, None, conn.in_transaction
    except Exception as exc:
        return None, exc, conn.in_transaction
    finally:
        cursor.close()


def _begun_at_once(conn: sqlite3.Connection, busy_timeout_ms: int) -> bool:
    """BEGIN IMMEDIATE on the loop without waiting for SQLite's lock: False (nothing begun)
    when it is not free at once, or anything else went wrong (the thread tries again)."""
    conn.execute("PRAGMA busy_timeout=0").close()
    try:
        conn.execute(WRITER_BEGIN).close()
    except sqlite3.Error:
        return False
    finally:
        conn.execute(f"PRAGMA busy_timeout={busy_timeout_ms}").close()
    return True


async def _in_place(
    conn: sqlite3.Connection, statement: Callable[[sqlite3.Cursor], object]
) -> tuple[_Outcome | None, Exception | None, bool]:
    """The statement on the event loop's thread: a coroutine that never suspends."""
    return _on_thread(conn, None, statement)


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_dbapi_connection) -> None:
        # No aiosqlite cursor (the base class opens one, a trip): each statement opens its own.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass  # every row is fetched at once

    def execute(self, operation: Any, parameters: Any = None) -> None:
        if parameters is None:
            self._run(lambda cursor: cursor.execute(operation))
        else:
            self._run(lambda cursor: cursor.execute(operation, parameters))

    def executemany(self, operation: Any, seq_of_parameters: Any) -> None:
        self._run(lambda cursor: cursor.executemany(operation, seq_of_parameters))

    def _run(self, statement: Callable[[sqlite3.Cursor], object]) -> None:
        adapted: OneTripConnection = self._adapt_connection  # type: ignore[assignment]
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        try:
            if adapted.begin_with == WRITER_BEGIN and adapted.begun_at_once():
                adapted.begin_with, adapted.writing = None, True
                adapted.in_transaction = True
            if adapted.writing and adapted.in_transaction:
                # Awaited (SQLAlchemy requires an await per execution), done before it returns.
                outcome, failure, adapted.in_transaction = await_(
                    _in_place(connection._conn, statement)
                )
            else:
                begin = adapted.begin_with
                outcome, failure, adapted.in_transaction = await_(
                    connection._execute(  # type: ignore[no-untyped-call]
                        _on_thread, connection._conn, begin, statement
                    )
                )
                adapted.begin_with = None  # begun, whatever became of the statement
                adapted.writing = begin == WRITER_BEGIN and adapted.in_transaction
            if failure is not None:
                raise failure
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        assert outcome is not None  # a failure raised above
        rows, self._description, self._rowcount, self._lastrowid = outcome
        self._rows = deque(rows)

    async def _async_soft_close(self) -> None:
        return  # the statement's cursor is already closed

    def close(self) -> None:
        self._rows.clear()


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    """`begin_with`: a BEGIN statement to run on the thread just before the transaction's
    first statement, in the same trip. Commit and rollback make no trip when no transaction
    is open (SQLite would do nothing): one that never ran a statement, or the pool's
    rollback of a connection returned after its commit."""

    __slots__ = ("begin_with", "busy_timeout_ms", "in_transaction", "writing")
    _cursor_cls = OneTripCursor

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self.begin_with: str | None = None
        self.in_transaction = False
        self.writing = False  # in a transaction begun with WRITER_BEGIN
        self.busy_timeout_ms: int | None = None  # as the engine set it, read at first need

    def begun_at_once(self) -> bool:
        conn: sqlite3.Connection = self._connection._conn
        if self.busy_timeout_ms is None:
            self.busy_timeout_ms = int(conn.execute("PRAGMA busy_timeout").fetchone()[0])
        return _begun_at_once(conn, self.busy_timeout_ms)

    def commit(self) -> None:
        self.begin_with = None
        self.writing = False
        if self.in_transaction:
            super().commit()
            self.in_transaction = False

    def rollback(self) -> None:
        self.begin_with = None
        self.writing = False
        if self.in_transaction:
            super().rollback()
            self.in_transaction = False


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """Pass as create_async_engine(..., module=OneTripDBAPI()) for a sqlite+aiosqlite URL."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        # Called from the loop in a writer's transaction, from aiosqlite's thread otherwise.
        adapted = super().connect(*arg, **{**kw, "check_same_thread": False})
        return OneTripConnection(self, adapted._connection)
