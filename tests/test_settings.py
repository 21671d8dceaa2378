"""Startup refusals in production, the development key file, and the SQLite pragmas."""

import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import text

from api.app import create_app
from api.settings import get_api_settings
from auth.secret import InsecureSecretKey, _development_key, get_secret_key
from auth.settings import get_auth_settings
from models.engine import create_engine
from models.settings import DatabaseSettings, get_database_settings
from tests.conftest import clear_settings

ROOT = Path(__file__).resolve().parent.parent


def example_secret_key() -> str:
    """The SECRET_KEY value .env.example shows (commented out or not)."""
    for line in (ROOT / ".env.example").read_text().splitlines():
        name, _, value = line.lstrip("# ").partition("=")
        if name == "SECRET_KEY" and value:
            return value.strip()
    raise AssertionError(".env.example shows no SECRET_KEY value")


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A data directory of its own and no SECRET_KEY; each test sets what it needs."""
    data_dir = tmp_path / "data"
    monkeypatch.setenv("DATA_DIR", str(data_dir))
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{data_dir / 'inventory.db'}")
    monkeypatch.delenv("SECRET_KEY")
    clear_settings()
    yield data_dir
    clear_settings()


def production(monkeypatch: pytest.MonkeyPatch, key: str | None) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    if key is not None:
        monkeypatch.setenv("SECRET_KEY", key)
    clear_settings()


async def start(app: FastAPI) -> None:
    async with app.router.lifespan_context(app):
        pass


BAD_PRODUCTION_KEYS = {
    "unset": None,
    "empty": "",
    "31 bytes": "k" * 31,
    "example value": example_secret_key(),
    "public filler": "x" * 32,
}


@pytest.mark.parametrize("key", BAD_PRODUCTION_KEYS.values(), ids=BAD_PRODUCTION_KEYS.keys())
def test_production_refuses_weak_secret_key(
    environment: Path, monkeypatch: pytest.MonkeyPatch, key: str | None
) -> None:
    production(monkeypatch, key)
    with pytest.raises(InsecureSecretKey):
        get_secret_key()
    assert not (environment / "secret_key").exists()


@pytest.mark.parametrize("key", [None, "k" * 31], ids=["unset", "short"])
async def test_production_app_refuses_to_start(
    environment: Path, monkeypatch: pytest.MonkeyPatch, key: str | None
) -> None:
    production(monkeypatch, key)
    with pytest.raises(InsecureSecretKey):
        await start(create_app())


async def test_production_starts_with_a_strong_key(
    environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "a-32-byte-key-nobody-has-seen-yet!"
    production(monkeypatch, key)
    await start(create_app())
    assert get_secret_key() == key


def test_development_generates_a_private_key_file(environment: Path) -> None:
    key = get_secret_key()
    path = environment / "secret_key"
    assert path.read_text().strip() == key
    assert len(key.encode()) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_development_key_survives_a_restart(environment: Path) -> None:
    first = get_secret_key()
    assert get_secret_key() == first
    clear_settings()
    assert get_secret_key() == first


def test_development_keys_differ_per_data_directory(
    environment: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = get_secret_key()
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "elsewhere"))
    clear_settings()
    assert get_secret_key() != first


def test_development_uses_configured_key_without_a_file(
    environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_KEY", "configured")
    clear_settings()
    assert get_secret_key() == "configured"
    assert not (environment / "secret_key").exists()


def test_concurrent_first_starts_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "secret_key"
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: _development_key(path), range(16)))
    assert keys == {path.read_text().strip()}
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]


async def test_sqlite_connection_pragmas(tmp_path: Path) -> None:
    settings = DatabaseSettings(
        DATA_DIR=tmp_path,
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'pragmas.db'}",
        SQLITE_BUSY_TIMEOUT_MS=1234,
    )
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            values = {
                name: (await conn.execute(text(f"PRAGMA {name}"))).scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
            }
    finally:
        await engine.dispose()
    assert values == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": 1234,
        "synchronous": 2,
    }


def test_every_package_reads_the_shared_settings_and_one_call_forgets_them(
    environment: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    getters = (get_database_settings, get_auth_settings, get_api_settings)
    assert {g().DATA_DIR for g in getters} == {environment}
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "elsewhere"))
    assert {g().DATA_DIR for g in getters} == {environment}  # cached
    clear_settings()
    assert {g().DATA_DIR for g in getters} == {tmp_path / "elsewhere"}
    assert get_api_settings().upload_dir == tmp_path / "elsewhere" / "uploads"
