"""Every /items route: success, each error status of the contract, and the database after."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import Engine, Executable, delete, event, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.schemas.items import ItemCreate
from api.services import items as item_services
from auth.audit import COMMAND_LINE
from models.audit_event import AuditEvent
from models.enums import MovementReason, Role
from models.item import Item
from models.reads import Reads
from models.stock_movement import StockMovement
from models.user import User
from tests.factories import auth_headers, count, fresh, make_item, make_user, row
from tests.stock_checks import assert_movements_add_up

ITEM_KEYS = {
    "id",
    "name",
    "quantity",
    "description",
    "sku",
    "image_src",
    "image_url",
    "reorder_level",
    "low_stock",
    "created_at",
    "updated_at",
    "version",
}
NOT_FOUND = {"detail": "Item not found"}
BAD_IDS = ["abc", "0", "-1", "1.5", str(2**31), "9" * 30]


@pytest.fixture
async def editor(db: AsyncSession) -> User:
    return await make_user(db, Role.editor)


@pytest.fixture
async def editor_headers(db: AsyncSession, editor: User) -> dict[str, str]:
    return await auth_headers(db, editor)


@pytest.fixture
async def admin_headers(db: AsyncSession) -> dict[str, str]:
    return await auth_headers(db, await make_user(db, Role.admin))


def assert_utc_timestamp(value: str) -> None:
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() == timedelta(0), value


# --- list -------------------------------------------------------------------------------


async def test_list_is_empty_without_items(client: AsyncClient) -> None:
    r = await client.get("/items")
    assert r.status_code == 200
    assert r.json() == {"items": [], "total": 0, "total_exact": True, "skip": 0, "limit": 20}


async def test_list_returns_item_json(client: AsyncClient, db: AsyncSession) -> None:
    item = await make_item(db, name="Bolt", quantity=4, sku="B-1", description="Zinc")
    r = await client.get("/items")
    assert r.status_code == 200
    [body] = r.json()["items"]
    assert set(body) == ITEM_KEYS
    assert body["id"] == item.id
    assert (body["name"], body["quantity"], body["sku"], body["description"]) == (
        "Bolt",
        4,
        "B-1",
        "Zinc",
    )
    assert body["image_src"] is None
    assert body["image_url"] is None
    assert body["version"] == 1


async def test_list_pages_with_total_of_all_matches(client: AsyncClient, db: AsyncSession) -> None:
    ids = [(await make_item(db)).id for _ in range(5)]
    r = await client.get("/items", params={"skip": 1, "limit": 2})
    assert r.status_code == 200
    body = r.json()
    assert [i["id"] for i in body["items"]] == ids[1:3]
    assert (body["total"], body["skip"], body["limit"]) == (5, 1, 2)


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """Each SQL statement any engine sends, in order."""
    sent: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        sent.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    yield sent
    event.remove(Engine, "before_cursor_execute", record)


def _on_items(sent: list[str]) -> list[str]:
    """The kind of each statement sent to the items table (the caller's credentials check
    reads other tables)."""
    return [s.split()[0].upper() for s in sent if " items" in s.lower()]


@pytest.mark.perf
async def test_list_page_and_total_are_one_statement(
    client: AsyncClient, db: AsyncSession, statements: list[str]
) -> None:
    for _ in range(3):
        await make_item(db)
    statements.clear()

    r = await client.get("/items", params={"limit": 2, "q": "item"})

    assert r.status_code == 200
    assert (len(r.json()["items"]), r.json()["total"]) == (2, 3)
    assert len(statements) == 1, statements


async def test_unfiltered_total_follows_every_insert_and_delete(
    app: FastAPI,
    client: AsyncClient,
    db: AsyncSession,
    editor_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    """The total of an unfiltered list is item_counts' (kept by triggers), never a scan."""

    async def total() -> int:
        r = await client.get("/items", params={"limit": 1})
        assert r.status_code == 200
        assert r.json()["total"] == await count(db, Item)
        return int(r.json()["total"])

    assert await total() == 0
    created = await client.post(
        "/items", json={"name": "A", "quantity": 1, "sku": "S-1"}, headers=editor_headers
    )
    assert created.status_code == 201
    refused = await client.post(
        "/items", json={"name": "B", "quantity": 1, "sku": "S-1"}, headers=editor_headers
    )
    assert refused.status_code == 409  # rolled back: not counted
    assert await total() == 1
    # Rows written by anything else (a bulk import, SQL by hand) are counted too.
    await fresh(db)
    await db.execute(insert(Item), [{"name": f"Bulk {n}", "quantity": n} for n in range(5)])
    await db.commit()
    assert await total() == 6
    r = await client.delete(f"/items/{created.json()['item']['id']}", headers=admin_headers)
    assert r.status_code == 200
    await fresh(db)
    await db.execute(delete(Item).where(Item.name.in_(["Bulk 0", "Bulk 1"])))
    await db.commit()
    asked: list[str] = []
    reads: Reads = app.state.reads
    ask = reads.all

    async def recorded(stmt: Executable, *args: Any, **kwargs: Any) -> Any:
        asked.append(str(stmt.compile(dialect=reads.engine.dialect)))  # type: ignore[attr-defined]
        return await ask(stmt, *args, **kwargs)

    with mock.patch.object(reads, "all", recorded):
        assert await total() == 3
    list_statement = asked[0].lower()
    assert "item_counts" in list_statement
    assert "count(*)" not in list_statement


