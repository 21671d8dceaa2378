"""The read routes serialize rows themselves (api/schemas/items.item_json); what they write
must be what `ItemRead` would, byte for byte, for every kind of item."""

from fastapi import FastAPI
from httpx import AsyncClient
from pydantic_core import to_json
from sqlalchemy.ext.asyncio import AsyncSession

from api.schemas.items import ItemRead, item_json
from api.services import items
from models.reads import Reads
from tests.factories import make_item

KINDS = [
    {"name": "Plain", "quantity": 0},
    {"name": "Ünïcode „quoted“ \\ backslash", "quantity": 7, "description": "two\nlines"},
    {"name": "Low", "quantity": 3, "reorder_level": 3, "sku": "LOW-1"},
    {"name": "Stocked", "quantity": 9, "reorder_level": 3, "image_src": "abc.png"},
]


async def test_item_json_is_what_item_read_writes(app: FastAPI, db: AsyncSession) -> None:
    made = [await make_item(db, **kind) for kind in KINDS]
    await db.commit()
    reads: Reads = app.state.reads
    for item in made:
        row = await items.get_row(reads, item.id)
        assert (
            to_json(item_json(row)) == ItemRead.model_validate(dict(row)).model_dump_json().encode()
        )


async def test_the_routes_answer_what_item_read_writes(
    client: AsyncClient, db: AsyncSession
) -> None:
    made = [await make_item(db, **kind) for kind in KINDS]
    await db.commit()
    expected = [ItemRead.model_validate(item).model_dump(mode="json") for item in made]
    single = [(await client.get(f"/items/{item.id}")).json()["item"] for item in made]
    assert single == expected
    listed = (await client.get("/items", params={"limit": 100})).json()
    assert listed["items"] == expected
    assert (listed["total"], listed["total_exact"], listed["skip"]) == (len(made), True, 0)
