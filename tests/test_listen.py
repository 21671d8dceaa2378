"""How the served workers listen (api/listen.py): each on a socket of its own, and every
connection waiting accepted whenever the socket is ready."""

import asyncio
import pickle
import socket
import subprocess
import time
from multiprocessing.reduction import ForkingPickler
from pathlib import Path

import pytest

from api.listen import Loop, listening_address
from tests.server import INVENTORY, running_server, server_env

CONNECTIONS = 32
PASSWORD = "a long enough password"


def test_each_worker_gets_a_listening_socket_of_its_own() -> None:
    """uvicorn's supervisor hands its sockets to each worker by pickling them (multiprocessing's
    ForkingPickler, which would share one socket for a plain socket.socket): the address
    unpickles as a new socket bound to the same port (SO_REUSEPORT), and the supervisor's own
    never listens, so the kernel spreads connections over the workers' sockets
    (bench/listen_spread.py shows how evenly)."""
    address = listening_address("127.0.0.1", 0)
    workers = [pickle.loads(ForkingPickler.dumps(address)) for _ in range(2)]  # noqa: S301
    try:
        assert len({address.fileno(), *(w.fileno() for w in workers)}) == 3
        for sock in (address, *workers):
            assert sock.getsockname() == address.getsockname()
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
        for worker in workers:
            worker.listen()
        assert address.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 0
        assert all(w.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) for w in workers)
    finally:
        for sock in (address, *workers):
            sock.close()


def test_two_workers_answer_a_burst_of_connections(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", PASSWORD, workers=2) as base:
        port = int(base.rsplit(":", 1)[1])
        # A burst: every connection opened before any request is sent.
        burst = [socket.create_connection(("127.0.0.1", port)) for _ in range(CONNECTIONS)]
        try:
            for conn in burst:
                conn.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
            answers = [conn.recv(65536) for conn in burst]
        finally:
            for conn in burst:
                conn.close()
    assert [a.split(b"\r\n", 1)[0] for a in answers] == [b"HTTP/1.1 200 OK"] * CONNECTIONS


def test_serve_reports_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(  # noqa: S603  (our own console script)
            [
                INVENTORY,
                "serve",
                "--port",
                str(port),
                "--workers",
                "2",
            ],
            env=server_env(tmp_path, PASSWORD),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


@pytest.mark.perf
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
