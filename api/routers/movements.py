from typing import Annotated

from fastapi import APIRouter, Query

from api.schemas.stock import MovementList, MovementQuery
from api.services import stock
from auth.deps import StockViewer
from models.session import SessionDep

router = APIRouter(tags=["stock"])


@router.get("/movements", summary="Stock movements of every item")
async def list_movements(
    _: StockViewer, db: SessionDep, query: Annotated[MovementQuery, Query()]
) -> MovementList:
    """Newest first; filtered by item, reason, user and time (`since`, `until`: ISO 8601)."""
    return await stock.movements(db, query)
