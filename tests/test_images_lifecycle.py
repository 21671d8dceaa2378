"""Files follow the database: after any sequence of uploads, replacements, removals, deleted
items and failed commits, the files on disk are exactly the files items reference."""

import asyncio
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import delete, event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from api import cli
from models.engine import create_engine, create_sessionmaker
from models.enums import Role
from models.item import Item
from models.settings import get_database_settings
from tests import imagefiles as img
from tests.factories import auth_headers, make_item, make_user

GOOD = [img.png, img.webp, img.gif, img.jpeg_with_gps]
BAD = [b"", b"<svg/>", b"GIF89a" + b"\0" * 20, img.png()[:60]]


class CommitFailure(Exception):
    pass


class FailingCommit:
    """While armed, every session commit raises before reaching the database."""

    def __init__(self) -> None:
        self.armed = False

    def __call__(self, _session: Session) -> None:
        if self.armed:
            raise CommitFailure("forced by the test")


@pytest.fixture
def failing_commit() -> Iterator[FailingCommit]:
    hook = FailingCommit()
    event.listen(Session, "before_commit", hook)
    yield hook
    event.remove(Session, "before_commit", hook)


@pytest.fixture
async def lenient_client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    """A client that receives the 500 a failed commit gives, instead of the exception."""
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def state(db: AsyncSession) -> dict[int, tuple[str | None, int]]:
    rows = (await db.execute(select(Item.id, Item.image_src, Item.version))).all()
    await db.commit()  # end the read: the next one must see what requests wrote meanwhile
    return {r.id: (r.image_src, r.version) for r in rows}


def referenced(rows: dict[int, tuple[str | None, int]]) -> list[str]:
    return sorted(src for src, _ in rows.values() if src is not None)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_lifecycle_leaves_exactly_the_referenced_files(
    lenient_client: AsyncClient,
    db: AsyncSession,
    data_dir: Path,
    failing_commit: FailingCommit,
    seed: int,
) -> None:
    rnd = random.Random(seed)  # noqa: S311  (a reproducible sequence, not a secret)
    client = lenient_client
    editor = await auth_headers(db, await make_user(db, Role.editor))
    admin = await auth_headers(db, await make_user(db, Role.admin))
    ids = [(await make_item(db)).id for _ in range(3)]
    uploads = data_dir / "uploads"
    seen = {"upload": 0, "remove": 0, "delete": 0, "failed commit": 0, "refused": 0}

    for step in range(40):
        item_id = rnd.choice(ids)
        action = rnd.choice(["upload", "upload", "remove", "delete", "refused"])
        fail = action != "refused" and rnd.random() < 0.25
        before = await state(db)
        failing_commit.armed = fail
        try:
            if action in ("upload", "refused"):
                content = rnd.choice(GOOD)() if action == "upload" else rnd.choice(BAD)
                body, ctype = img.multipart(content)
                r = await client.patch(
                    f"/item-image/{item_id}", content=body, headers=editor | ctype
                )
            elif action == "remove":
                r = await client.delete(f"/item-image/{item_id}", headers=editor)
            else:
                r = await client.delete(f"/items/{item_id}", headers=admin)
        finally:
            failing_commit.armed = False
        after = await state(db)
        where = f"seed {seed} step {step}: {action}{' (commit fails)' if fail else ''}"

        if fail:
            assert r.status_code == 500, where
            assert after == before, where
            seen["failed commit"] += 1
        elif action == "refused":
            assert r.status_code == 415, where
            assert after == before, where
            seen["refused"] += 1
        else:
            assert r.status_code == 200, (where, r.text)
            seen[action] += 1
        if action == "delete" and not fail:
            ids.remove(item_id)
            ids.append((await make_item(db)).id)
        # The invariant, after every step: no orphan, no missing file, no temporary left.
        assert img.names(uploads) == referenced(after), where

    assert all(seen.values()), seen  # the sequence exercised every kind of step


