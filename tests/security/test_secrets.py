"""Secrets: production refuses weak keys; no response or log record carries a password or token."""

import json
import logging
import re
import secrets
from pathlib import Path

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from api.cli import main
from auth.secret import InsecureSecretKey, get_secret_key
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


def test_production_accepts_a_generated_key(production: pytest.MonkeyPatch) -> None:
    key = secrets.token_urlsafe(48)
    production.setenv("SECRET_KEY", key)
    clear_settings()
    assert get_secret_key() == key


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
