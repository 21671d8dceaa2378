"""Reorder levels, `low_stock`, and the list's `?low_stock=` and exact `?sku=` filters."""

from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from models.enums import Role
from models.item import Item
from tests.factories import auth_headers, count, make_item, make_user, row


@pytest.fixture
async def headers(db: AsyncSession) -> dict[str, str]:
    return await auth_headers(db, await make_user(db, Role.editor))


async def test_reorder_level_is_set_on_create_and_patch_and_low_stock_follows(
    client: AsyncClient, db: AsyncSession, headers: dict[str, str]
) -> None:
    r = await client.post(
        "/items", json={"name": "Bolt", "quantity": 5, "reorder_level": 5}, headers=headers
    )
    assert r.status_code == 201, r.text
    item = r.json()["item"]
    assert (item["reorder_level"], item["low_stock"]) == (5, True)

    r = await client.post(
        f"/items/{item['id']}/adjust", json={"delta": 1, "reason": "received"}, headers=headers
    )
    assert (r.json()["item"]["quantity"], r.json()["item"]["low_stock"]) == (6, False)

    r = await client.patch(f"/items/{item['id']}", json={"reorder_level": 6}, headers=headers)
    assert r.status_code == 200
    assert r.json()["item"]["low_stock"] is True

    r = await client.patch(f"/items/{item['id']}", json={"reorder_level": None}, headers=headers)
    assert (r.json()["item"]["reorder_level"], r.json()["item"]["low_stock"]) == (None, False)
    stored = await row(db, Item, item["id"])
    assert stored is not None
    assert stored["reorder_level"] is None


async def test_an_item_without_a_reorder_level_is_never_low(
    client: AsyncClient, db: AsyncSession
) -> None:
    item = await make_item(db, quantity=0)
    r = await client.get(f"/items/{item.id}")
    assert (r.json()["item"]["reorder_level"], r.json()["item"]["low_stock"]) == (None, False)


@pytest.mark.parametrize("level", [-1, 2**31, "5", 1.5])
async def test_a_bad_reorder_level_is_422(
    client: AsyncClient, db: AsyncSession, headers: dict[str, str], level: Any
) -> None:
    r = await client.post(
        "/items", json={"name": "Bolt", "quantity": 1, "reorder_level": level}, headers=headers
    )
    assert r.status_code == 422, r.text
    assert await count(db, Item) == 0


async def test_low_stock_filter_lists_only_those_and_counts_them(
    client: AsyncClient, db: AsyncSession
) -> None:
    low = await make_item(db, name="Low", quantity=2, reorder_level=5)
    at = await make_item(db, name="At", quantity=5, reorder_level=5)
    fine = await make_item(db, name="Fine", quantity=9, reorder_level=5)
    unset = await make_item(db, name="Unset", quantity=0)

    r = await client.get("/items", params={"low_stock": "true"})
    assert r.status_code == 200
    assert [i["id"] for i in r.json()["items"]] == [low.id, at.id]
    assert r.json()["total"] == 2
    assert all(i["low_stock"] for i in r.json()["items"])

    r = await client.get("/items", params={"low_stock": "false"})
    assert [i["id"] for i in r.json()["items"]] == [fine.id, unset.id]
    assert r.json()["total"] == 2

    r = await client.get("/items", params={"low_stock": "true", "limit": 1})
    assert (len(r.json()["items"]), r.json()["total"]) == (1, 2)

    r = await client.get("/items")
    assert r.json()["total"] == 4  # the unfiltered total (kept by triggers) still right


async def test_sku_filter_matches_the_whole_sku_only(client: AsyncClient, db: AsyncSession) -> None:
    bolt = await make_item(db, sku="BOLT-M8")
    await make_item(db, sku="BOLT-M8-40")
    await make_item(db, sku="bolt-m8x")
    await make_item(db)

    r = await client.get("/items", params={"sku": "BOLT-M8"})
    assert r.status_code == 200
    assert [i["id"] for i in r.json()["items"]] == [bolt.id]
    assert r.json()["total"] == 1

    for missing in ("BOLT", "bolt-m8", "BOLT-M8 ", "%", "BOLT-M_"):
        r = await client.get("/items", params={"sku": missing})
        assert r.status_code == 200
        assert (r.json()["items"], r.json()["total"]) == ([], 0), missing


@pytest.mark.parametrize("params", [{"sku": ""}, {"sku": "x" * 65}, {"low_stock": "maybe"}])
async def test_bad_filters_are_422(client: AsyncClient, params: dict[str, str]) -> None:
    r = await client.get("/items", params=params)
    assert r.status_code == 422, r.text
