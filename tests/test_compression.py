"""gzip: JSON over 1 KiB compressed when accepted; small answers, images and files never."""

import gzip
import io

import pytest
from httpx import AsyncClient
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncSession

from api.compression import accepts_gzip
from models.enums import Role
from tests.conftest import app_client
from tests.factories import auth_headers, make_item, make_user

GZIP = {"Accept-Encoding": "gzip, deflate"}


async def _page(db: AsyncSession) -> None:
    for _ in range(20):
        await make_item(db, description="a description of some length " * 3)


async def test_a_large_json_page_is_gzipped_when_accepted(
    client: AsyncClient, db: AsyncSession
) -> None:
    await _page(db)
    plain = await client.get("/items", headers={"Accept-Encoding": "identity"})
    r = await client.get("/items", headers=GZIP)
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert r.headers["vary"] == "Accept-Encoding"
    assert int(r.headers["content-length"]) < len(plain.content) / 3
    assert r.json() == plain.json()  # httpx decoded it
    assert "content-encoding" not in plain.headers
    assert plain.headers["vary"] == "Accept-Encoding"


@pytest.mark.parametrize("accept", ["identity", "gzip;q=0", "br", ""])
async def test_not_gzipped_unless_accepted(
    client: AsyncClient, db: AsyncSession, accept: str
) -> None:
    await _page(db)
    r = await client.get("/items", headers={"Accept-Encoding": accept})
    assert r.status_code == 200
    assert "content-encoding" not in r.headers
    assert len(r.json()["items"]) == 20


async def test_small_answers_stay_plain(client: AsyncClient, db: AsyncSession) -> None:
    item = await make_item(db)
    r = await client.get(f"/items/{item.id}", headers=GZIP)
    assert r.status_code == 200
    assert "content-encoding" not in r.headers
    assert int(r.headers["content-length"]) < 1024


async def test_images_are_never_gzipped(client: AsyncClient, db: AsyncSession) -> None:
    headers = await auth_headers(db, await make_user(db, Role.editor))
    item = await make_item(db)
    noise = io.BytesIO()
    Image.effect_noise((128, 128), 60).convert("RGB").save(noise, "PNG")
    up = await client.patch(
        f"/item-image/{item.id}", files={"file": ("a.png", noise.getvalue())}, headers=headers
    )
    r = await client.get(up.json()["item"]["image_url"], headers=GZIP)
    assert r.status_code == 200
    assert len(r.content) > 4096
    assert "content-encoding" not in r.headers
    assert "vary" not in r.headers


async def test_streamed_files_are_never_gzipped(client: AsyncClient) -> None:
    r = await client.get("/docs-assets/swagger-ui-bundle.js", headers=GZIP)
    assert r.status_code == 200
    assert len(r.content) > 100_000
    assert "content-encoding" not in r.headers


async def test_gzip_level_0_turns_it_off(
    database_url: str, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _page(db)
    async with app_client(monkeypatch, GZIP_LEVEL="0") as c:
        r = await c.get("/items", headers=GZIP)
    assert r.status_code == 200
    assert "content-encoding" not in r.headers


def test_body_round_trips() -> None:
    from api.compression import gzip as compress

    body = b'{"items": []}' * 200
    assert gzip.decompress(compress(body, 6)) == body


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        (b"gzip", True),
        (b"deflate, gzip;q=0.5", True),
        (b"*", True),
        (b"GZIP", True),
        (b"gzip;q=0", False),
        (b"gzip; q=0.0", False),
        (b"identity", False),
        (b"gzipx", False),
    ],
)
def test_accept_encoding(value: bytes, accepted: bool) -> None:
    assert accepts_gzip([(b"accept-encoding", value)]) is accepted