async def test_failed_commit_of_a_replacement_keeps_the_old_file(
    lenient_client: AsyncClient, db: AsyncSession, data_dir: Path, failing_commit: FailingCommit
) -> None:
    editor = await auth_headers(db, await make_user(db, Role.editor))
    item = await make_item(db)
    body, ctype = img.multipart(img.png())
    r = await lenient_client.patch(f"/item-image/{item.id}", content=body, headers=editor | ctype)
    old = r.json()["item"]["image_src"]
    failing_commit.armed = True
    body, ctype = img.multipart(img.webp())
    r = await lenient_client.patch(f"/item-image/{item.id}", content=body, headers=editor | ctype)
    failing_commit.armed = False
    assert r.status_code == 500
    assert r.json() == {"detail": "Internal server error"}
    assert img.names(data_dir / "uploads") == [old]
    assert (await state(db))[item.id] == (old, item.version + 1)


async def test_concurrent_uploads_to_one_item_leave_one_file(
    client: AsyncClient, db: AsyncSession, data_dir: Path
) -> None:
    editor = await auth_headers(db, await make_user(db, Role.editor))
    item = await make_item(db)

    async def send(content: bytes) -> int:
        body, ctype = img.multipart(content)
        r = await client.patch(f"/item-image/{item.id}", content=body, headers=editor | ctype)
        return r.status_code

    statuses = await asyncio.gather(*(send(make()) for make in GOOD))
    assert 200 in statuses
    assert set(statuses) <= {200, 409}  # 409: a concurrent replacement won (optimistic lock)
    rows = await state(db)
    assert img.names(data_dir / "uploads") == referenced(rows)
    assert len(referenced(rows)) == 1


# --- inventory prune-images ---------------------------------------------------------------


def _in_db(work: Callable[[AsyncSession], Awaitable[object]]) -> None:
    """For sync tests (the CLI runs its own event loop): run `work` in a committed session."""

    async def run() -> None:
        engine = create_engine(get_database_settings())
        async with create_sessionmaker(engine)() as db:
            await work(db)
            await db.commit()
        await engine.dispose()

    asyncio.run(run())


@pytest.fixture
def folder_with_orphans(database_url: str, data_dir: Path) -> Iterator[dict[str, Any]]:
    uploads = data_dir / "uploads"
    uploads.mkdir()
    names = {
        "kept": "a" * 32 + ".png",  # an item references it
        "orphan": "b" * 32 + ".jpg",
        "legacy": "photo of my cat.jpg",  # from before the server picked names
        "young": "c" * 32 + ".gif",  # may belong to an upload still committing
    }
    _in_db(partial(make_item, image_src=names["kept"]))
    old = 1_000_000_000  # 2001: far older than the grace period
    for key, name in names.items():
        (uploads / name).write_bytes(b"x")
        if key != "young":
            os.utime(uploads / name, (old, old))
    yield {"uploads": uploads, **names}
    # No app fixture here to empty the tables on PostgreSQL: remove the row ourselves.
    _in_db(lambda db: db.execute(delete(Item)))


def test_prune_images_reports_without_deleting(
    folder_with_orphans: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    f = folder_with_orphans
    assert cli.main(["prune-images"]) == 0
    out = capsys.readouterr().out
    assert f"unreferenced: {f['orphan']}" in out
    assert f"unreferenced: {f['legacy']}" in out
    assert f["kept"] not in out
    assert f["young"] not in out
    assert "2 unreferenced file(s)" in out
    assert img.names(f["uploads"]) == sorted([f["kept"], f["orphan"], f["legacy"], f["young"]])


def test_prune_images_delete_removes_only_orphans(
    folder_with_orphans: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    f = folder_with_orphans
    assert cli.main(["prune-images", "--delete"]) == 0
    out = capsys.readouterr().out
    assert f"removed: {f['orphan']}" in out
    assert img.names(f["uploads"]) == sorted([f["kept"], f["young"]])