async def test_list_skip_past_the_end_is_an_empty_page(
    client: AsyncClient, db: AsyncSession
) -> None:
    await make_item(db)
    r = await client.get("/items", params={"skip": 10})
    assert r.status_code == 200
    assert r.json()["items"] == []
    assert r.json()["total"] == 1


@pytest.mark.parametrize("limit", [1, 100])
async def test_list_accepts_limit_bounds(client: AsyncClient, db: AsyncSession, limit: int) -> None:
    for _ in range(2):
        await make_item(db)
    r = await client.get("/items", params={"limit": limit})
    assert r.status_code == 200
    assert len(r.json()["items"]) == min(limit, 2)
    assert r.json()["limit"] == limit


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": -1},
        {"limit": "ten"},
        {"skip": -1},
        {"skip": "x"},
        {"skip": 2**31},
    ],
)
async def test_list_rejects_bad_paging(client: AsyncClient, params: dict[str, Any]) -> None:
    r = await client.get("/items", params=params)
    assert r.status_code == 422
    assert isinstance(r.json()["detail"], list)


async def _names(client: AsyncClient, **params: Any) -> list[str]:
    r = await client.get("/items", params=params)
    assert r.status_code == 200, r.text
    return [i["name"] for i in r.json()["items"]]


async def test_q_matches_name_ignoring_case(client: AsyncClient, db: AsyncSession) -> None:
    await make_item(db, name="Hex BOLT M8")
    await make_item(db, name="Washer")
    assert await _names(client, q="bolt") == ["Hex BOLT M8"]


async def test_q_matches_sku_ignoring_case(client: AsyncClient, db: AsyncSession) -> None:
    await make_item(db, name="Washer", sku="WSH-10")
    await make_item(db, name="Nut", sku="NUT-10")
    assert await _names(client, q="wsh") == ["Washer"]


async def test_q_ignores_case_of_non_ascii_letters(client: AsyncClient, db: AsyncSession) -> None:
    await make_item(db, name="ÜBERGRÖSSE Ölfilter")
    await make_item(db, name="Oil filter")
    assert await _names(client, q="ölfilter") == ["ÜBERGRÖSSE Ölfilter"]


async def test_q_total_counts_matches_only(client: AsyncClient, db: AsyncSession) -> None:
    await make_item(db, name="Bolt A")
    await make_item(db, name="Bolt B")
    await make_item(db, name="Nut")
    r = await client.get("/items", params={"q": "bolt", "limit": 1})
    assert r.json()["total"] == 2
    assert len(r.json()["items"]) == 1


