"""The real server in a subprocess (`inventory serve --port 0`), for tests that need one."""

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

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
    inventory = Path(sys.executable).with_name("inventory")
    log = data_dir / "server.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603  (our own console script)
            [str(inventory), "serve", "--port", "0", "--workers", str(workers)],
            cwd=data_dir,
            env=server_env(data_dir, admin_password, settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield _wait_until_up(proc, log), proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until_up(proc: subprocess.Popen[bytes], log: Path, seconds: float = 60) -> str:
    deadline = time.monotonic() + seconds
    base = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()}")
        if base is None and (found := SERVING.search(log.read_bytes())):
            base = found[1].decode()
        if base is not None:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    return base
            except httpx.TransportError:
                pass
        time.sleep(0.1)
    raise RuntimeError(f"server did not answer within {seconds:.0f} s:\n{log.read_text()}")
