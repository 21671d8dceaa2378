import gc

from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_served_app
from models.enums import Role
from models.item import Item
from tests.factories import PASSWORD, make_user


async def test_login_then_create_item(client: AsyncClient, db: AsyncSession) -> None:
    await make_user(db, Role.editor, username="Ed")
    r = await client.post("/token", data={"username": "ED", "password": PASSWORD})
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    r = await client.post(
        "/items",
        json={"name": "Bolt", "quantity": 3},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 201, r.text
    body = r.json()["item"]
    assert r.headers["location"] == f"/items/{body['id']}"
    assert (await db.scalar(select(Item.name).where(Item.id == body["id"]))) == "Bolt"


def test_the_served_app_freezes_what_it_built_at_startup() -> None:
    gc.unfreeze()
    try:
        create_served_app()
        assert gc.get_freeze_count() > 0  # its startup objects are spared by the collector
    finally:
        gc.unfreeze()