async def test_q_percent_is_literal(client: AsyncClient, db: AsyncSession) -> None:
    await make_item(db, name="100% cotton")
    await make_item(db, name="1000 cotton")
    assert await _names(client, q="0%") == ["100% cotton"]


async def test_q_underscore_is_literal(client: AsyncClient, db: AsyncSession) -> None:
    await make_item(db, name="a_b")
    await make_item(db, name="axb")
    assert await _names(client, q="a_b") == ["a_b"]


async def test_q_with_escape_character_is_literal(client: AsyncClient, db: AsyncSession) -> None:
    await make_item(db, name="in/out")
    await make_item(db, name="inout")
    assert await _names(client, q="n/o") == ["in/out"]


async def test_q_with_backslash_is_literal(client: AsyncClient, db: AsyncSession) -> None:
    await make_item(db, name="C:\\temp")
    await make_item(db, name="C:temp")
    assert await _names(client, q=":\\t") == ["C:\\temp"]


@pytest.mark.parametrize("q", ["", "a\x00b", "x" * 201])
async def test_q_rejects_bad_search(client: AsyncClient, q: str) -> None:
    r = await client.get("/items", params={"q": q})
    assert r.status_code == 422


# Four items whose order differs for every sort key and direction (and from id order).
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SORT_ROWS: list[dict[str, Any]] = [
    {"name": "Delta", "quantity": 20, "created_at": 1, "updated_at": 3},
    {"name": "Alpha", "quantity": 40, "created_at": 3, "updated_at": 0},
    {"name": "Charlie", "quantity": 10, "created_at": 2, "updated_at": 1},
    {"name": "Bravo", "quantity": 30, "created_at": 0, "updated_at": 2},
]
SORTS = ["id", "name", "quantity", "created_at", "updated_at"]


@pytest.mark.parametrize("sort", [*SORTS, *(f"-{s}" for s in SORTS)])
async def test_sort_orders_by_key_and_direction(
    client: AsyncClient, db: AsyncSession, sort: str
) -> None:
    items = []
    for values in SORT_ROWS:
        fields = dict(values)
        for stamp in ("created_at", "updated_at"):
            fields[stamp] = T0 + timedelta(hours=int(values[stamp]))
        items.append(await make_item(db, **fields))
    key = sort.lstrip("-")
    expected = sorted(items, key=lambda i: getattr(i, key), reverse=sort.startswith("-"))
    r = await client.get("/items", params={"sort": sort})
    assert r.status_code == 200
    assert [i["id"] for i in r.json()["items"]] == [i.id for i in expected]


@pytest.mark.parametrize(("sort", "order"), [("quantity", [0, 1, 2]), ("-quantity", [2, 1, 0])])
async def test_sort_breaks_ties_by_id(
    client: AsyncClient, db: AsyncSession, sort: str, order: list[int]
) -> None:
    ids = [(await make_item(db, quantity=5)).id for _ in range(3)]
    r = await client.get("/items", params={"sort": sort})
    assert [i["id"] for i in r.json()["items"]] == [ids[n] for n in order]


@pytest.mark.parametrize("sort", ["price", "--id", "-", "ID", "name desc", "image_src"])
async def test_unknown_sort_is_422(client: AsyncClient, sort: str) -> None:
    r = await client.get("/items", params={"sort": sort})
    assert r.status_code == 422


async def test_min_and_max_quantity_filter_inclusively(
    client: AsyncClient, db: AsyncSession
) -> None:
    for quantity in (1, 5, 10, 20):
        await make_item(db, name=f"q{quantity}", quantity=quantity)
    assert await _names(client, min_quantity=5, max_quantity=10) == ["q5", "q10"]
    assert await _names(client, min_quantity=10) == ["q10", "q20"]
    assert await _names(client, max_quantity=1) == ["q1"]


