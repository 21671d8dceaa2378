"""Stock movements: POST /items/{id}/adjust, the movement reads, and every path that changes a
quantity recording its movement (../shared/API.md, "Stock movements")."""

import asyncio
import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from models.enums import MovementReason, Role
from models.item import Item
from models.stock_movement import StockMovement
from models.user import User
from tests.factories import auth_headers, count, make_item, make_user, row
from tests.stock_checks import assert_movements_add_up, movements_of

MOVEMENT_KEYS = {"id", "item_id", "delta", "quantity_after", "reason", "note", "created_at", "user"}
NOT_FOUND = {"detail": "Item not found"}


@pytest.fixture
async def editor(db: AsyncSession) -> User:
    return await make_user(db, Role.editor, username="eddie")


@pytest.fixture
async def headers(db: AsyncSession, editor: User) -> dict[str, str]:
    return await auth_headers(db, editor)


async def _create(client: AsyncClient, headers: dict[str, str], quantity: int, **kw: Any) -> int:
    body = {"name": "Bolt", "quantity": quantity, **kw}
    r = await client.post("/items", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return int(r.json()["item"]["id"])


# --- adjust -----------------------------------------------------------------------------


async def test_a_delta_is_applied_and_recorded(
    client: AsyncClient, db: AsyncSession, editor: User, headers: dict[str, str]
) -> None:
    item_id = await _create(client, headers, 40)

    r = await client.post(
        f"/items/{item_id}/adjust",
        json={"delta": -3, "reason": "sold", "note": "Order 1234"},
        headers=headers,
    )

    assert r.status_code == 200, r.text
    body = r.json()
    assert body["item"]["quantity"] == 37
    assert body["item"]["version"] == 2
    assert r.headers["etag"] == '"2"'
    movement = body["movement"]
    assert set(movement) == MOVEMENT_KEYS
    assert (movement["item_id"], movement["delta"], movement["quantity_after"]) == (item_id, -3, 37)
    assert (movement["reason"], movement["note"]) == ("sold", "Order 1234")
    assert movement["user"] == {"id": editor.id, "username": "eddie"}
    datetime.fromisoformat(movement["created_at"])
    stored = await row(db, Item, item_id)
    assert stored is not None
    assert (stored["quantity"], stored["version"], stored["updated_by_id"]) == (37, 2, editor.id)
    first, last = await movements_of(db, item_id)
    assert (first.delta, first.reason) == (40, MovementReason.received)
    assert (last.id, last.delta, last.quantity_after, last.user_id) == (
        movement["id"],
        -3,
        37,
        editor.id,
    )


async def test_a_count_sets_the_quantity_and_records_the_difference(
    client: AsyncClient, db: AsyncSession, headers: dict[str, str]
) -> None:
    item_id = await _create(client, headers, 40)

    r = await client.post(
        f"/items/{item_id}/adjust", json={"quantity": 36, "reason": "counted"}, headers=headers
    )

    assert r.status_code == 200, r.text
    assert r.json()["item"]["quantity"] == 36
    assert (r.json()["movement"]["delta"], r.json()["movement"]["reason"]) == (-4, "counted")
    assert [m.quantity_after for m in await movements_of(db, item_id)] == [40, 36]


async def test_a_count_that_confirms_the_stock_is_recorded_too(
    client: AsyncClient, db: AsyncSession, headers: dict[str, str]
) -> None:
    item_id = await _create(client, headers, 5)

    r = await client.post(
        f"/items/{item_id}/adjust",
        json={"quantity": 5, "reason": "counted", "note": "shelf B"},
        headers=headers,
    )

    assert r.status_code == 200, r.text
    assert r.json()["item"]["quantity"] == 5
    assert r.json()["movement"]["delta"] == 0
    assert [(m.delta, m.reason) for m in await movements_of(db, item_id)] == [
        (5, MovementReason.received),
        (0, MovementReason.counted),
    ]


@pytest.mark.parametrize(
    ("quantity", "delta", "detail"),
    [
        (2, -3, "Not enough stock: 2 in stock, cannot take 3"),
        (0, -1, "Not enough stock: 0 in stock, cannot take 1"),
        (
            2**31 - 2,
            2,
            f"Not enough stock: {2**31 - 2} in stock, 2 more would pass the limit of {2**31 - 1}",
        ),
        (
            2**31 - 1,
            2**31 - 1,
            f"Not enough stock: {2**31 - 1} in stock, {2**31 - 1} more would pass the limit "
            f"of {2**31 - 1}",
        ),
    ],
)
async def test_a_result_out_of_range_is_409_and_changes_nothing(
    client: AsyncClient,
    db: AsyncSession,
    headers: dict[str, str],
    quantity: int,
    delta: int,
    detail: str,
) -> None:
    item = await make_item(db, quantity=quantity)
    before = await row(db, Item, item.id)
    moves = len(await movements_of(db, item.id))

    r = await client.post(
        f"/items/{item.id}/adjust", json={"delta": delta, "reason": "sold"}, headers=headers
    )

    assert r.status_code == 409, r.text
    assert r.json() == {"detail": detail}
    assert await row(db, Item, item.id) == before
    assert len(await movements_of(db, item.id)) == moves


async def test_a_stale_etag_is_412_and_changes_nothing(
    client: AsyncClient, db: AsyncSession, headers: dict[str, str]
) -> None:
    item_id = await _create(client, headers, 10)
    patched = await client.patch(f"/items/{item_id}", json={"name": "Nut"}, headers=headers)
    assert patched.status_code == 200

    for body in ({"delta": 1, "reason": "received"}, {"quantity": 3, "reason": "counted"}):
        r = await client.post(
            f"/items/{item_id}/adjust", json=body, headers={**headers, "If-Match": '"1"'}
        )
        assert r.status_code == 412, r.text
        assert r.json() == {"detail": "Item has changed since that ETag; reload it and try again"}
    stored = await row(db, Item, item_id)
    assert stored is not None
    assert (stored["quantity"], stored["version"]) == (10, 2)
    assert len(await movements_of(db, item_id)) == 1

    r = await client.post(
        f"/items/{item_id}/adjust",
        json={"delta": 1, "reason": "received"},
        headers={**headers, "If-Match": '"2"'},
    )
    assert r.status_code == 200, r.text
    assert r.json()["item"]["quantity"] == 11


@pytest.mark.parametrize(
    "body", [{"delta": -1, "reason": "sold"}, {"quantity": 1, "reason": "counted"}]
)
async def test_adjusting_a_missing_item_is_404(
    client: AsyncClient, db: AsyncSession, headers: dict[str, str], body: dict[str, Any]
) -> None:
    r = await client.post("/items/999/adjust", json=body, headers=headers)
    assert r.status_code == 404
    assert r.json() == NOT_FOUND
    assert await count(db, StockMovement) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"delta": 0, "reason": "sold"},
        {"delta": 1, "quantity": 1, "reason": "counted"},
        {"reason": "sold"},
        {"quantity": 1, "reason": "sold"},
        {"delta": 1, "reason": "counted"},
        {"delta": 1, "reason": "stolen"},
        {"delta": 1},
        {"delta": "1", "reason": "sold"},
        {"delta": 1.5, "reason": "sold"},
        {"delta": 2**31, "reason": "received"},
        {"delta": -(2**31), "reason": "sold"},
        {"quantity": -1, "reason": "counted"},
        {"delta": 1, "reason": "sold", "note": "x" * 501},
        {"delta": 1, "reason": "sold", "note": "bad\x00"},
        {"delta": 1, "reason": "sold", "user_id": 1},
    ],
)
async def test_a_bad_adjustment_is_422_and_changes_nothing(
    client: AsyncClient, db: AsyncSession, headers: dict[str, str], body: dict[str, Any]
) -> None:
    item = await make_item(db, quantity=5)
    before = await row(db, Item, item.id)
    r = await client.post(f"/items/{item.id}/adjust", json=body, headers=headers)
    assert r.status_code == 422, r.text
    assert await row(db, Item, item.id) == before
    assert len(await movements_of(db, item.id)) == 1


