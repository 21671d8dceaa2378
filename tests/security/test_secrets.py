"""Secrets: production refuses weak keys; no response or log record carries a password or token."""

import base64
import json
import logging
import re
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from api.cli import main
from auth.secret import InsecureSecretKey, get_secret_key, looks_generated
from models.engine import create_engine
from models.settings import DatabaseSettings
from models.user import User
from tests.conftest import clear_settings
from tests.factories import PASSWORD, auth_headers, login_pair
from tests.security.conftest import snapshot

ROOT = Path(__file__).resolve().parents[2]


def _documented_keys() -> set[str]:
    """Every SECRET_KEY value written in .env.example, the README or docs/, commented out or not."""
    found: set[str] = set()
    for path in (ROOT / ".env.example", ROOT / "README.md", *sorted(ROOT.glob("docs/*.md"))):
        text = path.read_text()
        found.update(m.strip("'\"") for m in re.findall(r"SECRET_KEY=(\S+)", text))
    return found


DOCUMENTED = sorted(_documented_keys())


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("ENVIRONMENT", "production")
    clear_settings()
    return monkeypatch


def test_the_example_file_documents_a_key() -> None:
    assert DOCUMENTED  # else the next test would check nothing


@pytest.mark.parametrize(
    "key",
    [
        *DOCUMENTED,
        "",
        "short",
        "x" * 31,
        "x" * 32,
        "a" * 64,
        "abc" * 20,
        "please-change-me-to-a-random-string-0123456789",
        "abcdefghijklmnopqrstuvwxyzabcdefgh",  # issue 14, point 13: 26 distinct, no entropy
        "abcdefghijklmnopqrstuvwxyz" * 2,
        "0123456789abcdef" * 4,
        "ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvutsrqponmlkjihgfedcba",
        "correct horse battery staple and then some",  # a passphrase: not a generated key
    ],
)
def test_production_refuses_weak_or_example_keys(production: pytest.MonkeyPatch, key: str) -> None:
    production.setenv("SECRET_KEY", key)
    clear_settings()
    with pytest.raises(InsecureSecretKey):
        get_secret_key()


def test_production_refuses_to_start_without_a_key(production: pytest.MonkeyPatch) -> None:
    production.delenv("SECRET_KEY")
    clear_settings()
    with pytest.raises(InsecureSecretKey):
        get_secret_key()


@pytest.mark.parametrize(
    "generate",
    [
        lambda: secrets.token_urlsafe(48),
        lambda: secrets.token_urlsafe(32),
        lambda: secrets.token_hex(32),
        lambda: base64.b64encode(secrets.token_bytes(32)).decode(),  # openssl rand -base64 32
    ],
    ids=["token_urlsafe(48)", "token_urlsafe(32)", "token_hex(32)", "openssl base64"],
)
def test_production_accepts_a_generated_key(
    production: pytest.MonkeyPatch, generate: Callable[[], str]
) -> None:
    key = generate()
    production.setenv("SECRET_KEY", key)
    clear_settings()
    assert get_secret_key() == key
    assert all(looks_generated(generate()) for _ in range(2000))  # no false refusals


async def test_app_does_not_start_in_production_with_the_example_key(
    production: pytest.MonkeyPatch, database_url: str
) -> None:
    production.setenv("ENVIRONMENT", "production")
    production.setenv("SECRET_KEY", DOCUMENTED[0])
    clear_settings()
    app = create_app()
    with pytest.raises(InsecureSecretKey):
        async with app.router.lifespan_context(app):
            pass


