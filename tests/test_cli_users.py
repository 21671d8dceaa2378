"""`inventory users list|disable|enable|set-role|delete` and `create-user --role`: names and
roles in any case, the last active admin kept."""

import io
import sys

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.enums import Role
from models.user import AuthSession, User
from tests.cli_runner import run_cli
from tests.factories import login_pair, make_user


async def _fresh(db: AsyncSession, user: User) -> User:
    """The row as the database has it now (the CLI changed it through its own connection)."""
    user_id = user.id
    db.expire_all()
    row = await db.get(User, user_id)
    assert row is not None
    return row


async def test_users_list_prints_a_table(
    db: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = await make_user(db, Role.admin, username="root", email="root@example.com")
    gone = await make_user(db, Role.viewer, username="gone", is_active=False)
    assert await run_cli("users", "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "USERNAME", "ROLE", "ACTIVE", "EMAIL", "NAME"]
    assert [line.split() for line in lines[1:]] == [
        [str(admin.id), "root", "admin", "yes", "root@example.com"],
        [str(gone.id), "gone", "viewer", "no"],
    ]


async def test_users_list_with_no_users(
    capsys: pytest.CaptureFixture[str], db: AsyncSession
) -> None:
    assert await run_cli("users", "list") == 0
    assert "no users yet" in capsys.readouterr().out


@pytest.fixture
async def logged_in(db: AsyncSession) -> User:
    """Editor bob with two logins, beside an admin (so bob is never the last one)."""
    await make_user(db, Role.admin, username="root")
    bob = await make_user(db, Role.editor, username="bob")
    await login_pair(db, bob)
    await login_pair(db, bob)
    return bob


async def test_disable_ends_the_users_logins(
    db: AsyncSession, capsys: pytest.CaptureFixture[str], logged_in: User
) -> None:
    bob = logged_in

    assert await run_cli("users", "disable", "BOB") == 0

    assert capsys.readouterr().out == "disabled 'bob'; their logins were ended\n"
    assert (await _fresh(db, bob)).is_active is False
    logins = (await db.scalars(select(AuthSession).where(AuthSession.user_id == bob.id))).all()
    assert len(logins) == 2
    assert all(login.revoked_at is not None for login in logins)


@pytest.mark.parametrize(
    ("command", "verb"),
    [
        (["disable", "root"], "disable"),
        (["set-role", "root", "viewer"], "change the role of"),
        (["delete", "root"], "delete"),
    ],
)
async def test_the_last_active_admin_is_kept(
    db: AsyncSession, capsys: pytest.CaptureFixture[str], command: list[str], verb: str
) -> None:
    root = await make_user(db, Role.admin, username="root")
    await make_user(db, Role.admin, username="retired", is_active=False)
    await login_pair(db, root)

    assert await run_cli("users", *command) == 1

    out = capsys.readouterr()
    assert out.err == f"inventory: error: cannot {verb} 'root': this would leave no active admin\n"
    assert out.out == ""
    row = await _fresh(db, root)
    assert (row.role, row.is_active) == (Role.admin, True)
    login = await db.scalar(select(AuthSession).where(AuthSession.user_id == root.id))
    assert login is not None
    assert login.revoked_at is None


async def test_disable_an_admin_while_another_remains(
    db: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    await make_user(db, Role.admin, username="root")
    second = await make_user(db, Role.admin, username="second")
    assert await run_cli("users", "disable", "second") == 0
    assert (await _fresh(db, second)).is_active is False


@pytest.mark.parametrize(
    ("command", "active", "said"),
    [
        ("disable", False, "'bob' was already disabled"),
        ("enable", True, "'bob' was already enabled"),
    ],
)
async def test_nothing_to_do(
    db: AsyncSession, capsys: pytest.CaptureFixture[str], command: str, active: bool, said: str
) -> None:
    bob = await make_user(db, Role.viewer, username="bob", is_active=active)
    assert await run_cli("users", command, "bob") == 0
    assert capsys.readouterr().out == f"{said}\n"
    assert (await _fresh(db, bob)).is_active is active


async def test_disable_an_unknown_user(
    db: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    await make_user(db, Role.admin, username="root")
    assert await run_cli("users", "disable", "nobody") == 1
    assert capsys.readouterr().err == "inventory: error: no user named 'nobody'\n"
    assert await db.scalar(select(User.id).where(User.is_active.is_(False))) is None


async def test_enable_lets_a_disabled_user_back(
    db: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    gone = await make_user(db, Role.viewer, username="gone", is_active=False)
    assert await run_cli("users", "enable", "GONE") == 0
    assert capsys.readouterr().out == "enabled 'gone'\n"
    assert (await _fresh(db, gone)).is_active is True


@pytest.mark.parametrize("written", ["editor", "Editor", "EDITOR"])
async def test_set_role_in_any_case(
    db: AsyncSession, capsys: pytest.CaptureFixture[str], written: str
) -> None:
    bob = await make_user(db, Role.viewer, username="bob")
    assert await run_cli("users", "set-role", "bob", written) == 0
    assert capsys.readouterr().out == "'bob' is now editor\n"
    assert (await _fresh(db, bob)).role == Role.editor


async def test_set_role_refuses_an_unknown_role(
    db: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    bob = await make_user(db, Role.viewer, username="bob")
    with pytest.raises(SystemExit) as exit_:
        await run_cli("users", "set-role", "bob", "owner")
    assert exit_.value.code == 2
    assert "invalid choice: 'owner'" in capsys.readouterr().err
    assert (await _fresh(db, bob)).role == Role.viewer


async def test_delete_removes_the_user_and_their_logins(
    db: AsyncSession, capsys: pytest.CaptureFixture[str], logged_in: User
) -> None:
    bob_id = logged_in.id
    assert await run_cli("users", "delete", "Bob") == 0
    assert capsys.readouterr().out == "deleted 'bob'\n"
    db.expire_all()
    assert await db.get(User, bob_id) is None
    logins = await db.scalar(
        select(func.count()).select_from(AuthSession).where(AuthSession.user_id == bob_id)
    )
    assert logins == 0


async def test_create_user_takes_a_role_in_any_case(
    db: AsyncSession, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long enough password\n"))
    assert await run_cli("create-user", "ann", "--role", "Admin") == 0
    assert "created admin 'ann'" in capsys.readouterr().out
    user = await db.scalar(select(User).where(User.username == "ann"))
    assert user is not None
    assert user.role == Role.admin
