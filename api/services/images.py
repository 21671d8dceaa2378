"""Item images: the rules. Files follow the transaction: placed before the commit, removed
again if it fails; a replaced or deleted image's file goes once the commit has succeeded."""

from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

from anyio import to_thread
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api import imaging, storage
from api.errors import NotFound
from api.services.items import ITEM_NOT_FOUND
from api.settings import get_api_settings
from auth import audit
from auth.audit import Origin
from models.engine import begin_write, end_read
from models.item import Item
from models.transaction_hooks import on_commit, on_rollback
from models.user import User

# Writes the upload's bytes into a file, at most that many (api/upload.receive_file).
Receive = Callable[[Path, int], Awaitable[int]]


async def replace(
    db: AsyncSession, item: Item, receive: Receive, actor: User, origin: Origin
) -> Item:
    """Store the uploaded image (`receive` writes it into a file) as the item's image."""
    settings = get_api_settings()
    # Read now: ending the transaction expires the loaded rows.
    item_id, who = item.id, audit.UserRef(actor.id, actor.username)
    # Receiving and decoding take as long as the client makes them: hold no transaction
    # meanwhile (on SQLite that would be the database's write lock, on PostgreSQL the row lock).
    await end_read(db)
    with storage.temp_file() as received, storage.temp_file() as cleaned:
        await receive(received, settings.MAX_UPLOAD_BYTES)
        extension = await imaging.clean(received, cleaned, settings.MAX_IMAGE_PIXELS)
        name = storage.new_name(extension)
        await begin_write(db)
        current = await db.get(Item, item_id, populate_existing=True, with_for_update=True)
        if current is None:
            raise NotFound(ITEM_NOT_FOUND)
        on_rollback(db, partial(storage.remove, name))
        await to_thread.run_sync(storage.place, cleaned, name)
    await _set_image(db, current, name, who, origin)
    return current


async def remove(db: AsyncSession, item: Item, actor: User, origin: Origin) -> Item:
    """Take the item's image away (nothing to do if it has none)."""
    if item.image_src is not None:
        await _set_image(db, item, None, audit.UserRef(actor.id, actor.username), origin)
    return item


async def _set_image(
    db: AsyncSession, item: Item, name: str | None, actor: audit.UserRef, origin: Origin
) -> None:
    old = item.image_src
    if old is not None:
        on_commit(db, partial(storage.remove, old))
    item.image_src = name
    item.updated_by_id = actor.id
    await db.flush()
    changes = {"image_src": {"old": old, "new": name}}
    await audit.record(db, "item.image", actor, ("item", item.id), changes, origin)


async def unreferenced_files(db: AsyncSession) -> list[str]:
    """Files in the upload folder no item references (younger ones are left alone)."""
    # Files first, references second: an image committed in between counts as referenced.
    candidates = await to_thread.run_sync(storage.settled_files)
    referenced = set(await db.scalars(select(Item.image_src).where(Item.image_src.is_not(None))))
    return [name for name in candidates if name not in referenced]
