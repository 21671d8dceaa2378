"""Several instances behind nginx (deploy/nginx-inventory.conf), one PostgreSQL database,
Redis and one upload folder: what a client sees through nginx is one service.

One stack serves the whole module (starting it takes a while); the last test stops an
instance, so it stays last.
"""

import asyncio
import io
import signal
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.deploy.stack import ADMIN_PASSWORD, Stack, requirements, running_stack

pytestmark = pytest.mark.deploy


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    pg_server, redis_url = requirements()
    with running_stack(tmp_path_factory.mktemp("stack"), pg_server, redis_url) as running:
        yield running


@pytest.fixture(scope="module")
def token(stack: Stack) -> str:
    with stack.instances[0].client() as a:
        r = a.post("/token", data={"username": "admin", "password": ADMIN_PASSWORD})
    assert r.status_code == 200
    return str(r.json()["access_token"])


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _rows(stack: Stack, sql: str) -> list[tuple[object, ...]]:
    async def run() -> list[tuple[object, ...]]:
        engine = create_async_engine(stack.database_url)
        try:
            async with engine.connect() as conn:
                return [tuple(r) for r in await conn.execute(text(sql))]
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _upstreams(stack: Stack, lines: list[str]) -> set[str]:
    return {line.rsplit(" ", 1)[1] for line in lines}


def test_a_token_from_one_instance_works_on_the_other(stack: Stack, token: str) -> None:
    a, b = stack.instances
    with b.client() as direct:
        assert direct.get("/users/me", headers=_bearer(token)).status_code == 200
    seen = len(stack.nginx.access_log())
    with httpx.Client(base_url=stack.nginx.base_url, timeout=30) as client:
        statuses = [client.get("/users/me", headers=_bearer(token)).status_code for _ in range(4)]
    assert statuses == [200] * 4
    served_by = _upstreams(stack, stack.nginx.access_log()[seen:])
    assert served_by == {f"unix:{a.socket}", f"unix:{b.socket}"}


def test_the_throttle_counts_across_instances_by_the_address_nginx_forwards(
    stack: Stack,
) -> None:
    """LOGIN_FAILURES_PER_ADDRESS=3 (the others off): the fourth failure from one client
    address is refused, wherever the three before it landed; another address is not."""

    def attempt(address: str, **headers: str) -> int:
        transport = httpx.HTTPTransport(local_address=address)
        with httpx.Client(transport=transport, base_url=stack.nginx.base_url) as client:
            form = {"username": "admin", "password": "not the password"}
            return client.post("/token", data=form, headers=headers).status_code

    seen = len(stack.nginx.access_log())
    assert [attempt("127.0.0.2") for _ in range(3)] == [401, 401, 401]
    failures = stack.nginx.access_log()[seen:]
    assert len(_upstreams(stack, failures)) == 2, failures  # both instances counted
    assert attempt("127.0.0.2") == 429
    assert attempt("127.0.0.2", **{"X-Forwarded-For": "198.51.100.1"}) == 429  # no escape
    assert attempt("127.0.0.3") == 401  # another client: counted apart


def test_an_image_uploaded_through_one_is_served_by_the_other(stack: Stack, token: str) -> None:
    a, b = stack.instances
    picture = io.BytesIO()
    Image.effect_noise((64, 64), 40).convert("RGB").save(picture, "PNG")
    with a.client() as client:
        item = client.post(
            "/items", json={"name": "Pictured", "quantity": 1}, headers=_bearer(token)
        )
        item_id = item.json()["item"]["id"]
        up = client.patch(
            f"/item-image/{item_id}",
            files={"file": ("p.png", picture.getvalue())},
            headers=_bearer(token),
        )
    assert up.status_code == 200
    url = up.json()["item"]["image_url"]
    with b.client() as other:
        served = other.get(url)
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    with httpx.Client(base_url=stack.nginx.base_url) as client:
        via_nginx = client.get(url, headers={"Accept-Encoding": "gzip"})
        head = client.head(url)
    assert via_nginx.content == served.content
    assert "content-encoding" not in via_nginx.headers
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(served.content))


