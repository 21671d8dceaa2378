"""GET /static: traversal attempts answer 404 and open nothing outside the upload folder.

httpx normalises URLs, so requests are built by hand: as raw ASGI scopes (the path decoded
the way uvicorn decodes it) and as raw bytes on a socket to a real uvicorn server.
"""

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Iterator, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import uvicorn
from fastapi import FastAPI

from tests import imagefiles as img
from tests.waiting import until

SECRET = "a" * 32 + ".png"  # a name of our pattern, placed OUTSIDE the upload folder
STORED = "b" * 32 + ".png"  # a genuine stored image

TARGETS = [
    f"/static/../{SECRET}",
    f"/static/..%2f{SECRET}",
    f"/static/..%2F{SECRET}",
    f"/static/%2e%2e%2f{SECRET}",
    f"/static/..%252f{SECRET}",
    f"/static/%252e%252e%252f{SECRET}",
    f"/static/..%25252f{SECRET}",
    f"/static/..%5c{SECRET}",
    f"/static/..%255c{SECRET}",
    f"/static/..\\{SECRET}",
    "/static/..%2f..%2finventory.db",
    "/static/..%252f..%252finventory.db",
    "/static/%2fetc%2fpasswd",
    "/static/%252fetc%252fpasswd",
    "/static//etc/passwd",
    "/static/%2e%2e",
    "/static/.",
    f"/static/{STORED}%00.png",
    f"/static/{STORED}%2500",
    f"/static/./{STORED[:-4]}%2e%2e",
    f"/static/{STORED.upper()}",
]


@pytest.fixture
def folders(data_dir: Path) -> Path:
    """The upload folder with one stored image; a secret image just outside it."""
    uploads = data_dir / "uploads"
    uploads.mkdir(exist_ok=True)  # the app makes the default folder at startup
    (uploads / STORED).write_bytes(img.png())
    (data_dir / SECRET).write_bytes(b"SECRET" + img.png())
    return uploads


_watching: list[tuple[str, list[str]]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _watching and isinstance(args[0], str | bytes | Path):
        _watching[-1][1].append(str(args[0]))


sys.addaudithook(_audit)


CODE = (Path(sys.prefix).resolve(), Path(__file__).resolve().parent.parent)


def outside(opened: list[str], folder: Path) -> list[str]:
    """Opened data files not inside `folder` (the program's own code does not count)."""
    paths = [Path(p).resolve() for p in opened]
    return [
        str(p)
        for p in paths
        if not p.is_relative_to(folder.resolve())
        and not (p.suffix in (".py", ".pyc") and any(p.is_relative_to(c) for c in CODE))
    ]


@contextlib.contextmanager
def opened_files() -> Iterator[list[str]]:
    """Paths Python opened meanwhile (audit hook 'open'), os.open and open() alike."""
    seen: list[str] = []
    _watching.append(("watch", seen))
    try:
        yield seen
    finally:
        _watching.pop()


def scope_for(target: str) -> dict[str, Any]:
    path, _, query = target.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": unquote(path),  # what uvicorn puts there
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }


async def asgi_get(app: FastAPI, target: str) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # like a server: nothing more until the client leaves
        raise AssertionError("unreachable")

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    await app(scope_for(target), receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body


async def test_control_the_stored_image_is_served(app: FastAPI, folders: Path) -> None:
    status, body = await asgi_get(app, f"/static/{STORED}")
    assert status == 200
    assert body == (folders / STORED).read_bytes()


@pytest.mark.parametrize("target", TARGETS)
async def test_traversal_over_asgi_is_404_and_opens_nothing_outside(
    app: FastAPI, folders: Path, target: str
) -> None:
    with opened_files() as opened:
        status, body = await asgi_get(app, target)
    assert status == 404, target
    assert b"SECRET" not in body
    assert outside(opened, folders) == []


# --- a real uvicorn server, raw bytes on the socket -------------------------------------


@pytest.fixture
async def server(app: FastAPI) -> AsyncIterator[int]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="error")
    srv = uvicorn.Server(config)
    task = asyncio.create_task(srv.serve())
    await until(lambda: srv.started or task.done(), 60)
    if task.done():
        task.result()  # it failed to start: its error
    yield srv.servers[0].sockets[0].getsockname()[1]
    srv.should_exit = True
    await task


async def raw_get(port: int, target: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def test_control_uvicorn_serves_the_stored_image(server: int, folders: Path) -> None:
    status, body = await raw_get(server, f"/static/{STORED}")
    assert status == 200
    assert body == (folders / STORED).read_bytes()


async def test_traversal_on_a_real_server_is_404(server: int, folders: Path) -> None:
    for target in TARGETS:
        with opened_files() as opened:
            status, body = await raw_get(server, target)
        assert status in (400, 404), target  # 400: uvicorn refuses a few raw bytes itself
        assert b"SECRET" not in body
        assert outside(opened, folders) == [], target