async def test_equal_min_and_max_quantity_is_allowed(client: AsyncClient, db: AsyncSession) -> None:
    await make_item(db, name="five", quantity=5)
    await make_item(db, name="six", quantity=6)
    assert await _names(client, min_quantity=5, max_quantity=5) == ["five"]


@pytest.mark.parametrize(
    "params",
    [
        {"min_quantity": 6, "max_quantity": 5},
        {"min_quantity": -1},
        {"max_quantity": "many"},
        {"min_quantity": 2**31},
    ],
)
async def test_bad_quantity_filters_are_422(client: AsyncClient, params: dict[str, Any]) -> None:
    r = await client.get("/items", params=params)
    assert r.status_code == 422


# --- get --------------------------------------------------------------------------------


async def test_get_returns_item_with_etag(client: AsyncClient, db: AsyncSession) -> None:
    item = await make_item(db, name="Nut", quantity=7)
    r = await client.get(f"/items/{item.id}")
    assert r.status_code == 200
    body = r.json()["item"]
    assert set(body) == ITEM_KEYS
    assert (body["id"], body["name"], body["quantity"]) == (item.id, "Nut", 7)
    assert r.headers["etag"] == '"1"'


async def test_get_timestamps_are_iso_8601_utc(client: AsyncClient, db: AsyncSession) -> None:
    item = await make_item(db)
    body = (await client.get(f"/items/{item.id}")).json()["item"]
    assert_utc_timestamp(body["created_at"])
    assert_utc_timestamp(body["updated_at"])


async def test_get_missing_item_is_404(client: AsyncClient) -> None:
    r = await client.get("/items/12345")
    assert r.status_code == 404
    assert r.json() == NOT_FOUND


@pytest.mark.parametrize("item_id", BAD_IDS)
async def test_get_with_invalid_id_is_422(client: AsyncClient, item_id: str) -> None:
    r = await client.get(f"/items/{item_id}")
    assert r.status_code == 422


async def test_get_with_current_if_none_match_is_304(client: AsyncClient, db: AsyncSession) -> None:
    item = await make_item(db)
    r = await client.get(f"/items/{item.id}", headers={"If-None-Match": '"1"'})
    assert r.status_code == 304
    assert r.content == b""
    assert r.headers["etag"] == '"1"'


async def test_get_with_stale_if_none_match_is_200(client: AsyncClient, db: AsyncSession) -> None:
    item = await make_item(db)
    r = await client.get(f"/items/{item.id}", headers={"If-None-Match": '"0", "7"'})
    assert r.status_code == 200
    assert r.json()["item"]["id"] == item.id


# --- create -----------------------------------------------------------------------------


async def test_create_answers_201_with_location_and_stores_row(
    client: AsyncClient, db: AsyncSession, editor: User, editor_headers: dict[str, str]
) -> None:
    payload = {"name": "Hex bolt", "quantity": 40, "description": "Zinc", "sku": "BOLT-8"}
    r = await client.post("/items", json=payload, headers=editor_headers)
    assert r.status_code == 201, r.text
    body = r.json()["item"]
    assert set(body) == ITEM_KEYS
    assert r.headers["location"] == f"/items/{body['id']}"
    assert {k: body[k] for k in payload} == payload
    assert body["version"] == 1
    stored = await row(db, Item, body["id"])
    assert stored is not None
    assert {k: stored[k] for k in payload} == payload
    assert stored["created_by_id"] == editor.id
    assert stored["updated_by_id"] == editor.id
    assert stored["version"] == 1


@pytest.mark.perf
async def test_create_is_one_insert(
    client: AsyncClient, editor_headers: dict[str, str], statements: list[str]
) -> None:
    r = await client.post("/items", json={"name": "A", "quantity": 1}, headers=editor_headers)
    assert r.status_code == 201
    body = r.json()["item"]
    assert body["created_at"] == body["updated_at"]
    assert _on_items(statements) == ["INSERT"], statements


