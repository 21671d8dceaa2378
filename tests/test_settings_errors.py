"""Settings as people write them: one-line errors for bad values, database URLs in their
usual forms, level names in any case."""

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from api import cli
from api.settings import get_api_settings
from models.engine import create_engine
from models.settings import DatabaseSettings
from tests.conftest import POSTGRES_URL, clear_settings


@pytest.fixture(autouse=True)
def fresh_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATABASE_URL", "")
    clear_settings()


def fails_with(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str, value: str
) -> str:
    monkeypatch.setenv(name, value)
    clear_settings()
    assert cli.main(["users", "list"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1, captured.err  # one line, no traceback
    return captured.err.rstrip("\n")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ENVIRONMENT", "prod", "ENVIRONMENT: Input should be 'development' or 'production'"),
        ("DB_POOL_SIZE", "abc", "DB_POOL_SIZE: Input should be a valid integer"),
        ("LOG_LEVEL", "verbose", "LOG_LEVEL: Input should be 'DEBUG', 'INFO', 'WARNING'"),
        ("ACCESS_TOKEN_EXPIRE_MINUTES", "0", "ACCESS_TOKEN_EXPIRE_MINUTES: Input should be"),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
    message: str,
    tmp_path: Path,
) -> None:
    err = fails_with(monkeypatch, capsys, name, value)
    assert err.startswith(f"inventory: error: {message}")
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("level", ["warning", "Debug", "ERROR"])
def test_log_level_in_any_case(monkeypatch: pytest.MonkeyPatch, level: str) -> None:
    monkeypatch.setenv("LOG_LEVEL", level)
    clear_settings()
    assert level.upper() == get_api_settings().LOG_LEVEL


@pytest.mark.parametrize(
    ("written", "used"),
    [
        ("postgresql://u:pw@db.example:5432/inv", "postgresql+asyncpg://u:pw@db.example:5432/inv"),
        ("postgres://u@db.example/inv", "postgresql+asyncpg://u@db.example/inv"),
        ("PostgreSQL+asyncpg://u@h/inv", "postgresql+asyncpg://u@h/inv"),
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("sqlite:////abs/x.db", "sqlite+aiosqlite:////abs/x.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_database_urls_as_people_write_them(written: str, used: str) -> None:
    assert DatabaseSettings(DATABASE_URL=written).database_url == used


@pytest.mark.parametrize(
    "url",
    ["mysql://u:secret@h/db", "postgresql+psycopg2://u:secret@h/db", "secret@h/db", "oracle://"],
)
def test_an_unsupported_database_url_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    err = fails_with(monkeypatch, capsys, "DATABASE_URL", url)
    assert err.startswith("inventory: error: DATABASE_URL: unsupported database URL")
    assert "postgresql://" in err
    assert "sqlite:///" in err
    assert "secret" not in err


def test_a_plain_sqlite_url_serves_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'plain.db'}")
    clear_settings()
    assert cli.main(["migrate"]) == 0
    assert cli.main(["users", "list"]) == 0
    assert "no users yet" in capsys.readouterr().out


@pytest.mark.skipif(not POSTGRES_URL, reason="needs TEST_DATABASE_URL (PostgreSQL)")
@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_a_plain_postgresql_url_connects(scheme: str) -> None:
    url = f"{scheme}://" + POSTGRES_URL.partition("://")[2]

    async def one() -> object:
        engine = create_engine(DatabaseSettings(DATABASE_URL=url))
        try:
            async with engine.connect() as conn:
                return await conn.scalar(text("SELECT 1"))
        finally:
            await engine.dispose()

    assert asyncio.run(one()) == 1
