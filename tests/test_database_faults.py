"""A database that is down or stalled: 503 with Retry-After for every request that needs it,
one log line when it goes and one when it is back, /health 200 and /ready 503 meanwhile, and
recovery without a restart.

The outage is played by a TCP proxy the test controls (tests/tcp_proxy.py) in front of the
PostgreSQL test database; the shared server itself is never touched.
"""

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from httpx import AsyncClient, Response
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from models.enums import Role
from tests.conftest import POSTGRES_URL, app_client
from tests.factories import login_pair, make_item, make_user
from tests.tcp_proxy import TcpProxy

LOGGER = "models.availability"
# A hang detector, not a performance assertion: without timeouts these requests never end.
HANG = 30


@pytest.fixture
def fast_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "DB_CONNECT_TIMEOUT": "1",
        "DB_COMMAND_TIMEOUT": "1",
        "DB_POOL_TIMEOUT": "1",
        "DB_POOL_SIZE": "2",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound and never listened on: connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def proxy(database_url: str) -> Iterator[TcpProxy]:
    if not POSTGRES_URL:
        pytest.skip("needs TEST_DATABASE_URL (PostgreSQL)")
    url = make_url(POSTGRES_URL)
    tcp = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    yield tcp
    tcp.close()


@pytest.fixture
async def via_proxy(
    proxy: TcpProxy, fast_timeouts: None, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[AsyncClient]:
    url = make_url(POSTGRES_URL).set(port=proxy.port).render_as_string(hide_password=False)
    async with app_client(monkeypatch, DATABASE_URL=url) as client:
        yield client


def assert_unavailable(response: Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    assert response.json() == {"detail": "The database is unavailable; try again shortly"}


def availability_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == LOGGER]


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []


async def eventually_ok(client: AsyncClient, path: str) -> Response:
    """Poll until the database answers again (the first request after it is back may be
    the one that finds out)."""
    async with asyncio.timeout(HANG):
        while (r := await client.get(path)).status_code == 503:  # noqa: ASYNC110 (polling a server)
            await asyncio.sleep(0.1)
    return r


async def test_unreachable_database_answers_503(
    closed_port: int,
    fast_timeouts: None,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    url = f"postgresql://nobody@127.0.0.1:{closed_port}/nothing"
    async with app_client(monkeypatch, DATABASE_URL=url) as client:
        async with asyncio.timeout(HANG):
            responses = [
                await client.get("/items"),
                await client.get("/items/1"),
                await client.post("/token", data={"username": "a", "password": "b" * 8}),
                await client.get("/users/me", headers={"Authorization": "Bearer x.y.z"}),
            ]
            health, ready = await client.get("/health"), await client.get("/ready")
    for response in responses:
        assert_unavailable(response)
    assert (health.status_code, ready.status_code) == (200, 503)
    [(level, message)] = availability_lines(caplog)
    assert level == logging.ERROR
    assert message.startswith("database unreachable (ConnectionRefusedError")
    no_tracebacks(caplog)


@pytest.mark.parametrize(
    ("fault", "mend"),
    [(TcpProxy.stop, TcpProxy.start), (TcpProxy.stall, TcpProxy.resume)],
    ids=["down", "stalled"],
)
async def test_database_down_or_stalled_then_back(
    via_proxy: AsyncClient,
    proxy: TcpProxy,
    caplog: pytest.LogCaptureFixture,
    fault: Callable[[TcpProxy], None],
    mend: Callable[[TcpProxy], None],
) -> None:
    """Refused or silent, the database gives 503s, never a hang, and recovery on its own."""
    client = via_proxy
    caplog.set_level(logging.INFO)
    assert (await client.get("/items")).status_code == 200

    fault(proxy)
    async with asyncio.timeout(HANG):
        down = await asyncio.gather(*(client.get("/items") for _ in range(6)))
        health, ready = await client.get("/health"), await client.get("/ready")
    for response in down:
        assert_unavailable(response)
    assert (health.status_code, ready.status_code) == (200, 503)

    mend(proxy)
    assert (await eventually_ok(client, "/items")).status_code == 200
    assert (await client.get("/ready")).status_code == 200
    lines = availability_lines(caplog)
    assert [level for level, _ in lines] == [logging.ERROR, logging.WARNING]
    assert lines[0][1].startswith("database unreachable")
    assert lines[1][1].startswith("database reachable again after")
    no_tracebacks(caplog)


async def test_a_write_while_down_changes_nothing(
    db: AsyncSession, via_proxy: AsyncClient, proxy: TcpProxy
) -> None:
    # `db` comes first: it is a session on the database itself, not through the proxy.
    editor = await make_user(db, Role.editor, username="ed")
    item = await make_item(db, name="bolt", quantity=1)
    access, _ = await login_pair(db, editor)
    client = via_proxy
    proxy.stop()
    async with asyncio.timeout(HANG):
        patch = await client.patch(
            f"/items/{item.id}",
            json={"quantity": 2},
            headers={"Authorization": f"Bearer {access}"},
        )
    assert_unavailable(patch)
    await db.refresh(item)
    assert item.quantity == 1
