"""`inventory users enable|set-role|delete`, roles in any case, and the CLI's plain output:
singular counts and a quiet end when the reader of standard output goes away."""

import asyncio
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.enums import Role
from models.item import Item
from models.user import AuthSession, User
from tests.cli_runner import run_cli
from tests.factories import login_pair, make_item, make_user


async def _fresh(db: AsyncSession, user_id: int) -> User | None:
    db.expire_all()
    return await db.get(User, user_id)


async def test_enable_lets_a_disabled_user_back(
    db: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    gone = await make_user(db, Role.viewer, username="gone", is_active=False)
    assert await run_cli("users", "enable", "GONE") == 0
    assert capsys.readouterr().out == "enabled 'gone'\n"
    user = await _fresh(db, gone.id)
    assert user is not None
    assert user.is_active is True


async def test_enable_someone_already_enabled(
    db: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    await make_user(db, Role.viewer, username="here")
    assert await run_cli("users", "enable", "here") == 0
    assert capsys.readouterr().out == "'here' was already enabled\n"


@pytest.mark.parametrize("written", ["editor", "Editor", "EDITOR"])
async def test_set_role_in_any_case(
    db: AsyncSession, capsys: pytest.CaptureFixture[str], written: str
) -> None:
    bob = await make_user(db, Role.viewer, username="bob")
    assert await run_cli("users", "set-role", "bob", written) == 0
    assert capsys.readouterr().out == "'bob' is now editor\n"
    user = await _fresh(db, bob.id)
    assert user is not None
    assert user.role == Role.editor


async def test_set_role_refuses_demoting_the_last_admin(
    db: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    root = await make_user(db, Role.admin, username="root")
    assert await run_cli("users", "set-role", "root", "viewer") == 1
    assert capsys.readouterr().err == (
        "inventory: error: cannot change the role of 'root': this would leave no active admin\n"
    )
    user = await _fresh(db, root.id)
    assert user is not None
    assert user.role == Role.admin


async def test_set_role_refuses_an_unknown_role(
    db: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    bob = await make_user(db, Role.viewer, username="bob")
    with pytest.raises(SystemExit) as exit_:
        await run_cli("users", "set-role", "bob", "owner")
    assert exit_.value.code == 2
    assert "invalid choice: 'owner'" in capsys.readouterr().err
    user = await _fresh(db, bob.id)
    assert user is not None
    assert user.role == Role.viewer


async def test_delete_removes_the_user_and_their_logins(
    db: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    await make_user(db, Role.admin, username="root")
    bob = await make_user(db, Role.editor, username="bob")
    await login_pair(db, bob)
    bob_id = bob.id
    assert await run_cli("users", "delete", "Bob") == 0
    assert capsys.readouterr().out == "deleted 'bob'\n"
    assert await _fresh(db, bob_id) is None
    logins = await db.scalar(
        select(func.count()).select_from(AuthSession).where(AuthSession.user_id == bob_id)
    )
    assert logins == 0


async def test_delete_refuses_the_last_active_admin(
    db: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    root = await make_user(db, Role.admin, username="root")
    await make_user(db, Role.admin, username="retired", is_active=False)
    assert await run_cli("users", "delete", "root") == 1
    assert capsys.readouterr().err == (
        "inventory: error: cannot delete 'root': this would leave no active admin\n"
    )
    assert await _fresh(db, root.id) is not None


async def test_create_user_takes_a_role_in_any_case(
    db: AsyncSession, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long enough password\n"))
    assert await run_cli("create-user", "ann", "--role", "Admin") == 0
    assert "created admin 'ann'" in capsys.readouterr().out
    user = await db.scalar(select(User).where(User.username == "ann"))
    assert user is not None
    assert user.role == Role.admin


async def test_import_of_one_row_says_row(
    db: AsyncSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await make_user(db, Role.admin, username="admin")
    file = tmp_path / "one.csv"
    file.write_text("sku,name,quantity,description\nNUT,Nut,3,\n")
    assert await run_cli("import", str(file)) == 0
    assert capsys.readouterr().out == (
        f"imported 1 row from {file}: 1 created, 0 updated, 0 unchanged\n"
    )
    assert await db.scalar(select(func.count()).select_from(Item)) == 1


async def test_export_into_a_closed_pipe_ends_quietly(
    db: AsyncSession, database_url: str, data_dir: Path
) -> None:
    await make_item(db, name="first", quantity=1)
    # Far more than a pipe holds, so the export is still writing when the reader leaves.
    filler = "x" * 200
    await db.execute(
        insert(Item),
        [{"name": f"item {n}", "quantity": 0, "description": filler} for n in range(3000)],
    )
    await db.commit()
    status, err = await asyncio.to_thread(_export_then_close, database_url, data_dir)
    assert (status, err) == (141, "")


def _export_then_close(database_url: str, data_dir: Path) -> tuple[int, str]:
    """`inventory export - | head -n 1`: the reader takes a line and goes away."""
    inventory = Path(sys.executable).with_name("inventory")
    env = {**os.environ, "DATABASE_URL": database_url, "DATA_DIR": str(data_dir)}
    proc = subprocess.Popen(  # noqa: S603  (our own console script)
        [str(inventory), "export", "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    assert proc.stdout.readline() == b"sku,name,quantity,description\r\n"
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    return proc.wait(timeout=60), err
