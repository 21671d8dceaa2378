"""`inventory serve --uds PATH`: a unix socket for a proxy on the same host."""

import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.server import INVENTORY, healthy, server_env, start, stop, wait_for

PASSWORD = "a long enough password"


@contextmanager
def serving(folder: Path, sock: Path, **env: str) -> Iterator[httpx.Client]:
    log = folder / "server.log"
    proc = start(
        ["serve", "--uds", str(sock)], folder, {**server_env(folder / "data", PASSWORD), **env}, log
    )
    client = httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), base_url="http://inv")
    try:
        wait_for(lambda: healthy(client), proc, log)
        yield client
    finally:
        client.close()
        stop(proc)


def test_serves_on_a_unix_socket_and_believes_a_trusted_proxy_there(tmp_path: Path) -> None:
    sock = tmp_path / "inventory.sock"
    # A socket file left behind by a killed server is replaced.
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(str(sock))
    with serving(tmp_path, sock, TRUSTED_PROXIES="unix") as client:
        r = client.post(
            "/token",
            data={"username": "nobody", "password": "wrong password"},
            headers={"X-Forwarded-For": "203.0.113.77"},
        )
        assert r.status_code == 401
        assert client.head("/items").status_code == 200
    log = (tmp_path / "server.log").read_text()
    assert f"serving on unix:{sock}" in log
    assert '"address": "203.0.113.77"' in log


def test_a_socket_in_use_is_refused(tmp_path: Path) -> None:
    sock = tmp_path / "inventory.sock"
    with socket.socket(socket.AF_UNIX) as taken:
        taken.bind(str(sock))
        taken.listen()
        done = subprocess.run(  # noqa: S603
            [INVENTORY, "serve", "--uds", str(sock)],
            env=server_env(tmp_path / "data", PASSWORD),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert f"cannot listen on {sock}" in done.stderr
    assert "another server listens there" in done.stderr
