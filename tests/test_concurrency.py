"""Concurrent requests on one database: writers wait for each other instead of failing."""

import asyncio

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from models.enums import Role
from models.item import Item
from tests.factories import auth_headers, count, make_item, make_user, row

WRITERS = 20


async def test_concurrent_creates_all_succeed(client: AsyncClient, db: AsyncSession) -> None:
    headers = await auth_headers(db, await make_user(db, Role.editor))
    responses = await asyncio.gather(
        *(
            client.post("/items", json={"name": f"Item {n}", "quantity": n}, headers=headers)
            for n in range(WRITERS)
        )
    )
    assert [r.status_code for r in responses] == [201] * WRITERS, [r.text for r in responses]
    assert len({r.json()["item"]["id"] for r in responses}) == WRITERS
    assert await count(db, Item) == WRITERS


async def test_concurrent_patches_with_one_etag_let_exactly_one_through(
    client: AsyncClient, db: AsyncSession
) -> None:
    headers = await auth_headers(db, await make_user(db, Role.editor))
    item = await make_item(db, quantity=0)
    responses = await asyncio.gather(
        *(
            client.patch(
                f"/items/{item.id}",
                json={"quantity": n},
                headers={**headers, "If-Match": '"1"'},
            )
            for n in range(1, WRITERS + 1)
        )
    )
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 1, statuses
    assert set(statuses) <= {200, 409, 412}, [r.text for r in responses]
    [winner] = [r.json()["item"] for r in responses if r.status_code == 200]
    stored = await row(db, Item, item.id)
    assert stored is not None
    assert (stored["version"], stored["quantity"]) == (2, winner["quantity"])
