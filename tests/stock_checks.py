"""What must hold of stock movements after any sequence of changes (tests share it)."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.item import Item
from models.stock_movement import StockMovement
from tests.factories import fresh


async def movements_of(db: AsyncSession, item_id: int) -> list[StockMovement]:
    """The item's movements as committed now, in the order they were applied."""
    await fresh(db)
    stmt = select(StockMovement).where(StockMovement.item_id == item_id)
    return list(await db.scalars(stmt.order_by(StockMovement.id)))


async def assert_movements_add_up(db: AsyncSession) -> dict[int, int]:
    """Every item's movements sum to its quantity, and each movement's `quantity_after` is
    the sum of the deltas up to it. Returns each item's quantity."""
    await fresh(db)
    quantities = {i.id: i.quantity for i in await db.scalars(select(Item))}
    moves: dict[int, list[Any]] = {i: [] for i in quantities}
    for m in await db.scalars(select(StockMovement).order_by(StockMovement.id)):
        moves[m.item_id].append(m)
    for item_id, quantity in quantities.items():
        running = 0
        for m in moves[item_id]:
            running += m.delta
            assert m.quantity_after == running, (item_id, m.id, m.quantity_after, running)
            assert m.quantity_after >= 0
        assert running == quantity, (item_id, running, quantity)
    return quantities