@pytest.mark.perf
async def test_a_bulk_create_is_one_insert_of_items_and_one_of_movements(
    db: AsyncSession, editor: User, statements: list[str]
) -> None:
    """`create_many` (the CSV import's) sends its rows as one multi-row INSERT, not one
    statement per row (as asking for RETURNING in parameter order did on SQLite), and writes
    every quantity's `received` movement and every `item.create` event."""
    batch = [ItemCreate(name=f"N{n}", quantity=n) for n in range(4)]

    created = await item_services.create_many(db, batch, editor, COMMAND_LINE, note="bulk")

    inserts = [s.split()[2] for s in statements if s.lstrip().upper().startswith("INSERT")]
    assert inserts.count("items") == 1, statements
    assert inserts.count("stock_movements") == 1, statements
    assert sorted(r.quantity for r in created) == [0, 1, 2, 3]
    moves = await db.execute(
        select(Item.name, StockMovement.delta, StockMovement.quantity_after, StockMovement.reason)
        .join(Item, Item.id == StockMovement.item_id)
        .where(StockMovement.note == "bulk", StockMovement.user_id == editor.id)
        .order_by(Item.name)
    )
    received = MovementReason.received
    assert [tuple(m) for m in moves] == [(f"N{n}", n, n, received) for n in (1, 2, 3)]
    events = await db.scalar(
        select(func.count()).where(
            AuditEvent.action == "item.create", AuditEvent.actor_id == editor.id
        )
    )
    assert events == 4
    await assert_movements_add_up(db)


async def test_create_timestamps_are_iso_8601_utc(
    client: AsyncClient, editor_headers: dict[str, str]
) -> None:
    r = await client.post("/items", json={"name": "A", "quantity": 1}, headers=editor_headers)
    assert_utc_timestamp(r.json()["item"]["created_at"])
    assert_utc_timestamp(r.json()["item"]["updated_at"])


async def test_create_optional_fields_default_to_null(
    client: AsyncClient, editor_headers: dict[str, str]
) -> None:
    r = await client.post("/items", json={"name": "A", "quantity": 0}, headers=editor_headers)
    assert r.status_code == 201
    assert r.json()["item"]["description"] is None
    assert r.json()["item"]["sku"] is None


async def test_create_trims_name(
    client: AsyncClient, db: AsyncSession, editor_headers: dict[str, str]
) -> None:
    r = await client.post("/items", json={"name": "  Nut  ", "quantity": 1}, headers=editor_headers)
    assert r.status_code == 201
    stored = await row(db, Item, r.json()["item"]["id"])
    assert stored is not None
    assert stored["name"] == "Nut"


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "x" * 200, "quantity": 2**31 - 1},
        {"name": "x", "quantity": 0, "sku": "s" * 64, "description": "d" * 2000},
        {"name": "multi", "quantity": 1, "description": "line 1\nline 2\tand a tab"},
    ],
    ids=["max name and quantity", "max sku and description", "multi-line description"],
)
async def test_create_accepts_boundary_values(
    client: AsyncClient, db: AsyncSession, editor_headers: dict[str, str], payload: dict[str, Any]
) -> None:
    r = await client.post("/items", json=payload, headers=editor_headers)
    assert r.status_code == 201, r.text
    stored = await row(db, Item, r.json()["item"]["id"])
    assert stored is not None
    assert {k: stored[k] for k in payload} == payload