def test_200_concurrent_creates_all_persist_with_distinct_ids(stack: Stack, token: str) -> None:
    async def create_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(
            base_url=stack.nginx.base_url, limits=limits, timeout=120
        ) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        "/items",
                        json={"name": f"concurrent {n}", "quantity": n},
                        headers=_bearer(token),
                    )
                    for n in range(200)
                )
            )

    responses = asyncio.run(create_all())
    assert Counter(r.status_code for r in responses) == {201: 200}
    ids = {r.json()["item"]["id"] for r in responses}
    assert len(ids) == 200
    stored = _rows(stack, "SELECT id, name FROM items WHERE name LIKE 'concurrent %'")
    assert {row[0] for row in stored} == ids
    assert len(stored) == 200


def test_a_large_page_is_compressed_through_nginx(stack: Stack) -> None:
    with httpx.Client(base_url=stack.nginx.base_url) as client:
        r = client.get("/items?limit=100", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert len(r.json()["items"]) == 100


def test_stopping_an_instance_loses_no_acknowledged_request(stack: Stack, token: str) -> None:
    """A steady load of creates and reads; instance b stops (SIGTERM) in the middle of it.
    Every create answered 201 is stored, none is stored twice (nginx never resends a POST),
    and every read is answered (nginx resends those to the other instance)."""
    a, b = stack.instances
    answers: list[tuple[str, int, str]] = []  # (method, status, name or path)
    before_stop, after_stop = 60, 120

    async def load() -> None:
        enough = asyncio.Event()  # before_stop answers: stop b
        stopped = asyncio.Event()
        done = asyncio.Event()  # after_stop answers since b stopped
        stopped_at = 0

        def record(entry: tuple[str, int, str]) -> None:
            answers.append(entry)
            if len(answers) >= before_stop:
                enough.set()
            if stopped.is_set() and len(answers) - stopped_at >= after_stop:
                done.set()

        async def worker(client: httpx.AsyncClient, w: int) -> None:
            n = 0
            while not done.is_set():
                n += 1
                name = f"steady {w}-{n}"
                r = await client.post(
                    "/items", json={"name": name, "quantity": 1}, headers=_bearer(token)
                )
                record(("POST", r.status_code, name))
                if r.status_code == 201:
                    path = f"/items/{r.json()['item']['id']}"
                    record(("GET", (await client.get(path)).status_code, path))

        async def stop_b() -> None:
            nonlocal stopped_at
            await enough.wait()
            await asyncio.to_thread(b.stop)
            stopped_at = len(answers)
            stopped.set()

        async with httpx.AsyncClient(base_url=stack.nginx.base_url, timeout=60) as client:
            await asyncio.gather(stop_b(), *(worker(client, w) for w in range(8)))

    asyncio.run(load())
    # uvicorn finishes its requests, then re-raises the SIGTERM it caught.
    assert b.proc.returncode in (0, -signal.SIGTERM)
    assert "Finished server process" in b.log.read_text()
    created = {name for method, status, name in answers if method == "POST" and status == 201}
    statuses = Counter((method, status) for method, status, _ in answers)
    # A POST nginx could not deliver is answered 502 and was not applied; nothing else.
    assert set(statuses) <= {("POST", 201), ("POST", 502), ("GET", 200)}, statuses
    stored = Counter(
        str(row[0]) for row in _rows(stack, "SELECT name FROM items WHERE name LIKE 'steady %'")
    )
    assert created <= set(stored)
    assert max(stored.values()) == 1
    failed = {name for method, status, name in answers if method == "POST" and status != 201}
    assert not failed & set(stored), "a POST answered 502 was applied"
    print(f"steady load: {dict(statuses)}")
    assert a.proc.poll() is None
