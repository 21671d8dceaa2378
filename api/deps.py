"""Path ids turned into loaded rows (or 404), declared once as Annotated aliases."""

from typing import Annotated

from fastapi import Depends, Path, Request

from api.schemas.common import MAX_INT32
from api.services import items, users
from models.item import Item
from models.session import READ_METHODS, SessionDep
from models.user import User

ItemId = Annotated[int, Path(ge=1, le=MAX_INT32)]


async def item_by_id(db: SessionDep, request: Request, item_id: ItemId) -> Item:
    # A write (a delete, an image change) locks the row it read (PostgreSQL; SQLite has one
    # writer anyway): concurrent writes to one item queue and each applies to the latest
    # version, instead of the later ones failing on a version they never saw. A PATCH needs
    # no read first: its UPDATE takes the lock (api/services/items.update).
    return await items.get(db, item_id, for_update=request.method not in READ_METHODS)


async def user_by_id(db: SessionDep, user_id: Annotated[int, Path(ge=1, le=MAX_INT32)]) -> User:
    return await users.get(db, user_id)


ItemDep = Annotated[Item, Depends(item_by_id)]
UserDep = Annotated[User, Depends(user_by_id)]
