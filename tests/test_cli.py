"""The `inventory` command, run in-process (api.cli.main) and once as a real server."""

import getpass
import io
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from api import cli
from api.commands.common import CommandError, run_in_session
from auth import sessions
from auth.passwords import get_password_context
from models import migrations
from models.enums import Role
from models.user import AuthSession, User
from tests.conftest import POSTGRES_URL, clear_settings, empty_tables
from tests.server import running_server

T = TypeVar("T")
GOOD_PASSWORD = "a long enough password"


in_db = run_in_session  # a committed session on the database the CLI uses


def find_user(username: str) -> User | None:
    async def work(db: AsyncSession) -> User | None:
        return await db.scalar(select(User).where(User.username == username))

    return in_db(work)


def all_users() -> list[User]:
    async def work(db: AsyncSession) -> list[User]:
        return list(await db.scalars(select(User)))

    return in_db(work)


def verifies(password: str, user: User) -> bool:
    return bool(get_password_context().verify(password, user.password_hash))


def run(monkeypatch: pytest.MonkeyPatch, argv: list[str], stdin: str = "") -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return cli.main(argv)


@pytest.fixture
def cli_db(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrated_template: Path | str
) -> Iterator[str]:
    """An empty database for the CLI: a new SQLite file (migrated by the test through
    `inventory migrate`), or the PostgreSQL test database, emptied afterwards."""
    data_dir = tmp_path / "cli-data"
    url = POSTGRES_URL or f"sqlite+aiosqlite:///{data_dir / 'inventory.db'}"
    monkeypatch.setenv("DATA_DIR", str(data_dir))
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("FIRST_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("FIRST_ADMIN_USERNAME", raising=False)
    clear_settings()
    yield url
    monkeypatch.setenv("DATABASE_URL", url)  # a test may have pointed it elsewhere
    clear_settings()
    if POSTGRES_URL:
        in_db(empty_tables)
    clear_settings()


@pytest.fixture
def migrated(cli_db: str, monkeypatch: pytest.MonkeyPatch) -> str:
    assert run(monkeypatch, ["migrate"]) == 0
    return cli_db


# --- migrate ----------------------------------------------------------------------------


def test_migrate_builds_the_schema(
    cli_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(monkeypatch, ["migrate"]) == 0
    assert "database is up to date" in capsys.readouterr().out

    async def work(db: AsyncSession) -> tuple[str | None, int | None]:
        version = await db.scalar(text("SELECT version_num FROM alembic_version"))
        users = await db.scalar(text("SELECT count(*) FROM users"))
        return version, users

    head = ScriptDirectory.from_config(migrations.alembic_config()).get_current_head()
    assert in_db(work) == (head, 0)


def test_migrate_twice_is_harmless(migrated: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(monkeypatch, ["migrate"]) == 0


# --- create-user ------------------------------------------------------------------------


def test_create_user_reads_password_from_stdin(
    migrated: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(monkeypatch, ["create-user", "Bob", "--role", "editor"], f"{GOOD_PASSWORD}\n")
    assert code == 0
    assert "created editor 'bob'" in capsys.readouterr().out
    user = find_user("bob")
    assert user is not None
    assert (user.role, user.is_active) == (Role.editor, True)
    assert verifies(GOOD_PASSWORD, user)


def test_create_user_before_migrate_is_a_clear_error(
    cli_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if POSTGRES_URL:
        pytest.skip("the PostgreSQL test database is migrated once for the whole run")
    database = Path(cli_db.partition(":///")[2])
    database.parent.mkdir(parents=True)
    database.touch()  # an empty SQLite file: a database without tables
    assert run(monkeypatch, ["create-user", "bob"], GOOD_PASSWORD) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"inventory: error: database: no such table: users at {database}")
    assert "run `inventory migrate` first" in err
    assert "$argon2" not in err  # the SQL parameters (the new hash) are never shown
    assert "Traceback" not in err


def test_unreachable_database_is_a_clear_error(
    cli_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://nobody@127.0.0.1:8219/nothing")
    clear_settings()
    assert run(monkeypatch, ["set-password", "bob"], GOOD_PASSWORD) == 1
    err = capsys.readouterr().err
    assert err.startswith("inventory: error: database: ")
    assert "8219" in err


def test_create_user_defaults_to_viewer(migrated: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(monkeypatch, ["create-user", "vic"], GOOD_PASSWORD) == 0
    user = find_user("vic")
    assert user is not None
    assert user.role == Role.viewer


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def typed(monkeypatch: pytest.MonkeyPatch, *answers: str) -> None:
    """A terminal on standard input, where the user types `answers` at the prompts."""
    replies = iter(answers)
    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr(getpass, "getpass", lambda _prompt="": next(replies))


def test_create_user_prompts_twice_on_a_terminal(
    migrated: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    typed(monkeypatch, GOOD_PASSWORD, GOOD_PASSWORD)
    assert cli.main(["create-user", "tty"]) == 0
    user = find_user("tty")
    assert user is not None
    assert verifies(GOOD_PASSWORD, user)


def test_create_user_with_differing_prompts_exits_1(
    migrated: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    typed(monkeypatch, GOOD_PASSWORD, "something else entirely")
    assert cli.main(["create-user", "tty"]) == 1
    assert capsys.readouterr().err.strip() == "inventory: error: the two passwords differ"
    assert all_users() == []


def test_create_duplicate_user_exits_1(
    migrated: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(monkeypatch, ["create-user", "bob"], GOOD_PASSWORD) == 0
    capsys.readouterr()
    assert run(monkeypatch, ["create-user", "BOB"], "another password\n") == 1
    err = capsys.readouterr().err
    assert err.strip() == "inventory: error: A user with this username already exists"
    [user] = all_users()
    assert verifies(GOOD_PASSWORD, user)


def test_create_user_with_bad_role_fails(
    migrated: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run(monkeypatch, ["create-user", "bob", "--role", "owner"], GOOD_PASSWORD)
    assert exit_info.value.code != 0
    assert "invalid choice: 'owner'" in capsys.readouterr().err
    assert all_users() == []


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (["create-user", "bob"], "short\n", "password: String should have at least 8 characters"),
        (["create-user", "bob"], "", "password: String should have at least 8 characters"),
        (["create-user", "b b"], GOOD_PASSWORD, "username: String should match pattern"),
        (["create-user", "bo"], GOOD_PASSWORD, "username: String should have at least 3"),
    ],
    ids=["short password", "no password", "bad username", "short username"],
)
def test_create_user_with_invalid_input_exits_1(
    migrated: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    stdin: str,
    message: str,
) -> None:
    assert run(monkeypatch, argv, stdin) == 1
    err = capsys.readouterr().err
    assert err.startswith("inventory: error: ")
    assert message in err
    assert all_users() == []


# --- set-password -----------------------------------------------------------------------


def test_set_password_changes_hash_and_ends_logins(
    migrated: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(monkeypatch, ["create-user", "bob"], GOOD_PASSWORD) == 0
    before = find_user("bob")
    assert before is not None

    async def log_in(db: AsyncSession) -> None:
        user = await db.scalar(select(User).where(User.username == "bob"))
        assert user is not None
        assert await sessions.start(db, user.id) is not None

    in_db(log_in)
    assert run(monkeypatch, ["set-password", "BOB"], "the new password\n") == 0
    assert "password of 'BOB' changed" in capsys.readouterr().out
    after = find_user("bob")
    assert after is not None
    assert after.password_hash != before.password_hash
    assert verifies("the new password", after)

    async def logins(db: AsyncSession) -> list[AuthSession]:
        return list(await db.scalars(select(AuthSession)))

    [login] = in_db(logins)
    assert login.revoked_at is not None


def test_set_password_for_unknown_user_exits_1(
    migrated: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(monkeypatch, ["set-password", "ghost"], GOOD_PASSWORD) == 1
    assert capsys.readouterr().err.strip() == "inventory: error: no user named 'ghost'"


def test_set_password_too_short_exits_1_and_keeps_hash(
    migrated: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(monkeypatch, ["create-user", "bob"], GOOD_PASSWORD) == 0
    assert run(monkeypatch, ["set-password", "bob"], "short\n") == 1
    assert "at least 8 characters" in capsys.readouterr().err
    user = find_user("bob")
    assert user is not None
    assert verifies(GOOD_PASSWORD, user)


# --- the first admin --------------------------------------------------------------------


def test_first_admin_with_configured_password(
    migrated: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FIRST_ADMIN_USERNAME", "Root")
    monkeypatch.setenv("FIRST_ADMIN_PASSWORD", GOOD_PASSWORD)
    clear_settings()
    cli.ensure_first_admin()
    out = capsys.readouterr().out
    assert out.strip() == "created the first admin 'root' with FIRST_ADMIN_PASSWORD"
    [admin] = all_users()
    assert (admin.username, admin.role, admin.is_active) == ("root", Role.admin, True)
    assert verifies(GOOD_PASSWORD, admin)


def test_first_admin_with_generated_password_is_shown_once(
    migrated: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.ensure_first_admin()
    out = capsys.readouterr().out
    match = re.search(r"created the first admin 'admin' with the password: (\S+)\n", out)
    assert match, out
    [admin] = all_users()
    assert admin.role == Role.admin
    assert verifies(match.group(1), admin)

    cli.ensure_first_admin()
    assert capsys.readouterr().out == ""
    assert [u.id for u in all_users()] == [admin.id]


def test_no_first_admin_when_users_exist(
    migrated: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(monkeypatch, ["create-user", "bob"], GOOD_PASSWORD) == 0
    capsys.readouterr()
    cli.ensure_first_admin()
    assert capsys.readouterr().out == ""
    assert [u.username for u in all_users()] == ["bob"]


@pytest.mark.parametrize(
    ("name", "value"), [("FIRST_ADMIN_PASSWORD", "short"), ("FIRST_ADMIN_USERNAME", "a b")]
)
def test_invalid_first_admin_settings_are_refused(
    migrated: str, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    clear_settings()
    with pytest.raises(CommandError, match="FIRST_ADMIN_"):
        cli.ensure_first_admin()
    assert all_users() == []


# --- a real server ----------------------------------------------------------------------


def test_serve_migrates_creates_admin_and_serves(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with running_server(data_dir, GOOD_PASSWORD) as base:
        r = httpx.post(f"{base}/token", data={"username": "admin", "password": GOOD_PASSWORD})
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        r = httpx.post(
            f"{base}/items",
            json={"name": "Served", "quantity": 1},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 201, r.text
        assert httpx.get(f"{base}{r.headers['location']}").json()["item"]["name"] == "Served"
    output = (data_dir / "server.log").read_text()
    assert "created the first admin 'admin' with FIRST_ADMIN_PASSWORD" in output
    assert (data_dir / "inventory.db").exists()
