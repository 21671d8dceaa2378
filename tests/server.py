"""The real server in a subprocess (`inventory serve --port 0`), for tests that need one."""

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import httpx

from tests.waiting import polled

T = TypeVar("T")
INVENTORY = str(Path(sys.executable).with_name("inventory"))
SERVING = re.compile(rb"serving on (http://\S+?), workers")


def server_env(
    data_dir: Path, admin_password: str, settings: Mapping[str, str] | None = None
) -> dict[str, str]:
    """`inventory serve`'s environment for a fresh SQLite database in `data_dir`, plus any
    other `settings`."""
    return {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": "",
        "ENVIRONMENT": "development",
        "FIRST_ADMIN_USERNAME": "admin",
        "FIRST_ADMIN_PASSWORD": admin_password,
        **(settings or {}),
    }


@contextmanager
def running_server(
    data_dir: Path,
    admin_password: str,
    workers: int = 1,
    settings: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Serve a fresh SQLite database in `data_dir` on a port the system picks; yields the base
    URL, read from the server's own "serving on" line."""
    with served(data_dir, admin_password, workers, settings) as (base, _proc):
        yield base


@contextmanager
def served(
    data_dir: Path,
    admin_password: str,
    workers: int = 1,
    settings: Mapping[str, str] | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`running_server`, yielding the server's process too."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "server.log"
    proc = start(
        ["serve", "--port", "0", "--workers", str(workers)],
        data_dir,
        server_env(data_dir, admin_password, settings),
        log,
    )
    try:
        yield wait_until_up(proc, log), proc
    finally:
        stop(proc)


def start(
    args: Sequence[str], cwd: Path, env: Mapping[str, str], log: Path
) -> subprocess.Popen[bytes]:
    """`inventory ARGS…` in the background, its output in `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(  # noqa: S603  (our own console script)
            [INVENTORY, *args], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def stop(proc: subprocess.Popen[bytes], seconds: float = 30) -> int:
    """SIGTERM, and SIGKILL if it has not ended after `seconds`; its exit status."""
    proc.terminate()
    try:
        return proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def wait_for(
    ready: Callable[[], T], proc: subprocess.Popen[bytes], log: Path, seconds: float = 60
) -> T:
    """Poll `ready()` until it returns something true, and return that; fail with the log
    when `proc` ends first or `seconds` pass."""

    def check() -> T:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}:\n{log.read_text()}")
        return ready()

    try:
        return polled(check, seconds)
    except AssertionError:
        raise RuntimeError(f"not ready within {seconds:.0f} s:\n{log.read_text()}") from None


def healthy(client: httpx.Client) -> bool:
    try:
        return client.get("/health").status_code == 200
    except httpx.TransportError:
        return False


def wait_until_up(proc: subprocess.Popen[bytes], log: Path, seconds: float = 60) -> str:
    """The base URL of the server `proc` once it answers /health, read from its "serving on"
    line in `log`."""

    def serving() -> str:
        found = SERVING.search(log.read_bytes())
        return found[1].decode() if found else ""

    base = wait_for(serving, proc, log, seconds)
    with httpx.Client(base_url=base, timeout=1) as client:
        wait_for(lambda: healthy(client), proc, log, seconds)
    return base
