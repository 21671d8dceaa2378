"""`GET /items?q=`: the search indexes find what a scan of every row did, and totals past the cap.

The expected items are worked out in Python from the rows, as the old query did in SQL:
`lower(term)` anywhere in `lower(name)` or `lower(sku)`.
"""

import asyncio
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.services import items as item_services
from models.item import Item
from models.reads import Reads, ReadTooLong
from tests.factories import fresh

ROWS: list[tuple[str, str | None]] = [
    ("Hex BOLT M8", "BOLT-M8"),
    ("hex bolt m10", None),
    ("Carriage bolt", "cb-1"),
    ("Washer", "WSH-10"),
    ("ÖLFILTER groß", "ÖL-1"),
    ("ölfilter klein", None),
    ("Öl", "oel"),
    ("Élan vital", "É-2"),
    ("élan", None),
    ("STRASSE Straße", "SS-ß"),
    ("100% cotton", "PCT-100%"),
    ("1000 cotton", None),
    ("a_b", "A_B"),
    ("axb", "AXB"),
    ("slash/path", "S/1"),
    ('say "hi"', 'Q"1'),
    ("x", None),
    ("XY", "xy"),
    ("Kelvin \u212a", None),
    ("  spaced  out", None),
    ("it's back\\slash", "O'K\\1"),
]
TERMS = [
    "bolt", "BOLT", "Bolt M", "ölfilter", "ÖLFILTER", "Öl", "öl", "ö", "Ö", "oel",
    "élan", "ÉLAN", "É", "é", "straße", "STRASSE", "ß", "ss",
    "%", "0%", "_", "a_b", "A_", "/", "h/p", '"', '"hi"', 'Q"',
    "x", "X", "xy", "xyz", "k", "K", "elvin \u212a", "  s", "zzz", "zq", "b", "-1",
    "'", "t's", "o'k", "\\", "k\\s", "\\1",
]  # fmt: skip


def expected(term: str) -> list[int]:
    low = term.lower()
    return [
        n
        for n, (name, sku) in enumerate(ROWS, start=1)
        if low in name.lower() or (sku is not None and low in sku.lower())
    ]


async def _seed(db: AsyncSession) -> dict[int, int]:
    """The rows, inserted as a bulk import does; the row number of each id."""
    values = [{"name": n, "sku": s, "quantity": i} for i, (n, s) in enumerate(ROWS, start=1)]
    await db.execute(insert(Item), values)
    await db.commit()
    found = await db.execute(select(Item.id, Item.quantity))
    return {row.id: row.quantity for row in found}


async def _found(client: AsyncClient, **params: Any) -> tuple[list[int], dict[str, Any]]:
    r = await client.get("/items", params={"limit": 100, **params})
    assert r.status_code == 200, r.text
    body = r.json()
    return [item["id"] for item in body["items"]], body


@pytest.mark.parametrize("term", TERMS)
async def test_search_finds_what_a_scan_of_every_row_finds(
    client: AsyncClient, db: AsyncSession, term: str
) -> None:
    numbers = await _seed(db)
    ids, body = await _found(client, q=term)
    assert [numbers[i] for i in ids] == expected(term)
    assert (body["total"], body["total_exact"]) == (len(expected(term)), True)


async def test_every_term_of_the_list_is_checked_against_some_row() -> None:
    # The list above is worth something only if most terms find rows, short ones included.
    assert sum(1 for t in TERMS if expected(t)) >= len(TERMS) - 3
    assert {len(t) for t in TERMS if expected(t)} >= {1, 2, 3}


async def test_search_follows_renames_sku_changes_and_deletes(
    client: AsyncClient, db: AsyncSession
) -> None:
    numbers = await _seed(db)
    ids = {n: i for i, n in numbers.items()}
    await db.execute(update(Item).where(Item.id == ids[4]).values(name="Spring washer"))
    await db.execute(update(Item).where(Item.id == ids[1]).values(sku=None))
    await db.execute(update(Item).where(Item.id == ids[3]).values(sku="SPRING-3"))
    await db.execute(delete(Item).where(Item.id == ids[2]))
    await db.commit()

    assert (await _found(client, q="spring"))[0] == [ids[3], ids[4]]
    assert (await _found(client, q="washer"))[0] == [ids[4]]
    assert (await _found(client, q="bolt-m8"))[0] == []
    assert (await _found(client, q="bolt"))[0] == [ids[1], ids[3]]
    assert (await _found(client, q="cb-1"))[0] == []
    await fresh(db)
    assert await db.scalar(select(Item.name).where(Item.id == ids[4])) == "Spring washer"


