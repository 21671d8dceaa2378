"""A connection pool that hands out connections first come, first served.

SQLAlchemy's asyncio pool queues on an `asyncio.Queue`, which lets a newcomer take a connection
that was just returned for a task already waiting: the waiter wakes to an empty queue and goes
to the back of the line. Under more clients than connections some requests lose that race
over and over (bench/RESULTS.md). Here a returned connection goes straight to the longest
waiter, and nobody takes one past a waiter.
"""

import asyncio
from collections import deque
from typing import Any

from sqlalchemy import exc
from sqlalchemy.pool import AsyncAdaptedQueuePool, PoolProxiedConnection
from sqlalchemy.util import await_only as await_
from sqlalchemy.util.queue import AsyncAdaptedQueue, Empty

from models.availability import Availability, DatabaseUnavailable, describe, unreachable


class FairQueue(AsyncAdaptedQueue[Any]):
    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        super().__init__(maxsize, use_lifo)
        self._waiters: deque[asyncio.Future[Any]] = deque()

    def _has_waiters(self) -> bool:
        while self._waiters and self._waiters[0].done():
            self._waiters.popleft()
        return bool(self._waiters)

    def put_nowait(self, item: Any) -> None:
        if self._has_waiters():
            self._waiters.popleft().set_result(item)
        else:
            super().put_nowait(item)

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        self.put_nowait(item)  # the pool never holds more than it has room for

    def get_nowait(self) -> Any:
        if self._has_waiters():
            raise Empty()
        return super().get_nowait()

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        if not self._has_waiters() and not self.empty():
            return super().get_nowait()
        if not block:
            raise Empty()
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await_(asyncio.wait_for(waiter, timeout))
        except DatabaseUnavailable:
            raise  # fail_waiters: no connection is coming
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                # Handed a connection just as we gave up: pass it on.
                self.put_nowait(waiter.result())
            else:
                waiter.cancel()
            if isinstance(exc, TimeoutError):
                raise Empty() from exc
            raise

    def fail_waiters(self, error: DatabaseUnavailable) -> None:
        """The database went down: whoever waits for a connection is answered now, rather
        than when their wait times out and they try to connect themselves."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)


class FairQueuePool(AsyncAdaptedQueuePool):
    _queue_class = FairQueue
    # Log as SQLAlchemy's own pool does: under "sqlalchemy", which SQLAlchemy keeps at WARNING.
    _sqla_logger_namespace = "sqlalchemy.pool.impl.FairQueuePool"

    _pool: FairQueue

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.availability = Availability(self._pool.fail_waiters)

    def recreate(self) -> "FairQueuePool":
        pool = super().recreate()
        assert isinstance(pool, FairQueuePool)
        pool.availability = self.availability
        self.availability.on_down = pool._pool.fail_waiters
        return pool

    def connect(self) -> PoolProxiedConnection:
        """A connection, or DatabaseUnavailable (models/availability.py): at once while the
        database is down, except for one request a second that finds out if it is back."""
        state = self.availability
        probe = state.down_since is not None
        if probe and not state.start_probe():
            raise state.went_down("still unreachable")
        try:
            connection = super().connect()
        except exc.TimeoutError:
            raise self.availability.pool_timeout(self._timeout) from None
        except Exception as error:
            if not unreachable(error):
                raise
            raise state.went_down(describe(error)) from error
        finally:
            if probe:
                state.end_probe()
        state.came_back()
        return connection