# --- every path that changes a quantity records its movement -----------------------------


async def test_create_records_received_and_patch_a_correction(
    client: AsyncClient, db: AsyncSession, editor: User, headers: dict[str, str]
) -> None:
    item_id = await _create(client, headers, 7)
    empty_id = await _create(client, headers, 0)
    for body in ({"quantity": 4}, {"quantity": 4}, {"name": "Nut"}, {"quantity": 9}):
        r = await client.patch(f"/items/{item_id}", json=body, headers=headers)
        assert r.status_code == 200, r.text

    moves = await movements_of(db, item_id)
    assert [(m.delta, m.quantity_after, m.reason) for m in moves] == [
        (7, 7, MovementReason.received),
        (-3, 4, MovementReason.correction),
        (5, 9, MovementReason.correction),
    ]
    assert {m.user_id for m in moves} == {editor.id}
    assert await movements_of(db, empty_id) == []
    await assert_movements_add_up(db)


async def test_a_deleted_items_movements_go_with_it(
    client: AsyncClient, db: AsyncSession, headers: dict[str, str]
) -> None:
    item_id = await _create(client, headers, 7)
    kept_id = await _create(client, headers, 2)
    admin = await auth_headers(db, await make_user(db, Role.admin))
    r = await client.delete(f"/items/{item_id}", headers=admin)
    assert r.status_code == 200
    assert await movements_of(db, item_id) == []
    assert len(await movements_of(db, kept_id)) == 1


