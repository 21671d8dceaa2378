import pytest
from sqlalchemy import select
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


async def test_disable_ends_the_users_logins(
    db: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    await make_user(db, Role.admin, username="root")
    bob = await make_user(db, Role.editor, username="bob")
    await login_pair(db, bob)
    await login_pair(db, bob)

    assert await run_cli("users", "disable", "BOB") == 0

    assert capsys.readouterr().out == "disabled 'bob'; their logins were ended\n"
    assert (await _fresh(db, bob)).is_active is False
    logins = (await db.scalars(select(AuthSession).where(AuthSession.user_id == bob.id))).all()
    assert len(logins) == 2
    assert all(login.revoked_at is not None for login in logins)


async def test_disable_refuses_the_last_active_admin(
    db: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    root = await make_user(db, Role.admin, username="root")
    await make_user(db, Role.admin, username="retired", is_active=False)
    await login_pair(db, root)

    assert await run_cli("users", "disable", "root") == 1

    out = capsys.readouterr()
    assert out.err == "inventory: error: cannot disable 'root': this would leave no active admin\n"
    assert out.out == ""
    assert (await _fresh(db, root)).is_active is True
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


async def test_disable_someone_already_disabled(
    db: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    gone = await make_user(db, Role.viewer, username="gone", is_active=False)
    assert await run_cli("users", "disable", "gone") == 0
    assert capsys.readouterr().out == "'gone' was already disabled\n"
    assert (await _fresh(db, gone)).is_active is False


async def test_disable_an_unknown_user(
    db: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    await make_user(db, Role.admin, username="root")
    assert await run_cli("users", "disable", "nobody") == 1
    assert capsys.readouterr().err == "inventory: error: no user named 'nobody'\n"
    assert await db.scalar(select(User.id).where(User.is_active.is_(False))) is None
