"""Commands other than `serve` and `migrate` use the database the settings name and never
create one; their errors say which database they looked at and which setting chose it."""

import io
import os
from pathlib import Path

import pytest

from api import cli
from tests.conftest import POSTGRES_URL, clear_settings

COMMANDS = [
    ["users", "list"],
    ["users", "disable", "bob"],
    ["create-user", "bob"],
    ["set-password", "bob"],
    ["prune-images"],
    ["export", "-"],
]


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from a folder without a database, with the default DATA_DIR (`data`)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATA_DIR", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    clear_settings()
    return tmp_path


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_no_command_creates_a_sqlite_database(
    elsewhere: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    path = elsewhere / "data" / "inventory.db"
    assert err.startswith(f"inventory: error: no database at {path} (set by DATA_DIR=data);")
    assert "DATABASE_URL" in err
    assert os.listdir(elsewhere) == []  # neither the file nor its folder


def test_import_creates_no_database(
    elsewhere: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (elsewhere / "items.csv").write_text("sku,name,quantity,description\nA,Bolt,1,\n")
    assert cli.main(["import", "items.csv"]) == 1
    assert capsys.readouterr().err.startswith("inventory: error: no database at ")
    assert sorted(os.listdir(elsewhere)) == ["items.csv"]


def test_a_sqlite_url_is_named_as_set_by_database_url(
    elsewhere: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "sqlite:///elsewhere/inventory.db")
    clear_settings()
    assert cli.main(["users", "list"]) == 1
    path = elsewhere / "elsewhere" / "inventory.db"
    err = capsys.readouterr().err
    assert err.startswith(f"inventory: error: no database at {path} (set by DATABASE_URL);")
    assert not path.parent.exists()


@pytest.mark.skipif(not POSTGRES_URL, reason="needs TEST_DATABASE_URL (PostgreSQL)")
def test_a_missing_postgresql_database_is_named(
    elsewhere: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = POSTGRES_URL.rpartition("/")[0].replace("postgresql+asyncpg", "postgresql")
    monkeypatch.setenv("DATABASE_URL", f"{server}/no_such_database_here")
    clear_settings()
    assert cli.main(["users", "list"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith('inventory: error: database: database "no_such_database_here"')
    assert err.endswith("/no_such_database_here (set by DATABASE_URL)")
    assert "inventory migrate" not in err  # migrate would not create it
