from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status

from api.deps import ItemDep, ItemId
from api.schemas.common import Message, error_responses
from api.schemas.items import ItemCreate, ItemList, ItemOut, ItemQuery, ItemRead, ItemUpdate
from api.services import items
from auth.deps import EditorUser, ItemAdminUser
from models.session import SessionDep

router = APIRouter(prefix="/items", tags=["items"])


@router.get("", summary="List items", responses=error_responses(503))
async def list_items(db: SessionDep, query: Annotated[ItemQuery, Query()]) -> ItemList:
    """A page of items, optionally searched, filtered by quantity and sorted.

    `total` counts every match up to 10,000; past that it is 10,000 and `total_exact` is
    false. A search term of 1 or 2 characters reads every item and may be stopped (503)."""
    page = await items.search(db, query)
    return ItemList(
        items=[ItemRead.model_validate(r) for r in page.rows],
        total=page.total,
        total_exact=page.total_exact,
        skip=query.skip,
        limit=query.limit,
    )


@router.get(
    "/{item_id}",
    summary="Get an item",
    response_model=ItemOut,
    responses={**error_responses(404), 304: {"description": "Not modified (If-None-Match)"}},
)
async def get_item(
    item: ItemDep,
    response: Response,
    if_none_match: Annotated[str | None, Header()] = None,
) -> ItemOut | Response:
    """The item, with its `ETag` (send it back in `If-Match` to update safely)."""
    tag = items.etag(item.version)
    if if_none_match is not None and items.etag_matches(if_none_match, item.version, weak=True):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": tag})
    response.headers["ETag"] = tag
    return ItemOut(item=ItemRead.model_validate(item))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create an item",
    responses=error_responses(409),
)
async def create_item(
    user: EditorUser,
    data: ItemCreate,
    db: SessionDep,
    request: Request,
    response: Response,
) -> ItemOut:
    item = await items.create(db, data, user)
    # url_for("get_item") would search every route for the name, on every create.
    response.headers["Location"] = f"{request.scope.get('root_path', '')}{router.prefix}/{item.id}"
    response.headers["ETag"] = items.etag(item.version)
    return ItemOut(item=ItemRead.model_validate(item))


@router.patch("/{item_id}", summary="Update an item", responses=error_responses(404, 409, 412))
async def update_item(
    user: EditorUser,
    item_id: ItemId,
    data: ItemUpdate,
    db: SessionDep,
    response: Response,
    if_match: Annotated[str | None, Header(description="ETag from a GET; stale → 412")] = None,
) -> ItemOut:
    """Change only the fields sent."""
    item = await items.update(db, item_id, data, user, if_match)
    response.headers["ETag"] = items.etag(item.version)
    return ItemOut(item=ItemRead.model_validate(item))


@router.delete("/{item_id}", summary="Delete an item", responses=error_responses(404))
async def delete_item(_: ItemAdminUser, item: ItemDep, db: SessionDep) -> Message:
    await items.delete(db, item)
    return Message(message="Item deleted")
