"""How a burst of new connections spreads over `inventory serve --workers 2` (api/listen.py):
each worker listens on a socket of its own, and the kernel hands each new connection to one of
them. Opens BURSTS bursts of CONNECTIONS connections and prints how many each worker held; it
asserts nothing (the tests only show that every connection is answered).

    .venv/bin/python bench/listen_spread.py [bursts]

Linux only: it reads /proc for the server's own worker processes.
"""

import os
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.server import served  # noqa: E402

CONNECTIONS = 32


def _established(port: int) -> set[str]:
    """The inodes of established TCP sockets on local `port`, from /proc/net/tcp."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "01" and int(fields[1].split(":")[1], 16) == port:
            found.add(f"socket:[{fields[9]}]")
    return found


def _held(pid: int, sockets: set[str]) -> int:
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            count += os.readlink(fd) in sockets
        except OSError:
            continue
    return count


def _workers(supervisor: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{supervisor}/task").iterdir():
        children += [int(p) for p in (task / "children").read_text().split()]
    # uvicorn's supervisor also starts a resource tracker; the workers are the spawned ones.
    return [p for p in children if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]


def main() -> None:
    bursts = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with (
        tempfile.TemporaryDirectory(prefix="spread-") as data_dir,
        served(Path(data_dir), "a long enough password", workers=2) as (base, server),
    ):
        port = int(base.rsplit(":", 1)[1])
        while len(workers := _workers(server.pid)) < 2:  # the second may still be starting
            time.sleep(0.1)
        print(f"workers {workers}; {bursts} bursts of {CONNECTIONS} connections")
        for _ in range(bursts):
            burst = [socket.create_connection(("127.0.0.1", port)) for _ in range(CONNECTIONS)]
            try:
                for conn in burst:
                    conn.sendall(b"GET /health HTTP/1.1\r\nHost: bench\r\n\r\n")
                for conn in burst:
                    conn.recv(65536)
                established = _established(port)
                print(sorted(_held(pid, established) for pid in workers))
            finally:
                for conn in burst:
                    conn.close()


if __name__ == "__main__":
    main()
