"""Instances starting at once on one fresh database take turns at migrating and creating the
first admin (a file lock on SQLite, an advisory lock on PostgreSQL): both come up."""

import secrets
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.conftest import POSTGRES_URL, new_database
from tests.server import INVENTORY, server_env, start, stop, wait_until_up

PASSWORD = "a long enough password"


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file not yet made, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield ""  # DATABASE_URL empty: SQLite in DATA_DIR
        return
    if not POSTGRES_URL:
        pytest.skip("needs TEST_DATABASE_URL (PostgreSQL)")
    with new_database(POSTGRES_URL, f"race_{secrets.token_hex(4)}") as url:
        yield url


def test_two_instances_start_at_once_on_a_fresh_database(
    tmp_path: Path, fresh_database: str
) -> None:
    data = tmp_path / "data"
    env = server_env(data, PASSWORD, {"DATABASE_URL": fresh_database})
    logs = [tmp_path / f"serve-{n}.log" for n in (1, 2)]
    with ExitStack() as stack:
        procs = []
        for log in logs:  # both started before either is up
            proc = start(["serve", "--port", "0"], tmp_path, env, log)
            stack.callback(stop, proc)
            procs.append(proc)
        first, second = (wait_until_up(p, log, 90) for p, log in zip(procs, logs, strict=True))
        # Both serve the one database: a login made through one works through the other.
        token = httpx.post(
            f"{first}/token", data={"username": "admin", "password": PASSWORD}
        ).json()["access_token"]
        me = httpx.get(f"{second}/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
        assert me.json()["user"]["username"] == "admin"
    created = [log.read_text().count("created the first admin") for log in logs]
    assert sorted(created) == [0, 1]


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
