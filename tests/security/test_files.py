"""Files the service creates are its user's alone: the data folder, the database (password
hashes) with its WAL and SHM files, and the uploads folder."""

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from api import storage
from api.app import create_app
from auth.secret import get_secret_key
from models import migrations
from models.settings import get_database_settings
from tests.conftest import POSTGRES_URL, clear_settings


def mode(path: Path | os.DirEntry[str]) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    if POSTGRES_URL:
        pytest.skip("about the SQLite files")
    data = tmp_path / "fresh" / "data"
    monkeypatch.setenv("DATA_DIR", str(data))
    monkeypatch.setenv("DATABASE_URL", "")
    monkeypatch.delenv("SECRET_KEY")  # development: the key is generated into DATA_DIR
    monkeypatch.delenv("UPLOAD_DIR", raising=False)
    clear_settings()
    yield data
    clear_settings()


async def _modes_while_serving(folder: Path) -> dict[str, int]:
    """Write to the database and make an upload's temporary file; the modes of the files in
    `folder` meanwhile (SQLite removes its WAL and SHM files when the last connection goes)."""
    app = create_app()
    async with app.router.lifespan_context(app), app.state.engine.connect() as conn:
        await conn.execute(text("DELETE FROM login_failures"))
        await conn.commit()
        with storage.temp_file():
            return {path.name: mode(path) for path in os.scandir(folder)}


def test_the_data_folder_database_and_uploads_are_private(fresh: Path) -> None:
    """Issue 14, point 7: inventory.db (password hashes) was 0644 in a 0755 DATA_DIR."""
    get_secret_key()  # what `inventory serve` does first
    migrations.upgrade(get_database_settings().database_url)
    modes = asyncio.run(_modes_while_serving(fresh))
    assert mode(fresh) == 0o700
    assert modes == {
        "secret_key": 0o600,
        "inventory.db": 0o600,
        "inventory.db-wal": 0o600,
        "inventory.db-shm": 0o600,
        "uploads": 0o700,
    }


def test_an_existing_database_is_made_private(fresh: Path) -> None:
    fresh.mkdir(parents=True)
    migrations.upgrade(get_database_settings().database_url)
    database = fresh / "inventory.db"
    database.chmod(0o644)  # as an older version left it
    modes = asyncio.run(_modes_while_serving(fresh))
    assert mode(database) == 0o600
    assert modes["inventory.db-wal"] == 0o600
