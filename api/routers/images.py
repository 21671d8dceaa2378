from functools import partial
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Header, Request, Response, status
from fastapi.responses import FileResponse

from api import etags, storage, upload
from api.deps import ItemDep
from api.errors import NotFound
from api.schemas.common import error_responses
from api.schemas.items import ItemOut, ItemRead
from api.services import images
from auth.audit import OriginDep
from auth.bearer_first import BearerFirstRoute
from auth.deps import EditorUser
from models.session import SessionDep

router = APIRouter(tags=["images"], route_class=BearerFirstRoute)

# The body is read from the request stream (api/upload.py), so FastAPI does not know it:
# declared here for OpenAPI, and so Swagger UI offers a file picker.
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "contentMediaType": "application/octet-stream",
                            "description": "A JPEG, PNG, GIF or WebP image (judged by its bytes)",
                        }
                    },
                }
            }
        },
    }
}
# Stored names never change content, so caches may keep them for good.
CACHE_HEADERS = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}
IMAGE_NOT_FOUND = "Image not found"


@router.patch(
    "/item-image/{item_id}",
    summary="Upload or replace an item's image",
    responses=error_responses(
        401,
        403,
        404,
        413,
        415,
        (503, storage.UNAVAILABLE),
        (507, storage.NO_SPACE),
    ),
    openapi_extra=UPLOAD_BODY,
)
async def upload_image(
    user: EditorUser, item: ItemDep, db: SessionDep, origin: OriginDep, request: Request
) -> ItemOut:
    """Multipart field `file`: a JPEG, PNG, GIF or WebP image of at most `MAX_UPLOAD_BYTES`.

    The image is re-encoded without its metadata (EXIF, GPS, comments) and stored under a
    name the server picks; the old image, if any, is removed.
    """
    receive = partial(upload.receive_file, request)
    item = await images.replace(db, item, receive, user, origin)
    return ItemOut(item=ItemRead.model_validate(item))


@router.delete(
    "/item-image/{item_id}",
    summary="Remove an item's image",
    responses=error_responses(401, 403, 404),
)
async def delete_image(
    user: EditorUser, item: ItemDep, db: SessionDep, origin: OriginDep
) -> ItemOut:
    """The file is removed once the change commits; an item without an image is unchanged."""
    item = await images.remove(db, item, user, origin)
    return ItemOut(item=ItemRead.model_validate(item))


@router.get(
    "/static/{file}",
    summary="An item image",
    response_class=FileResponse,
    responses={
        200: {
            "content": {
                t: {"schema": {"type": "string", "format": "binary"}}
                for t in storage.MEDIA_TYPES.values()
            }
        },
        304: {"description": "Not modified (If-None-Match)"},
        **error_responses((404, IMAGE_NOT_FOUND)),
    },
)
async def get_image(file: str, if_none_match: Annotated[str | None, Header()] = None) -> Response:
    """The stored image named in an item's `image_url`; 404 for any other name."""
    path = await to_thread.run_sync(storage.stored_file, file)
    if path is None:
        raise NotFound(IMAGE_NOT_FOUND)
    tag = f'"{path.stem}"'
    headers = {**CACHE_HEADERS, "ETag": tag}
    if if_none_match is not None and etags.matches(if_none_match, tag, weak=True):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return FileResponse(path, media_type=storage.media_type(file), headers=headers)
