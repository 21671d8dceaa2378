"""How the served workers listen (api/listen.py): each on a socket of its own, and every
connection waiting accepted whenever the socket is ready."""

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from api.listen import Loop, listening_address
from tests.server import free_port, running_server, server_env

CONNECTIONS = 32


def _sockets(port: int, state: str) -> set[str]:
    """The sockets on local `port` in TCP `state` (0A listening, 01 established), from /proc."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == state and int(fields[1].split(":")[1], 16) == port:
            found.add(f"socket:[{fields[9]}]")
    return found


def _held(pid: str, sockets: set[str]) -> int:
    count = 0
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return 0  # the process ended meanwhile (or is not ours to read)
    for fd in fds:
        try:
            count += os.readlink(fd) in sockets
        except OSError:
            continue
    return count


def _pids() -> list[str]:
    return [p.name for p in Path("/proc").iterdir() if p.name.isdigit()]


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc")
def test_each_worker_listens_on_its_own_socket_and_a_burst_is_shared(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", "a long enough password", workers=2) as base:
        port = int(base.rsplit(":", 1)[1])
        deadline = time.monotonic() + 30  # the server answers once its first worker is up
        while len(listening := _sockets(port, "0A")) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        holders = [[pid for pid in _pids() if _held(pid, {sock})] for sock in listening]
        # A burst: every connection opened before any request is sent.
        burst = [socket.create_connection(("127.0.0.1", port)) for _ in range(CONNECTIONS)]
        try:
            for conn in burst:
                conn.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
            for conn in burst:
                assert conn.recv(65536).startswith(b"HTTP/1.1 200 ")
            established = _sockets(port, "01")
            held = sorted(_held(pid, established) for holder in holders for pid in holder)
        finally:
            for conn in burst:
                conn.close()
    # Two sockets, one per worker (uvicorn's workers would share one).
    assert len(listening) == 2
    assert [len(h) for h in holders] == [1, 1]
    assert sum(held) == CONNECTIONS
    # The kernel spreads new connections across the sockets: either worker below 4 of 32
    # happens about once in 50,000 bursts.
    assert min(held) >= 4, held


def test_serve_reports_a_port_in_use(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        done = subprocess.run(  # noqa: S603  (our own console script)
            [
                str(Path(sys.executable).with_name("inventory")),
                "serve",
                "--port",
                str(port),
                "--workers",
                "2",
            ],
            env=server_env(tmp_path, "a long enough password"),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


def test_a_busy_loop_accepts_every_waiting_connection_at_once() -> None:
    """Each turn of this loop is long (a callback blocks 20 ms, as a busy worker's many
    callbacks do); the 50 connections waiting are all taken within a few turns, not one per
    turn as libuv would take them."""
    loop = Loop()
    address = listening_address("127.0.0.1", 0)
    port = address.getsockname()[1]
    turns = 0
    made = 0
    all_made = asyncio.Event()

    class Counted(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            nonlocal made
            made += 1
            if made == 50:
                all_made.set()

    def busy_turn() -> None:
        nonlocal turns
        turns += 1
        time.sleep(0.02)
        loop.call_soon(busy_turn)

    async def scenario() -> int:
        server = await loop.create_server(Counted, sock=address, backlog=128)
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(50)]
        started = turns
        loop.call_soon(busy_turn)
        try:
            await asyncio.wait_for(all_made.wait(), timeout=10)
            return turns - started
        finally:
            for client in clients:
                client.close()
            server.close()
            await server.wait_closed()

    try:
        taken = loop.run_until_complete(scenario())
    finally:
        loop.close()
    assert taken <= 5, f"50 connections took {taken} turns of the loop"
