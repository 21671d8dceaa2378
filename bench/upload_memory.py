"""Peak memory of the real server while it receives uploads at and over MAX_UPLOAD_BYTES.

Starts `inventory serve` (uvicorn, SQLite in a temporary folder) on 127.0.0.1:8220, logs in
as the first admin, then sends each case a few times over a raw socket. Before each request
the server's peak-RSS counter is reset (`/proc/<pid>/clear_refs` ← 5), after it VmHWM is
the highest resident size the process reached while handling it.

    .venv/bin/python bench/upload_memory.py [--port 8220] [--repeat 3]
"""

import argparse
import io
import json
import os
import random
import select
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PIL import Image

LIMIT = 5 * 1024 * 1024  # MAX_UPLOAD_BYTES's default
BOUNDARY = "bench-boundary"
PASSWORD = "bench-password-123"
MIB = 1024 * 1024


def kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def jpeg_at_the_limit() -> tuple[bytes, int]:
    """A real photo-like JPEG (noise compresses badly), padded after EOI to exactly LIMIT."""
    rnd = random.Random(7)
    side = 1400
    noise = Image.frombytes("RGB", (side, side), rnd.randbytes(side * side * 3))
    out = io.BytesIO()
    noise.save(out, "JPEG", quality=85)
    data = out.getvalue()
    assert len(data) <= LIMIT, len(data)
    return data + b"\0" * (LIMIT - len(data)), side * side


def multipart(content: bytes) -> tuple[bytes, bytes]:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="x.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    return head, b"\r\n--" + BOUNDARY.encode() + b"--\r\n"


def send(port: int, head: bytes, chunks: Iterator[bytes]) -> int:
    """Send a request; stop sending as soon as the server answers. Returns the status."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(head)
        for chunk in chunks:
            if select.select([s], [], [], 0)[0]:
                break  # answered early (413): the rest is never read
            try:
                s.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        s.settimeout(60)
        response = b""
        while b"\r\n" not in response:
            part = s.recv(4096)
            if not part:
                break
            response += part
    return int(response.split(b" ", 2)[1])


def pieces(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def upload_request(
    item_id: int, token: str, content: bytes, mode: str
) -> tuple[bytes, Iterator[bytes]]:
    """mode: 'length' (true Content-Length) or 'chunked' (none at all)."""
    head, tail = multipart(content)
    lines = [
        f"PATCH /item-image/{item_id} HTTP/1.1",
        "Host: 127.0.0.1",
        f"Authorization: Bearer {token}",
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
        "Connection: close",
    ]
    body = head + content + tail
    if mode == "length":
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode(), pieces(body)
    lines.append("Transfer-Encoding: chunked")
    framed = (f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), iter([*framed, b"0\r\n\r\n"])


def call(port: int, method: str, path: str, data: bytes, headers: dict[str, str]) -> Any:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data, headers, method=method)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def start_server(port: int, data_dir: str) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "DATA_DIR": data_dir,
        "DATABASE_URL": "",
        "ENVIRONMENT": "development",
        "FIRST_ADMIN_USERNAME": "admin",
        "FIRST_ADMIN_PASSWORD": PASSWORD,
        "LOG_LEVEL": "WARNING",
    }
    exe = Path(sys.executable).parent / "inventory"
    proc = subprocess.Popen(
        [str(exe), "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL
    )
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not start")


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--port", type=int, default=8220)
    args.add_argument("--repeat", type=int, default=3)
    opts = args.parse_args()
    port = opts.port

    jpeg, pixels = jpeg_at_the_limit()
    junk = random.Random(1).randbytes(LIMIT)
    # (name, content, framing, uploads at once)
    cases = [
        ("junk at the limit (415)", junk, "length", 1),
        ("1 byte over, Content-Length (413)", junk + b"x", "length", 1),
        ("1 byte over, chunked (413)", junk + b"x", "chunked", 1),
        ("10x the limit, Content-Length (413)", junk * 10, "length", 1),
        ("10x the limit, chunked (413)", junk * 10, "chunked", 1),
        ("4 at once: 10x the limit, chunked (413)", junk * 10, "chunked", 4),
        ("JPEG at the limit (200)", jpeg, "length", 1),
        ("4 at once: JPEG at the limit (200)", jpeg, "length", 4),
    ]

    with tempfile.TemporaryDirectory(prefix="bench-upload-") as data_dir:
        server = start_server(port, data_dir)
        try:
            form = urllib.parse.urlencode({"username": "admin", "password": PASSWORD}).encode()
            token = call(port, "POST", "/token", form, {})["access_token"]
            auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            item_id = call(port, "POST", "/items", b'{"name": "bench", "quantity": 1}', auth)[
                "item"
            ]["id"]
            time.sleep(0.5)
            idle = kib(server.pid, "VmRSS")
            print(f"server pid {server.pid}, idle RSS {idle / 1024:.1f} MiB, limit {LIMIT} bytes")
            print(
                f"(the JPEG is {pixels / 1e6:.2f} megapixels: decoding it takes its own memory)\n"
            )
            print(
                f"{'case':44} {'bytes':>10} {'status':>9} {'RSS before':>11} {'peak RSS':>9}"
                f" {'delta MiB':>9}"
            )
            for name, content, mode, parallel in cases:
                for _ in range(opts.repeat):
                    time.sleep(0.2)
                    reset_peak(server.pid)
                    before = kib(server.pid, "VmRSS")
                    with ThreadPoolExecutor(parallel) as pool:
                        statuses = list(
                            pool.map(
                                lambda _, c=content, m=mode: send(
                                    port, *upload_request(item_id, token, c, m)
                                ),
                                range(parallel),
                            )
                        )
                    time.sleep(0.2)  # let the server finish cleaning up
                    peak = kib(server.pid, "VmHWM")
                    shown = ",".join(sorted(set(map(str, statuses))))
                    print(
                        f"{name:44} {len(content):>10} {shown:>9} {before / 1024:>9.1f}Mi"
                        f" {peak / 1024:>7.1f}Mi {(peak - before) / 1024:>9.1f}"
                    )
            left = sorted(p.name for p in (Path(data_dir) / "uploads").iterdir())
            print(f"\nfiles left in the upload folder: {len(left)} (the item's one image)")
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