def test_serve_refuses_before_serving(
    production: pytest.MonkeyPatch, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    production.setenv("ENVIRONMENT", "production")
    production.setenv("SECRET_KEY", DOCUMENTED[0])
    clear_settings()

    def must_not_serve(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("serve started uvicorn with an example key")

    production.setattr("uvicorn.run", must_not_serve)
    assert main(["serve", "--port", "8259"]) == 1
    err = capsys.readouterr().err
    assert "SECRET_KEY" in err
    assert DOCUMENTED[0] not in err


async def test_failed_login_does_not_echo_the_password(
    client: AsyncClient, db: AsyncSession, viewer: User
) -> None:
    guess = "Guess-Pa55word-XYZ"
    r = await client.post("/token", data={"username": "vera", "password": guess})
    assert r.status_code == 401
    assert r.json() == {"detail": "Incorrect username or password"}
    assert guess not in r.text


SECRET = "S3cret-Echo-Probe"  # too short for a new password? no: 17 chars; used where invalid


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/users", {"username": "ab", "password": SECRET}),  # bad username
        ("POST", "/users", {"username": "bobby", "password": SECRET[:5]}),  # short password
        ("POST", "/users", {"username": "bobby", "password": SECRET * 9}),  # long password
        ("POST", "/users", {"username": "bobby", "password": 12345678}),  # wrong type
        ("POST", "/users", {"username": "bobby", "password": SECRET, "hash": SECRET}),
        ("PATCH", "/users/{self}", {"password": SECRET[:5]}),
        ("POST", "/users/me/password", {"current_password": SECRET, "new_password": "short"}),
        ("POST", "/users/me/password", {"current_password": "", "new_password": SECRET}),
        ("POST", "/token/refresh", {"refresh_token": SECRET * 300}),
        ("POST", "/logout", {"refresh_token": SECRET * 300}),
    ],
)
async def test_422_bodies_never_echo_the_input(
    client: AsyncClient,
    db: AsyncSession,
    admin: User,
    method: str,
    path: str,
    body: dict[str, object],
) -> None:
    headers = await auth_headers(db, admin)
    before = await snapshot(db)
    r = await client.request(method, path.format(self=admin.id), json=body, headers=headers)
    assert r.status_code == 422
    assert SECRET[:5] not in r.text
    assert "12345678" not in r.text
    assert all("input" not in error for error in r.json()["detail"])
    assert await snapshot(db) == before


async def test_login_form_422_does_not_echo(client: AsyncClient, db: AsyncSession) -> None:
    before = await snapshot(db)
    r = await client.post("/token", data={"password": SECRET})
    assert r.status_code == 422
    assert SECRET not in r.text
    assert await snapshot(db) == before


async def test_no_log_record_carries_a_password_or_token(
    client: AsyncClient, db: AsyncSession, admin: User, caplog: pytest.LogCaptureFixture
) -> None:
    # INFO and up from every logger (aiosqlite's DEBUG records show SQL parameters; so does
    # DB_ECHO, documented as a debugging switch), everything from our own loggers.
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="auth")
    caplog.set_level(logging.DEBUG, logger="api")
    access, refresh = await login_pair(db, admin)
    headers = {"Authorization": f"Bearer {access}"}
    await client.post("/token", data={"username": "root", "password": "Wrong-Guess-123"})
    ok = await client.post("/token", data={"username": "root", "password": PASSWORD})
    await client.post("/token/refresh", json={"refresh_token": refresh})
    await client.post("/token/refresh", json={"refresh_token": refresh})  # replay
    await client.post(
        "/users", json={"username": "newbie", "password": "Newbie-Pass-456"}, headers=headers
    )
    new_headers = {"Authorization": f"Bearer {ok.json()['access_token']}"}
    await client.post(
        "/users/me/password",
        json={"current_password": PASSWORD, "new_password": "Changed-Pass-789"},
        headers=new_headers,
    )
    logged = "\n".join(
        r.getMessage() + json.dumps(getattr(r, "auth_event", None)) for r in caplog.records
    )
    assert "login_failed" in logged  # the records were captured at all
    for secret in (
        "Wrong-Guess-123",
        PASSWORD,
        "Newbie-Pass-456",
        "Changed-Pass-789",
        access,
        refresh,
        ok.json()["access_token"],
        ok.json()["refresh_token"],
        get_secret_key(),
    ):
        assert secret not in logged
    assert "$argon2" not in logged


async def test_db_echo_shows_statements_never_their_values(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 14, point 8: DB_ECHO=true logged argon2 hashes with the statements' parameters."""
    marker = "$argon2id$v=19$m=19456,t=2,p=1$not-a-real-hash"
    engine = create_engine(DatabaseSettings(DATABASE_URL=database_url, DB_ECHO=True))
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT :value"), {"value": marker})
            with pytest.raises(DBAPIError) as failed:
                await conn.execute(text("SELECT no_such_column WHERE 1 = :v"), {"v": marker})
    finally:
        await engine.dispose()
    assert any("SELECT" in r.getMessage() for r in caplog.records)  # echo is on
    assert all(marker not in r.getMessage() for r in caplog.records)
    assert marker not in str(failed.value)
