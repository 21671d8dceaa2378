"""The connection pool serves waiting requests first come, first served."""

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import exc, text
from sqlalchemy.util import greenlet_spawn
from sqlalchemy.util.queue import AsyncAdaptedQueue, Empty

from models.engine import create_engine
from models.pool import FairQueue
from models.settings import DatabaseSettings
from tests.waiting import until


async def _get(queue: AsyncAdaptedQueue[str], wait_s: float = 5) -> str:
    return await greenlet_spawn(queue.get, True, wait_s)


def _queued(queue: AsyncAdaptedQueue[Any]) -> int:
    """How many wait in `queue` for an item."""
    if isinstance(queue, FairQueue):
        return sum(not waiter.done() for waiter in queue._waiters)
    return len(queue._queue._getters)  # type: ignore[attr-defined]


async def _waiting(queue: AsyncAdaptedQueue[str], count: int) -> list[asyncio.Task[str]]:
    tasks = []
    for _ in range(count):
        tasks.append(asyncio.create_task(_get(queue)))
        await until(lambda: _queued(queue) == len(tasks))  # each waits before the next arrives
    return tasks


async def test_a_returned_connection_goes_to_the_waiter_not_a_newcomer() -> None:
    queue = FairQueue(maxsize=2)
    [waiter] = await _waiting(queue, 1)
    queue.put_nowait("conn")
    with pytest.raises(Empty):  # a newcomer arriving now does not take it
        queue.get_nowait()
    assert await waiter == "conn"


async def test_sqlalchemys_own_queue_lets_a_newcomer_take_it() -> None:
    # Why FairQueue exists: the waiter above loses this race, then queues again at the back.
    queue: AsyncAdaptedQueue[str] = AsyncAdaptedQueue(maxsize=2)
    [waiter] = await _waiting(queue, 1)
    queue.put_nowait("conn")
    assert queue.get_nowait() == "conn"
    waiter.cancel()


async def test_waiters_are_served_in_arrival_order() -> None:
    queue = FairQueue(maxsize=3)
    waiters = await _waiting(queue, 3)
    for name in ("a", "b", "c"):
        queue.put_nowait(name)
    assert await asyncio.gather(*waiters) == ["a", "b", "c"]


async def test_a_waiter_that_gave_up_takes_nothing() -> None:
    queue = FairQueue(maxsize=2)
    with pytest.raises(Empty):
        await _get(queue, wait_s=0.05)
    [cancelled] = await _waiting(queue, 1)
    cancelled.cancel()
    await until(cancelled.done)
    queue.put_nowait("conn")
    assert queue.get_nowait() == "conn"


async def test_the_engine_uses_it_and_times_out_as_configured(tmp_path: Path) -> None:
    settings = DatabaseSettings(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'pool.db'}",
        DB_POOL_SIZE=1,
        DB_MAX_OVERFLOW=0,
        DB_POOL_TIMEOUT=0.2,
    )
    engine = create_engine(settings)
    try:
        order: list[str] = []

        async def use(name: str) -> None:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
                order.append(name)

        async with engine.connect() as held:
            await held.execute(text("SELECT 1"))
            with pytest.raises(exc.TimeoutError):
                await use("timed out")
            waiters = [asyncio.create_task(use(n)) for n in ("first", "second")]
            await until(lambda: _queued(engine.sync_engine.pool._pool) == 2)  # type: ignore[attr-defined]
        await asyncio.gather(*waiters)
        assert order == ["first", "second"]
    finally:
        await engine.dispose()
