"""The stock race against the real server with two worker processes (`inventory serve
--workers 2`): on the suite's database (PostgreSQL with TEST_DATABASE_URL, else SQLite)."""

import asyncio
import secrets
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from models.item import Item
from tests.conftest import POSTGRES_URL
from tests.factories import row
from tests.server import running_server
from tests.stock_checks import assert_movements_add_up, movements_of


async def test_concurrent_adjustments_through_two_workers(
    app: FastAPI, db: AsyncSession, tmp_path: Path
) -> None:
    """`app`: the suite's database, emptied afterwards; the server runs on it (PostgreSQL) or
    on a fresh SQLite file of its own."""
    password = secrets.token_urlsafe(16)
    data_dir = tmp_path / "server"
    settings = {"DATABASE_URL": POSTGRES_URL} if POSTGRES_URL else None
    with running_server(data_dir, password, workers=2, settings=settings) as base:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            login = await client.post("/token", data={"username": "admin", "password": password})
            assert login.status_code == 200, login.text
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            created = await client.post(
                "/items", json={"name": "Bolt", "quantity": 20}, headers=headers
            )
            assert created.status_code == 201, created.text
            path = f"/items/{created.json()['item']['id']}/adjust"

            async def adjust(delta: int) -> httpx.Response:
                reason = "sold" if delta < 0 else "received"
                return await client.post(
                    path, json={"delta": delta, "reason": reason}, headers=headers
                )

            takes = await asyncio.gather(*(adjust(-1) for _ in range(50)))
            statuses = [r.status_code for r in takes]
            assert (statuses.count(200), statuses.count(409)) == (20, 30), statuses
            after = sorted(r.json()["movement"]["quantity_after"] for r in takes if r.is_success)
            assert after == list(range(20))

            receipts = await asyncio.gather(*(adjust(1) for _ in range(40)))
            assert [r.status_code for r in receipts] == [200] * 40

            item = (await client.get(f"/items/{created.json()['item']['id']}")).json()["item"]
            assert (item["quantity"], item["version"]) == (40, 61)
            movements = await client.get(
                f"{path.removesuffix('/adjust')}/movements", params={"limit": 100}, headers=headers
            )
            assert movements.json()["total"] == 61  # the creation, 20 takes, 40 receipts
            assert sum(m["delta"] for m in movements.json()["movements"]) == 40
    if POSTGRES_URL:  # the same rows, as the database holds them
        item_id = created.json()["item"]["id"]
        stored = await row(db, Item, item_id)
        assert stored is not None
        assert stored["quantity"] == 40
        assert len(await movements_of(db, item_id)) == 61
        await assert_movements_add_up(db)
