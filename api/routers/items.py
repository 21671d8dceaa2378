from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status

from api.deps import ItemDep, ItemId
from api.responses import json_response
from api.schemas.common import Message, error_responses
from api.schemas.items import (
    ItemCreate,
    ItemList,
    ItemOut,
    ItemQuery,
    ItemRead,
    ItemUpdate,
    item_json,
)
from api.schemas.stock import AdjustOut, ItemMovementQuery, MovementList, StockAdjustment
from api.services import items, stock
from auth.audit import OriginDep
from auth.bearer_first import BearerFirstRoute
from auth.deps import EditorUser, ItemDeleter, StockViewer
from models.reads import ReadsDep
from models.session import SessionDep

router = APIRouter(prefix="/items", tags=["items"], route_class=BearerFirstRoute)

IfMatch = Annotated[str | None, Header(description="ETag from a GET; stale → 412")]


@router.get(
    "",
    summary="List items",
    response_model=ItemList,
    responses=error_responses((503, items.SEARCH_TOO_LONG)),
)
async def list_items(reads: ReadsDep, query: Annotated[ItemQuery, Query()]) -> Response:
    """A page of items, optionally searched, filtered (by quantity, exact sku, low stock) and
    sorted.

    `total` counts every match up to 10,000; past that it is 10,000 and `total_exact` is
    false. A search term of 1 or 2 characters reads every item and may be stopped (503)."""
    page = await items.search(reads, query)
    return json_response(
        {
            "items": [item_json(row) for row in page.rows],
            "total": page.total,
            "total_exact": page.total_exact,
            "skip": query.skip,
            "limit": query.limit,
        }
    )


@router.get(
    "/{item_id}",
    summary="Get an item",
    response_model=ItemOut,
    responses={**error_responses(404), 304: {"description": "Not modified (If-None-Match)"}},
)
async def get_item(
    reads: ReadsDep,
    item_id: ItemId,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The item, with its `ETag` (send it back in `If-Match` to update safely)."""
    row = await items.get_row(reads, item_id)
    tag = items.etag(row["version"])
    if if_none_match is not None and items.etag_matches(if_none_match, row["version"], weak=True):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": tag})
    return json_response({"item": item_json(row)}, headers={"ETag": tag})


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create an item",
    responses=error_responses((409, items.DUPLICATE_SKU)),
)
async def create_item(
    user: EditorUser,
    data: ItemCreate,
    db: SessionDep,
    origin: OriginDep,
    request: Request,
    response: Response,
) -> ItemOut:
    """A new item at version 1; its `Location` and `ETag` are in the headers. A quantity
    above 0 is recorded as a `received` stock movement."""
    item = await items.create(db, data, user, origin)
    # url_for("get_item") would search every route for the name, on every create.
    response.headers["Location"] = f"{request.scope.get('root_path', '')}{router.prefix}/{item.id}"
    response.headers["ETag"] = items.etag(item.version)
    return ItemOut(item=ItemRead.model_validate(item))


@router.patch(
    "/{item_id}",
    summary="Update an item",
    responses=error_responses(404, (409, items.DUPLICATE_SKU), 412),
)
async def update_item(
    user: EditorUser,
    item_id: ItemId,
    data: ItemUpdate,
    db: SessionDep,
    origin: OriginDep,
    response: Response,
    if_match: IfMatch = None,
) -> ItemOut:
    """Change only the fields sent; `If-Match` with a stale ETag changes nothing (412). A new
    quantity is recorded as a `correction` movement."""
    item = await items.update(db, item_id, data, user, origin, if_match)
    response.headers["ETag"] = items.etag(item.version)
    return ItemOut(item=ItemRead.model_validate(item))


@router.delete("/{item_id}", summary="Delete an item", responses=error_responses(404))
async def delete_item(
    user: ItemDeleter, item: ItemDep, db: SessionDep, origin: OriginDep
) -> Message:
    """Admins only. The item's image file is removed once the deletion commits; its stock
    movements go with it, its audit events stay."""
    await items.delete(db, item, user, origin)
    return Message(message="Item deleted")


@router.post(
    "/{item_id}/adjust",
    summary="Adjust an item's stock",
    responses=error_responses(404, (409, "Not enough stock: 2 in stock, cannot take 3"), 412),
)
async def adjust_stock(
    user: EditorUser,
    item_id: ItemId,
    data: StockAdjustment,
    db: SessionDep,
    origin: OriginDep,
    response: Response,
    if_match: IfMatch = None,
) -> AdjustOut:
    """Take or add stock (`delta` with a reason), or record a count (`quantity`, reason
    `counted`). Applied in the database in one step; a result below 0 (or past the quantity
    limit) is 409 and changes nothing."""
    item, movement = await items.adjust(db, item_id, data, user, origin, if_match)
    response.headers["ETag"] = items.etag(item.version)
    return AdjustOut(
        item=ItemRead.model_validate(item), movement=stock.movement_read(movement, user.username)
    )


@router.get(
    "/{item_id}/movements", summary="An item's stock movements", responses=error_responses(404)
)
async def item_movements(
    _: StockViewer,
    item_id: ItemId,
    db: SessionDep,
    query: Annotated[ItemMovementQuery, Query()],
) -> MovementList:
    """Newest first (the order they were applied in)."""
    return await stock.item_movements(db, item_id, query)
