"""The upload folder failing: full (507), read-only or missing (503), logged at ERROR; a
removal that fails after its commit is retried later, and prune-images removes such files
whatever their age.

A real small file system: a tmpfs of 256 KiB mounted for the test (needs root; skipped
otherwise), remounted read-only where a test says so.
"""

import errno
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api import storage
from models.enums import Role
from models.item import Item
from tests import imagefiles as img
from tests.cli_runner import run_cli
from tests.conftest import clear_settings
from tests.factories import auth_headers, make_item, make_user


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)  # noqa: S603, S607


class Disk:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.uploads = root / "uploads"

    def read_only(self) -> None:
        _mount("-o", "remount,ro", str(self.root))

    def writable(self) -> None:
        _mount("-o", "remount,rw", str(self.root))

    def fill(self, leave_pages: int = 0) -> None:
        """Fill the disk, then free `leave_pages` pages of 4 KiB."""
        with (self.root / "filler").open("wb", buffering=0) as out:
            written = 1
            while written:
                try:
                    written = out.write(b"\0" * 4096)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    written = 0
            out.truncate(max(0, out.tell() - leave_pages * 4096))


@pytest.fixture
def disk(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Disk]:
    root = tmp_path / "disk"
    root.mkdir()
    try:
        _mount("-t", "tmpfs", "-o", "size=256k", "tmpfs", str(root))
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    disk = Disk(root)
    disk.uploads.mkdir()
    monkeypatch.setenv("UPLOAD_DIR", str(disk.uploads))
    clear_settings()
    yield disk
    subprocess.run(["umount", "-l", str(root)], check=False)  # noqa: S603, S607


async def upload(client: AsyncClient, db: AsyncSession, item_id: int, content: bytes) -> object:
    headers = await auth_headers(db, await make_user(db, Role.editor))
    body, ctype = img.multipart(content)
    return await client.patch(f"/item-image/{item_id}", content=body, headers=headers | ctype)


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]


async def image_of(db: AsyncSession, item_id: int) -> str | None:
    db.expire_all()
    return await db.scalar(select(Item.image_src).where(Item.id == item_id))


@pytest.mark.parametrize(
    "room",
    [
        pytest.param(0, id="no room at all"),
        # The upload fits, its re-encoded copy does not (the old code answered 415).
        pytest.param(1, id="room for the upload only"),
    ],
)
async def test_a_full_disk_is_507(
    disk: Disk,
    client: AsyncClient,
    db: AsyncSession,
    caplog: pytest.LogCaptureFixture,
    room: int,
) -> None:
    item = await make_item(db)
    disk.fill(leave_pages=room)
    r = await upload(client, db, item.id, img.png())
    assert r.status_code == 507  # type: ignore[attr-defined]
    assert r.json() == {  # type: ignore[attr-defined]
        "detail": "Not enough disk space to store the image; try again later"
    }
    assert await image_of(db, item.id) is None
    assert os.listdir(disk.uploads) == []  # no temporary file left behind
    [message] = errors(caplog)
    assert message.startswith(f"cannot write in the upload folder {disk.uploads}:")
    assert "No space left on device" in message
    assert not [r for r in caplog.records if r.exc_info]


async def test_a_read_only_folder_is_503(
    disk: Disk, client: AsyncClient, db: AsyncSession, caplog: pytest.LogCaptureFixture
) -> None:
    item = await make_item(db)
    disk.read_only()
    r = await upload(client, db, item.id, img.png())
    assert r.status_code == 503  # type: ignore[attr-defined]
    assert r.json() == {  # type: ignore[attr-defined]
        "detail": "Images cannot be stored right now; try again later"
    }
    assert await image_of(db, item.id) is None
    [message] = errors(caplog)
    assert "Read-only file system" in message


async def test_a_missing_upload_dir_is_503_and_not_made(
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    missing = tmp_path / "share-not-mounted"
    monkeypatch.setenv("UPLOAD_DIR", str(missing))
    clear_settings()
    # The app is built after UPLOAD_DIR is set (the fixtures would build it before).
    from httpx import ASGITransport

    from api.app import create_app

    app = create_app()
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client,
        app.state.sessionmaker() as db,
    ):
        item = await make_item(db)
        r = await upload(client, db, item.id, img.png())
    assert r.status_code == 503  # type: ignore[attr-defined]
    assert not missing.exists()
    assert errors(caplog)[0] == (
        f"UPLOAD_DIR {missing} does not exist; image uploads answer 503 until it does"
    )


async def _item_with_image(client: AsyncClient, db: AsyncSession) -> tuple[int, str]:
    item = await make_item(db)
    r = await upload(client, db, item.id, img.png())
    assert r.status_code == 200  # type: ignore[attr-defined]
    name = r.json()["item"]["image_src"]  # type: ignore[attr-defined]
    return item.id, name


async def test_a_removal_that_fails_after_the_commit_is_retried(
    disk: Disk, client: AsyncClient, db: AsyncSession, caplog: pytest.LogCaptureFixture
) -> None:
    item_id, name = await _item_with_image(client, db)
    admin = await auth_headers(db, await make_user(db, Role.admin))
    disk.read_only()
    r = await client.delete(f"/items/{item_id}", headers=admin)
    assert r.status_code == 200
    assert await db.get(Item, item_id) is None
    assert (disk.uploads / name).exists()  # could not go yet
    assert errors(caplog) == [
        f"cannot remove image {name} (Read-only file system); trying again later"
    ]
    assert not [r for r in caplog.records if r.exc_info]

    storage.retry_removals()  # the server's background task, every RETRY_SECONDS
    assert (disk.uploads / name).exists()  # still read-only
    disk.writable()
    storage.retry_removals()
    assert not (disk.uploads / name).exists()


async def test_prune_images_removes_failed_removals_whatever_their_age(
    disk: Disk, client: AsyncClient, db: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    item_id, name = await _item_with_image(client, db)
    editor = await auth_headers(db, await make_user(db, Role.editor))
    young = "0" * 32 + ".png"  # unreferenced, just made: maybe an upload not yet committed
    (disk.uploads / young).write_bytes(img.png())
    disk.read_only()
    assert (await client.delete(f"/item-image/{item_id}", headers=editor)).status_code == 200
    disk.writable()
    storage._unremoved.clear()  # as after a restart: only the record in DATA_DIR is left

    assert await run_cli("prune-images", "--delete") == 0

    assert f"removed: {name}" in capsys.readouterr().out
    assert sorted(os.listdir(disk.uploads)) == [young]
    assert storage.unremoved_names() == set()
