"""Instances starting at once on one fresh database take turns at migrating and creating the
first admin (a file lock on SQLite, an advisory lock on PostgreSQL): both come up."""

import asyncio
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import POSTGRES_URL
from tests.server import _wait_until_up, server_env

INVENTORY = str(Path(sys.executable).with_name("inventory"))
PASSWORD = "a long enough password"


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file not yet made, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield ""  # DATABASE_URL empty: SQLite in DATA_DIR
        return
    if not POSTGRES_URL:
        pytest.skip("needs TEST_DATABASE_URL (PostgreSQL)")
    name = f"race_{secrets.token_hex(4)}"
    admin_url = make_url(POSTGRES_URL).set(database="postgres")

    async def run(statement: str) -> None:
        engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(statement))
        await engine.dispose()

    asyncio.run(run(f"CREATE DATABASE {name}"))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(run(f"DROP DATABASE {name} WITH (FORCE)"))


def test_two_instances_start_at_once_on_a_fresh_database(
    tmp_path: Path, fresh_database: str
) -> None:
    data = tmp_path / "data"
    env = server_env(data, PASSWORD, {"DATABASE_URL": fresh_database})
    logs = [tmp_path / f"serve-{n}.log" for n in (1, 2)]
    with ExitStack() as stack:
        procs = []
        for log in logs:  # both started before either is up
            out = stack.enter_context(log.open("wb"))
            proc = subprocess.Popen(  # noqa: S603  (our own console script)
                [INVENTORY, "serve", "--port", "0"],
                cwd=tmp_path,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            stack.callback(_stop, proc)
            procs.append(proc)
        first, second = (_wait_until_up(p, log, 90) for p, log in zip(procs, logs, strict=True))
        # Both serve the one database: a login made through one works through the other.
        token = httpx.post(
            f"{first}/token", data={"username": "admin", "password": PASSWORD}
        ).json()["access_token"]
        me = httpx.get(f"{second}/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
        assert me.json()["user"]["username"] == "admin"
    created = [log.read_text().count("created the first admin") for log in logs]
    assert sorted(created) == [0, 1]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_migrate_waits_while_another_instance_holds_the_lock(
    tmp_path: Path, fresh_database: str
) -> None:
    from models.migrations import WAITING, startup_lock

    data = tmp_path / "data"
    env = server_env(data, PASSWORD, {"DATABASE_URL": fresh_database})
    url = fresh_database or f"sqlite+aiosqlite:///{data / 'inventory.db'}"
    with startup_lock(url):
        proc = subprocess.Popen(  # noqa: S603  (our own console script)
            [INVENTORY, "migrate"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stderr is not None
        line = proc.stderr.readline()  # blocks until migrate has met the lock
        assert line.rstrip().endswith(f"WARNING models.migrations {WAITING}")
        assert proc.poll() is None
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    assert out == "database is up to date\n"