INVALID_CREATE = {
    "missing name": {"quantity": 1},
    "missing quantity": {"name": "A"},
    "empty name": {"name": "", "quantity": 1},
    "blank name": {"name": "   ", "quantity": 1},
    "201-char name": {"name": "x" * 201, "quantity": 1},
    "null name": {"name": None, "quantity": 1},
    "negative quantity": {"name": "A", "quantity": -1},
    "2^31 quantity": {"name": "A", "quantity": 2**31},
    "string quantity": {"name": "A", "quantity": "5"},
    "float quantity": {"name": "A", "quantity": 1.5},
    "bool quantity": {"name": "A", "quantity": True},
    "unknown field": {"name": "A", "quantity": 1, "created_by_id": 1},
    "image_src field": {"name": "A", "quantity": 1, "image_src": "x.png"},
    "NUL in name": {"name": "A\x00B", "quantity": 1},
    "control char in name": {"name": "A\x1bB", "quantity": 1},
    "newline in name": {"name": "A\nB", "quantity": 1},
    "NUL in description": {"name": "A", "quantity": 1, "description": "a\x00"},
    "NUL in sku": {"name": "A", "quantity": 1, "sku": "S\x00"},
    "2001-char description": {"name": "A", "quantity": 1, "description": "d" * 2001},
    "65-char sku": {"name": "A", "quantity": 1, "sku": "s" * 65},
    "blank sku": {"name": "A", "quantity": 1, "sku": " "},
}


@pytest.mark.parametrize("payload", list(INVALID_CREATE.values()), ids=list(INVALID_CREATE))
async def test_create_rejects_invalid_body(
    client: AsyncClient, db: AsyncSession, editor_headers: dict[str, str], payload: dict[str, Any]
) -> None:
    r = await client.post("/items", json=payload, headers=editor_headers)
    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], list)
    assert await count(db, Item) == 0


@pytest.mark.parametrize("content", [b"", b"{", b"[]", b'"name"', b"null"])
async def test_create_rejects_non_object_json(
    client: AsyncClient, db: AsyncSession, editor_headers: dict[str, str], content: bytes
) -> None:
    headers = {**editor_headers, "Content-Type": "application/json"}
    r = await client.post("/items", content=content, headers=headers)
    assert r.status_code == 422
    assert await count(db, Item) == 0


async def test_create_duplicate_sku_is_409_and_changes_nothing(
    client: AsyncClient, db: AsyncSession, editor_headers: dict[str, str]
) -> None:
    existing = await make_item(db, name="First", sku="DUP")
    before = await row(db, Item, existing.id)
    r = await client.post(
        "/items", json={"name": "Second", "quantity": 1, "sku": "DUP"}, headers=editor_headers
    )
    assert r.status_code == 409
    assert r.json() == {"detail": "An item with this sku already exists"}
    assert await count(db, Item) == 1
    assert await row(db, Item, existing.id) == before


# --- patch ------------------------------------------------------------------------------


@pytest.mark.perf
@pytest.mark.parametrize(
    ("quantity", "version", "sent"),
    [(4, 2, ["SELECT", "UPDATE"]), (3, 1, ["SELECT"])],
    ids=["a change: the locked read, one UPDATE", "no change: the read only"],
)
async def test_patch_statements(
    client: AsyncClient,
    db: AsyncSession,
    editor_headers: dict[str, str],
    statements: list[str],
    quantity: int,
    version: int,
    sent: list[str],
) -> None:
    item = await make_item(db, quantity=3)
    statements.clear()
    r = await client.patch(f"/items/{item.id}", json={"quantity": quantity}, headers=editor_headers)
    assert r.status_code == 200
    assert (r.json()["item"]["quantity"], r.headers["etag"]) == (quantity, f'"{version}"')
    assert _on_items(statements) == sent, statements


async def test_patch_changes_only_sent_fields(
    client: AsyncClient, db: AsyncSession, editor: User, editor_headers: dict[str, str]
) -> None:
    item = await make_item(db, name="Old", quantity=3, description="keep", sku="KEEP")
    before = await row(db, Item, item.id)
    assert before is not None
    r = await client.patch(f"/items/{item.id}", json={"name": "New"}, headers=editor_headers)
    assert r.status_code == 200, r.text
    body = r.json()["item"]
    assert (body["name"], body["quantity"], body["description"], body["sku"]) == (
        "New",
        3,
        "keep",
        "KEEP",
    )
    assert body["version"] == 2
    assert r.headers["etag"] == '"2"'
    after = await row(db, Item, item.id)
    assert after is not None
    assert after["name"] == "New"
    assert after["version"] == 2
    assert after["updated_by_id"] == editor.id
    assert after["updated_at"] > before["updated_at"]
    unchanged = ("quantity", "description", "sku", "created_at", "created_by_id")
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}


