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

from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util import await_only as await_
from sqlalchemy.util.queue import AsyncAdaptedQueue, Empty


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
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                # Handed a connection just as we gave up: pass it on.
                self.put_nowait(waiter.result())
            else:
                waiter.cancel()
            if isinstance(exc, TimeoutError):
                raise Empty() from exc
            raise


class FairQueuePool(AsyncAdaptedQueuePool):
    _queue_class = FairQueue
    # Log as SQLAlchemy's own pool does: under "sqlalchemy", which SQLAlchemy keeps at WARNING.
    _sqla_logger_namespace = "sqlalchemy.pool.impl.FairQueuePool"
