"""The real server in a subprocess (`inventory serve`), for tests that need one."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

# The loopback ports tests that run a real server may use (TEST_PORTS=first-last to change).
PORTS = os.environ.get("TEST_PORTS", "8260-8279")


def free_port() -> int:
    first, last = (int(p) for p in PORTS.split("-"))
    for port in range(first, last + 1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS}")


def server_env(data_dir: Path, admin_password: str) -> dict[str, str]:
    """`inventory serve`'s environment for a fresh SQLite database in `data_dir`."""
    return {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": "",
        "ENVIRONMENT": "development",
        "FIRST_ADMIN_USERNAME": "admin",
        "FIRST_ADMIN_PASSWORD": admin_password,
    }


@contextmanager
def running_server(
    data_dir: Path, admin_password: str, workers: int = 1, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Serve a fresh SQLite database in `data_dir` (unless `env` says otherwise); yields the
    base URL."""
    port = free_port()
    env = {**server_env(data_dir, admin_password), **(env or {})}
    inventory = Path(sys.executable).with_name("inventory")
    log = data_dir / "server.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603  (our own console script)
            [str(inventory), "serve", "--port", str(port), "--workers", str(workers)],
            cwd=data_dir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, proc, log)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until_up(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server did not answer within 60 s:\n{log.read_text()}")