async def test_patch_quantity(
    client: AsyncClient, db: AsyncSession, editor: User, editor_headers: dict[str, str]
) -> None:
    item = await make_item(db, quantity=3)
    r = await client.patch(f"/items/{item.id}", json={"quantity": 0}, headers=editor_headers)
    assert r.status_code == 200
    after = await row(db, Item, item.id)
    assert after is not None
    assert (after["quantity"], after["version"], after["updated_by_id"]) == (0, 2, editor.id)


@pytest.mark.parametrize("field", ["name", "quantity"])
async def test_patch_null_required_field_is_422(
    client: AsyncClient, db: AsyncSession, editor_headers: dict[str, str], field: str
) -> None:
    item = await make_item(db)
    before = await row(db, Item, item.id)
    r = await client.patch(f"/items/{item.id}", json={field: None}, headers=editor_headers)
    assert r.status_code == 422
    assert await row(db, Item, item.id) == before


@pytest.mark.parametrize("field", ["description", "sku"])
async def test_patch_null_clears_optional_field(
    client: AsyncClient, db: AsyncSession, editor_headers: dict[str, str], field: str
) -> None:
    item = await make_item(db, description="text", sku="SKU-1")
    r = await client.patch(f"/items/{item.id}", json={field: None}, headers=editor_headers)
    assert r.status_code == 200
    assert r.json()["item"][field] is None
    after = await row(db, Item, item.id)
    assert after is not None
    assert after[field] is None
    assert after["version"] == 2


@pytest.mark.parametrize(
    "payload",
    [
        {"name": " "},
        {"name": "x" * 201},
        {"quantity": -1},
        {"quantity": 2**31},
        {"quantity": "5"},
        {"sku": ""},
        {"version": 9},
        {"name": "A\x00"},
    ],
)
async def test_patch_rejects_invalid_body(
    client: AsyncClient, db: AsyncSession, editor_headers: dict[str, str], payload: dict[str, Any]
) -> None:
    item = await make_item(db)
    before = await row(db, Item, item.id)
    r = await client.patch(f"/items/{item.id}", json=payload, headers=editor_headers)
    assert r.status_code == 422
    assert await row(db, Item, item.id) == before


async def test_patch_with_current_if_match_bumps_version(
    client: AsyncClient, db: AsyncSession, editor_headers: dict[str, str]
) -> None:
    item = await make_item(db, quantity=1)
    etag = (await client.get(f"/items/{item.id}")).headers["etag"]
    r = await client.patch(
        f"/items/{item.id}", json={"quantity": 2}, headers={**editor_headers, "If-Match": etag}
    )
    assert r.status_code == 200
    assert r.json()["item"]["version"] == 2
    assert r.headers["etag"] == '"2"'
    after = await row(db, Item, item.id)
    assert after is not None
    assert (after["quantity"], after["version"]) == (2, 2)


async def test_patch_with_stale_if_match_is_412_and_changes_nothing(
    client: AsyncClient, db: AsyncSession, editor_headers: dict[str, str]
) -> None:
    item = await make_item(db, quantity=1)
    stale = (await client.get(f"/items/{item.id}")).headers["etag"]
    r = await client.patch(f"/items/{item.id}", json={"quantity": 2}, headers=editor_headers)
    assert r.status_code == 200
    before = await row(db, Item, item.id)
    r = await client.patch(
        f"/items/{item.id}", json={"quantity": 3}, headers={**editor_headers, "If-Match": stale}
    )
    assert r.status_code == 412
    assert "detail" in r.json()
    assert await row(db, Item, item.id) == before


async def test_patch_with_if_match_star_applies(
    client: AsyncClient, db: AsyncSession, editor_headers: dict[str, str]
) -> None:
    item = await make_item(db, quantity=1)
    r = await client.patch(
        f"/items/{item.id}", json={"quantity": 9}, headers={**editor_headers, "If-Match": "*"}
    )
    assert r.status_code == 200
    after = await row(db, Item, item.id)
    assert after is not None
    assert (after["quantity"], after["version"]) == (9, 2)