async def test_a_deleted_users_movements_stay_without_a_user(
    client: AsyncClient, db: AsyncSession, editor: User, headers: dict[str, str]
) -> None:
    item_id = await _create(client, headers, 3)
    admin = await auth_headers(db, await make_user(db, Role.admin))
    assert (await client.delete(f"/users/{editor.id}", headers=admin)).status_code == 204

    r = await client.get(f"/items/{item_id}/movements", headers=admin)

    assert r.status_code == 200
    [movement] = r.json()["movements"]
    assert (movement["delta"], movement["user"]) == (3, None)


# --- reads ------------------------------------------------------------------------------


async def test_an_items_movements_newest_first_paged_and_filtered(
    client: AsyncClient, db: AsyncSession, headers: dict[str, str]
) -> None:
    item_id = await _create(client, headers, 10)
    other_id = await _create(client, headers, 1)
    for delta, reason in ((-2, "sold"), (5, "received"), (-1, "damaged"), (-1, "sold")):
        r = await client.post(
            f"/items/{item_id}/adjust", json={"delta": delta, "reason": reason}, headers=headers
        )
        assert r.status_code == 200, r.text
    viewer = await auth_headers(db, await make_user(db, Role.viewer))

    r = await client.get(f"/items/{item_id}/movements", headers=viewer)
    assert r.status_code == 200
    body = r.json()
    assert [m["delta"] for m in body["movements"]] == [-1, -1, 5, -2, 10]
    assert [m["quantity_after"] for m in body["movements"]] == [11, 12, 13, 8, 10]
    assert (body["total"], body["skip"], body["limit"]) == (5, 0, 20)
    assert {m["item_id"] for m in body["movements"]} == {item_id}

    r = await client.get(
        f"/items/{item_id}/movements", params={"skip": 1, "limit": 2}, headers=viewer
    )
    assert [m["delta"] for m in r.json()["movements"]] == [-1, 5]
    assert r.json()["total"] == 5

    r = await client.get(f"/items/{item_id}/movements", params={"reason": "sold"}, headers=viewer)
    assert [m["delta"] for m in r.json()["movements"]] == [-1, -2]
    assert r.json()["total"] == 2

    r = await client.get(f"/items/{item_id}/movements", params={"skip": 50}, headers=viewer)
    assert (r.json()["movements"], r.json()["total"]) == ([], 5)

    r = await client.get(f"/items/{other_id}/movements", headers=viewer)
    assert r.json()["total"] == 1


async def test_movements_of_a_missing_item_is_404(client: AsyncClient, db: AsyncSession) -> None:
    viewer = await auth_headers(db, await make_user(db, Role.viewer))
    r = await client.get("/items/999/movements", headers=viewer)
    assert r.status_code == 404
    assert r.json() == NOT_FOUND


async def test_an_item_without_movements_lists_none(client: AsyncClient, db: AsyncSession) -> None:
    item = await make_item(db, quantity=0)
    viewer = await auth_headers(db, await make_user(db, Role.viewer))
    r = await client.get(f"/items/{item.id}/movements", headers=viewer)
    assert r.status_code == 200
    assert r.json() == {"movements": [], "total": 0, "skip": 0, "limit": 20}


async def test_all_movements_filtered_by_item_reason_user_and_time(
    client: AsyncClient, db: AsyncSession, editor: User, headers: dict[str, str]
) -> None:
    other = await make_user(db, Role.editor)
    other_headers = await auth_headers(db, other)
    first = await _create(client, headers, 4)
    second = await _create(client, other_headers, 6)
    r = await client.post(
        f"/items/{second}/adjust", json={"delta": -1, "reason": "lost"}, headers=headers
    )
    assert r.status_code == 200
    viewer = await auth_headers(db, await make_user(db, Role.viewer))

    async def deltas(**params: Any) -> list[int]:
        r = await client.get("/movements", params=params, headers=viewer)
        assert r.status_code == 200, r.text
        assert r.json()["total"] == len(r.json()["movements"])
        return [m["delta"] for m in r.json()["movements"]]

    assert await deltas() == [-1, 6, 4]
    assert await deltas(item_id=second) == [-1, 6]
    assert await deltas(item_id=first) == [4]
    assert await deltas(reason="received") == [6, 4]
    assert await deltas(user_id=editor.id) == [-1, 4]
    assert await deltas(user_id=other.id, reason="lost") == []
    moves = await movements_of(db, second)
    at = moves[-1].created_at
    assert await deltas(since=at.isoformat()) == [-1]
    assert await deltas(until=(at - timedelta(microseconds=1)).isoformat()) == [6, 4]
    assert await deltas(since=(at + timedelta(seconds=1)).isoformat()) == []