async def test_search_with_a_quantity_filter_and_a_sort(
    client: AsyncClient, db: AsyncSession
) -> None:
    numbers = await _seed(db)  # quantity = row number
    ids, body = await _found(client, q="o", min_quantity=5, sort="-quantity")
    want = sorted((n for n in expected("o") if n >= 5), reverse=True)
    assert [numbers[i] for i in ids] == want
    assert body["total"] == len(want)
    ids, _ = await _found(client, q="cotton", max_quantity=11, sort="name")
    assert [numbers[i] for i in ids] == [11]


@pytest.mark.parametrize("sort", ["id", "-id", "name", "-quantity"])
@pytest.mark.parametrize("term", ["olt", "ölf", "ot", "o"])
async def test_search_pages_in_every_order(
    client: AsyncClient, db: AsyncSession, sort: str, term: str
) -> None:
    numbers = await _seed(db)  # quantity = row number
    want = [n for n in expected(term) if n >= 2]
    key = {"name": lambda n: (ROWS[n - 1][0], n)}.get(sort.lstrip("-"), lambda n: n)
    want.sort(key=key, reverse=sort.startswith("-"))
    pages = []
    for skip in range(0, len(want) + 2, 2):
        ids, body = await _found(client, q=term, sort=sort, skip=skip, limit=2, min_quantity=2)
        assert (body["total"], body["total_exact"]) == (len(want), True)
        pages += [numbers[i] for i in ids]
    assert pages == want


@pytest.fixture
def cap(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(item_services, "TOTAL_CAP", 3)
    return 3


@pytest.mark.parametrize(
    ("params", "matches"),
    [
        ({"q": "cotton"}, 2),  # under the cap
        ({"q": "bolt"}, 3),  # at the cap: still exact
        ({"q": "o"}, len(expected("o"))),  # a short term past it
        ({"q": "ölf"}, 2),
        ({"q": "ol"}, len(expected("ol"))),
        ({"min_quantity": 2}, len(ROWS) - 1),  # a filter without a term
    ],
)
async def test_total_counts_up_to_the_cap(
    client: AsyncClient, db: AsyncSession, cap: int, params: dict[str, Any], matches: int
) -> None:
    await _seed(db)
    ids, body = await _found(client, **params, limit=2)
    assert len(ids) == min(2, matches)
    if matches > cap:
        assert (body["total"], body["total_exact"]) == (cap, False)
    else:
        assert (body["total"], body["total_exact"]) == (matches, True)


async def test_a_page_past_the_end_counts_up_to_the_cap(
    client: AsyncClient, db: AsyncSession, cap: int
) -> None:
    await _seed(db)
    ids, body = await _found(client, q="o", skip=50)
    assert ids == []
    assert (body["total"], body["total_exact"]) == (cap, False)


async def test_the_unfiltered_total_stays_exact_past_the_cap(
    client: AsyncClient, db: AsyncSession, cap: int
) -> None:
    await _seed(db)
    _, body = await _found(client, limit=1)
    assert (body["total"], body["total_exact"]) == (len(ROWS), True)


async def test_the_envelopes_document_total_exact(client: AsyncClient) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    for envelope in ("ItemList", "UserList"):
        schema = schemas[envelope]
        assert "total_exact" in schema["required"], envelope
        assert schema["properties"]["total_exact"]["type"] == "boolean"
        assert schema["properties"]["total_exact"]["description"]


async def test_a_scan_that_runs_too_long_is_stopped(app: FastAPI) -> None:
    """The bound of short-term searches: the statement is stopped, the connection stays
    usable, and on PostgreSQL the timeout does not outlive the search."""
    reads: Reads = app.state.reads
    postgres = reads.dialect == "postgresql"
    slow = (
        "SELECT pg_sleep(5)"
        if postgres
        else "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n"
    )
    with pytest.raises(ReadTooLong):
        async with reads.connect(0.05) as conn:
            await asyncio.wait_for(conn.execute(text(slow)), timeout=20)
    async with reads.connect() as conn:
        assert await conn.scalar(text("SELECT 1")) == 1
        if postgres:
            assert await conn.scalar(text("SHOW statement_timeout")) == "0"