@pytest.mark.parametrize(
    "payload", [{}, {"name": "Same", "quantity": 5, "sku": "S", "description": None}]
)
async def test_noop_patch_keeps_version(
    client: AsyncClient, db: AsyncSession, editor_headers: dict[str, str], payload: dict[str, Any]
) -> None:
    item = await make_item(db, name="Same", quantity=5, sku="S")
    before = await row(db, Item, item.id)
    r = await client.patch(f"/items/{item.id}", json=payload, headers=editor_headers)
    assert r.status_code == 200
    assert r.json()["item"]["version"] == 1
    assert r.headers["etag"] == '"1"'
    assert await row(db, Item, item.id) == before


async def test_patch_duplicate_sku_is_409_and_changes_nothing(
    client: AsyncClient, db: AsyncSession, editor_headers: dict[str, str]
) -> None:
    await make_item(db, sku="TAKEN")
    item = await make_item(db, sku="MINE", name="Mine")
    before = await row(db, Item, item.id)
    r = await client.patch(
        f"/items/{item.id}", json={"sku": "TAKEN", "name": "Renamed"}, headers=editor_headers
    )
    assert r.status_code == 409
    assert r.json() == {"detail": "An item with this sku already exists"}
    assert await row(db, Item, item.id) == before


async def test_patch_missing_item_is_404(
    client: AsyncClient, editor_headers: dict[str, str]
) -> None:
    r = await client.patch("/items/999", json={"name": "X"}, headers=editor_headers)
    assert r.status_code == 404
    assert r.json() == NOT_FOUND


@pytest.mark.parametrize("item_id", BAD_IDS)
async def test_patch_with_invalid_id_is_422(
    client: AsyncClient, editor_headers: dict[str, str], item_id: str
) -> None:
    r = await client.patch(f"/items/{item_id}", json={"name": "X"}, headers=editor_headers)
    assert r.status_code == 422


# --- delete -----------------------------------------------------------------------------


async def test_delete_removes_row(
    client: AsyncClient, db: AsyncSession, admin_headers: dict[str, str]
) -> None:
    item = await make_item(db)
    other = await make_item(db)
    r = await client.delete(f"/items/{item.id}", headers=admin_headers)
    assert r.status_code == 200
    assert r.json() == {"message": "Item deleted"}
    assert await row(db, Item, item.id) is None
    assert await row(db, Item, other.id) is not None


async def test_get_after_delete_is_404(
    client: AsyncClient, db: AsyncSession, admin_headers: dict[str, str]
) -> None:
    item = await make_item(db)
    await client.delete(f"/items/{item.id}", headers=admin_headers)
    r = await client.get(f"/items/{item.id}")
    assert r.status_code == 404
    assert r.json() == NOT_FOUND


async def test_delete_twice_is_404(
    client: AsyncClient, db: AsyncSession, admin_headers: dict[str, str]
) -> None:
    item = await make_item(db)
    assert (await client.delete(f"/items/{item.id}", headers=admin_headers)).status_code == 200
    r = await client.delete(f"/items/{item.id}", headers=admin_headers)
    assert r.status_code == 404
    assert r.json() == NOT_FOUND


@pytest.mark.parametrize("item_id", BAD_IDS)
async def test_delete_with_invalid_id_is_422(
    client: AsyncClient, admin_headers: dict[str, str], item_id: str
) -> None:
    r = await client.delete(f"/items/{item_id}", headers=admin_headers)
    assert r.status_code == 422


async def test_unknown_query_parameters_are_ignored(client: AsyncClient, db: AsyncSession) -> None:
    item = await make_item(db)
    r = await client.get("/items", params={"_": "1700000000"})
    assert r.status_code == 200, r.text
    assert [i["id"] for i in r.json()["items"]] == [item.id]