@pytest.mark.parametrize(
    "params",
    [
        {"reason": "stolen"},
        {"limit": 0},
        {"limit": 101},
        {"skip": -1},
        {"item_id": 0},
        {"since": "yesterday"},
        {"since": "2026-01-01T00:00:00"},  # no offset: which time zone?
    ],
)
async def test_movement_queries_are_checked(
    client: AsyncClient, db: AsyncSession, params: dict[str, Any]
) -> None:
    viewer = await auth_headers(db, await make_user(db, Role.viewer))
    r = await client.get("/movements", params=params, headers=viewer)
    assert r.status_code == 422, r.text


# --- races ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "delta", "reason", "sent", "allowed"),
    [(20, -1, "sold", 50, 20), (5, 1, "received", 40, 40)],
    ids=["fifty takes of twenty", "forty receipts"],
)
async def test_concurrent_adjustments_apply_exactly_once_each(
    client: AsyncClient,
    db: AsyncSession,
    headers: dict[str, str],
    start: int,
    delta: int,
    reason: str,
    sent: int,
    allowed: int,
) -> None:
    """Of `sent` adjustments at once, exactly those the stock allows go through (409 for the
    rest), each applied and recorded once."""
    item_id = await _create(client, headers, start)

    responses = await asyncio.gather(
        *(
            client.post(
                f"/items/{item_id}/adjust", json={"delta": delta, "reason": reason}, headers=headers
            )
            for _ in range(sent)
        )
    )

    statuses = [r.status_code for r in responses]
    assert (statuses.count(200), statuses.count(409)) == (allowed, sent - allowed), [
        r.text for r in responses
    ]
    stored = await row(db, Item, item_id)
    assert stored is not None
    assert (stored["quantity"], stored["version"]) == (start + delta * allowed, 1 + allowed)
    moves = await movements_of(db, item_id)
    assert [m.delta for m in moves] == [start] + [delta] * allowed
    afters = sorted(r.json()["movement"]["quantity_after"] for r in responses if r.is_success)
    assert afters == sorted(start + delta * n for n in range(1, allowed + 1))
    await assert_movements_add_up(db)


@pytest.mark.parametrize("seed", [1, 2])
async def test_any_mix_of_changes_leaves_movements_that_add_up(
    client: AsyncClient, db: AsyncSession, headers: dict[str, str], seed: int
) -> None:
    """PATCHes, adjustments and counts, some refused, some at once: each item's movements
    still sum to its quantity and each `quantity_after` follows from the ones before."""
    rng = random.Random(seed)  # noqa: S311  (a reproducible mix, not a secret)
    ids = [await _create(client, headers, rng.randrange(0, 5)) for _ in range(3)]

    def change() -> Any:
        item_id = rng.choice(ids)
        kind = rng.choice(["patch", "delta", "delta", "count"])
        if kind == "patch":
            body: dict[str, Any] = {"quantity": rng.randrange(0, 10)}
            if rng.random() < 0.3:
                body["name"] = f"Renamed {rng.randrange(100)}"
            return client.patch(f"/items/{item_id}", json=body, headers=headers)
        if kind == "count":
            body = {"quantity": rng.randrange(0, 10), "reason": "counted"}
        else:
            delta = rng.choice([-3, -2, -1, 1, 2, 3])
            body = {"delta": delta, "reason": "sold" if delta < 0 else "returned"}
        return client.post(f"/items/{item_id}/adjust", json=body, headers=headers)

    for _ in range(6):
        responses = await asyncio.gather(*(change() for _ in range(10)))
        assert {r.status_code for r in responses} <= {200, 409}, [r.text for r in responses]

    quantities = await assert_movements_add_up(db)
    for item_id in ids:
        r = await client.get(f"/items/{item_id}")
        assert r.json()["item"]["quantity"] == quantities[item_id]
