"""Idle and slow connections against a real server, with raw sockets (issue 14, point 6):
an unfinished request head and a stalled body are cut off, and a worker past its connection
cap answers 503 at once. Short timeouts come from the settings; every wait has a deadline."""

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server import running_server

DEADLINE = 20.0  # seconds a test waits for the server to act, far above the 1 s timeouts


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """One server for the tests that only need the short timeouts."""
    env = {"HEADER_TIMEOUT_SECONDS": "1", "BODY_TIMEOUT_SECONDS": "1"}
    folder = tmp_path_factory.mktemp("slow-clients") / "srv"
    with running_server(folder, "a long enough password", settings=env) as base:
        host, port = base.removeprefix("http://").split(":")
        yield host, int(port)


def closed_by_server(sock: socket.socket) -> bool:
    """Read until the server closes the connection (True) or the deadline passes (False)."""
    end = time.monotonic() + DEADLINE
    while (left := end - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if sock.recv(4096) == b"":
                return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
    return False


def test_a_connection_that_sends_nothing_is_closed(quick: tuple[str, int]) -> None:
    with socket.create_connection(quick) as sock:
        assert closed_by_server(sock)


def test_a_head_sent_a_byte_at_a_time_is_cut_off(quick: tuple[str, int]) -> None:
    with socket.create_connection(quick) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        assert closed_by_server(sock)


def test_a_stalled_body_is_cut_off(quick: tuple[str, int]) -> None:
    head = b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    with socket.create_connection(quick) as sock:
        sock.sendall(head + b"Content-Length: 100\r\n\r\nusername=")
        assert closed_by_server(sock)


def test_a_complete_request_is_still_served(quick: tuple[str, int]) -> None:
    with socket.create_connection(quick) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        sock.settimeout(DEADLINE)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert answer.endswith(b'{"status":"ok"}')


def _get_health(sock: socket.socket, close: bool = False) -> bytes:
    connection = b"close" if close else b"keep-alive"
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: " + connection + b"\r\n\r\n")
    sock.settimeout(DEADLINE)
    answer = b""
    while not answer.endswith(b'{"status":"ok"}') and not answer.startswith(b"HTTP/1.1 503"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    return answer


def test_past_the_connection_cap_a_new_connection_gets_503(tmp_path: Path) -> None:
    env = {"MAX_CONNECTIONS_PER_WORKER": "3", "HEADER_TIMEOUT_SECONDS": "60"}
    with running_server(tmp_path / "srv", "a long enough password", settings=env) as base:
        host, port = base.removeprefix("http://").split(":")
        held = [socket.create_connection((host, int(port))) for _ in range(3)]
        try:
            for sock in held:  # served, so counted; then held open by an unfinished head
                assert _get_health(sock).startswith(b"HTTP/1.1 200 OK")
                sock.sendall(b"GET /health HTTP/1.1\r\n")
            with socket.create_connection((host, int(port))) as extra:
                extra.settimeout(DEADLINE)
                answer = extra.recv(4096)
            assert answer.startswith(b"HTTP/1.1 503 Service Unavailable")
            assert answer.endswith(b'{"detail":"Too many connections; try again later"}')
            held.pop().close()
            # Once the server has seen that close, a new connection is served again.
            end = time.monotonic() + DEADLINE
            while time.monotonic() < end:
                with socket.create_connection((host, int(port))) as again:
                    if _get_health(again, close=True).startswith(b"HTTP/1.1 200 OK"):
                        break
            else:
                pytest.fail("no connection was served after one of the held ones closed")
        finally:
            for sock in held:
                sock.close()
