"""Item images: uploads judged by their bytes, hostile uploads refused without a trace, serving."""

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient
from PIL import Image
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.storage import NAME_PATTERN
from models.enums import Role
from models.item import Item
from tests import imagefiles as img
from tests.conftest import clear_settings
from tests.factories import auth_headers, make_item, make_user

LIMIT = 5 * 1024 * 1024  # the default MAX_UPLOAD_BYTES
ACCEPTED = "JPEG, PNG, GIF or WebP"


@pytest.fixture(autouse=True)
def _cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A relative path written by mistake would land here, inside the snapshot.
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")


@pytest.fixture
def uploads(data_dir: Path) -> Path:
    return data_dir / "uploads"


@pytest.fixture
async def editor(db: AsyncSession) -> dict[str, str]:
    return await auth_headers(db, await make_user(db, Role.editor))


@pytest.fixture
async def item(db: AsyncSession) -> Item:
    return await make_item(db)


async def row(db: AsyncSession, item_id: int) -> tuple[str | None, int] | None:
    result = await db.execute(select(Item.image_src, Item.version).where(Item.id == item_id))
    found = result.one_or_none()
    await db.commit()  # end the read: the next one must see what requests wrote meanwhile
    return None if found is None else (found[0], found[1])


@asynccontextmanager
async def nothing_stored(db: AsyncSession, item: Item, tmp_path: Path) -> AsyncIterator[None]:
    """Around a refused upload: no file anywhere under the test's folder, the item unchanged."""
    before = img.snapshot(tmp_path)
    yield
    assert img.snapshot(tmp_path) == before
    assert await row(db, item.id) == (None, item.version)


async def upload(
    client: AsyncClient, item_id: int, headers: dict[str, str], content: bytes, **part: bytes
) -> tuple[int, Any]:
    body, content_type = img.multipart(content, **part)
    r = await client.patch(f"/item-image/{item_id}", content=body, headers=headers | content_type)
    return r.status_code, r.json()


# --- accepted images ---------------------------------------------------------------------


async def test_jpeg_is_stored_without_exif_or_gps(
    client: AsyncClient, db: AsyncSession, editor: dict[str, str], item: Item, uploads: Path
) -> None:
    status, body = await upload(client, item.id, editor, img.jpeg_with_gps((64, 48)))
    assert status == 200, body
    stored = body["item"]
    name = stored["image_src"]
    assert NAME_PATTERN.fullmatch(name)
    assert name.endswith(".jpg")
    assert stored["image_url"] == f"/static/{name}"
    assert await row(db, item.id) == (name, item.version + 1)
    data = (uploads / name).read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "JPEG"
        assert not im.getexif()
        assert "exif" not in im.info
        assert "comment" not in im.info
        assert im.size == (48, 64)  # the orientation was applied before the EXIF went
    assert b"Exif" not in data
    assert b"PhoneMaker" not in data
    assert b"PhoneComment" not in data


@pytest.mark.parametrize(
    ("make", "fmt", "extension"),
    [(img.png, "PNG", "png"), (img.gif, "GIF", "gif"), (img.webp, "WEBP", "webp")],
)
async def test_png_gif_webp_are_stored_without_metadata(
    client: AsyncClient,
    db: AsyncSession,
    editor: dict[str, str],
    item: Item,
    uploads: Path,
    make: object,
    fmt: str,
    extension: str,
) -> None:
    assert callable(make)
    status, body = await upload(client, item.id, editor, make(), content_type=b"image/x-anything")
    assert status == 200, body
    name = body["item"]["image_src"]
    assert name.endswith(f".{extension}")
    assert await row(db, item.id) == (name, item.version + 1)
    data = (uploads / name).read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == fmt
        assert not im.getexif()
        assert not {"exif", "comment", "Author", "xmp"} & set(im.info)
    assert b"PhoneMaker" not in data
    assert b"PhoneComment" not in data


async def test_animated_gif_keeps_its_frames(
    client: AsyncClient, editor: dict[str, str], item: Item, uploads: Path
) -> None:
    status, body = await upload(client, item.id, editor, img.gif(frames=3))
    assert status == 200, body
    with Image.open(uploads / body["item"]["image_src"]) as im:
        assert getattr(im, "n_frames", 1) == 3


async def test_polyglot_tail_is_not_stored(
    client: AsyncClient, editor: dict[str, str], item: Item, uploads: Path
) -> None:
    """A PNG with HTML after its end, padded to exactly the limit: accepted, tail dropped."""
    head = img.png() + b"<html><script>alert(1)</script>"
    status, body = await upload(client, item.id, editor, head + b" " * (LIMIT - len(head)))
    assert status == 200, body
    data = (uploads / body["item"]["image_src"]).read_bytes()
    assert b"<script>" not in data
    assert len(data) < 10_000


async def test_replacing_removes_the_old_file(
    client: AsyncClient, db: AsyncSession, editor: dict[str, str], item: Item, uploads: Path
) -> None:
    _, first = await upload(client, item.id, editor, img.png())
    _, second = await upload(client, item.id, editor, img.webp())
    old, new = first["item"]["image_src"], second["item"]["image_src"]
    assert old != new
    assert img.names(uploads) == [new]
    assert await row(db, item.id) == (new, item.version + 2)


HOSTILE_NAMES = [
    b"../../x.png",
    b"..%2f..%2fx",
    b"..%252f..%252fx.png",
    b"/etc/passwd",
    b"/tmp/x.png",
    b"C:\\x\\..\\y.png",
    b"..\\..\\x.png",
    b"a\x00b.png",
    b"\x00",
    b"n" * 1000 + b".png",
]


@pytest.mark.parametrize("filename", HOSTILE_NAMES)
async def test_client_file_name_never_reaches_the_disk(
    client: AsyncClient,
    db: AsyncSession,
    editor: dict[str, str],
    item: Item,
    tmp_path: Path,
    filename: bytes,
) -> None:
    before = img.snapshot(tmp_path)
    status, body = await upload(client, item.id, editor, img.png(), filename=filename)
    assert status == 200, body
    name = body["item"]["image_src"]
    assert NAME_PATTERN.fullmatch(name)
    # Exactly one new file anywhere under the test's folder: the server-named one.
    assert set(img.snapshot(tmp_path)) - set(before) == {f"data/uploads/{name}"}
    assert await row(db, item.id) == (name, item.version + 1)


async def test_file_name_over_the_header_limit_is_400(
    client: AsyncClient, db: AsyncSession, editor: dict[str, str], item: Item, tmp_path: Path
) -> None:
    """python-multipart refuses a part header line over 4 KiB: broken framing, changes nothing."""
    async with nothing_stored(db, item, tmp_path):
        status, body = await upload(client, item.id, editor, img.png(), filename=b"n" * 5000)
        assert status == 400
        assert body == {"detail": "Invalid multipart data"}


# --- refused uploads: a 4xx, and nothing changes -----------------------------------------


def _truncated_jpeg() -> bytes:
    data = img.jpeg_with_gps((400, 300))
    return data[: len(data) // 2]


HOSTILE = {
    "text named .png": (b"just some text\n", b"notes.png", b"image/png"),
    "html as image/png": (b"<html><script>alert(1)</script></html>", b"x.png", b"image/png"),
    "svg": (
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        b"x.svg",
        b"image/svg+xml",
    ),
    "truncated jpeg": (_truncated_jpeg(), b"x.jpg", b"image/jpeg"),
    "decompression bomb": (img.bomb(), b"bomb.png", b"image/png"),
    "bomb past Pillow's limit": (img.png_header(20_000, 20_000), b"b.png", b"image/png"),
    "empty file": (b"", b"empty.png", b"image/png"),
    "bmp (not accepted)": (b"BM" + b"\x00" * 60, b"x.bmp", b"image/bmp"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
async def test_not_an_accepted_image_is_415_and_changes_nothing(
    client: AsyncClient,
    db: AsyncSession,
    editor: dict[str, str],
    item: Item,
    tmp_path: Path,
    case: str,
) -> None:
    content, filename, content_type = HOSTILE[case]
    async with nothing_stored(db, item, tmp_path):
        status, body = await upload(
            client, item.id, editor, content, filename=filename, content_type=content_type
        )
        assert status == 415, body
        assert ACCEPTED in str(body["detail"])
        assert ("Image too large" in str(body["detail"])) == ("bomb" in case)


@pytest.mark.parametrize(
    ("content", "pixels"),
    [(img.png(), "32 x 32 = 1024"), (img.gif(frames=3), "20 x 20 x 3 frames = 1200")],
)
async def test_pixel_cap_counts_every_frame(
    client: AsyncClient,
    db: AsyncSession,
    editor: dict[str, str],
    item: Item,
    monkeypatch: pytest.MonkeyPatch,
    content: bytes,
    pixels: str,
) -> None:
    monkeypatch.setenv("MAX_IMAGE_PIXELS", "1000")
    clear_settings()
    status, body = await upload(client, item.id, editor, content)
    assert status == 415, pixels
    assert "at most 1000 pixels" in str(body["detail"])
    assert await row(db, item.id) == (None, item.version)


async def test_one_byte_over_the_limit_is_413(
    client: AsyncClient, db: AsyncSession, editor: dict[str, str], item: Item, tmp_path: Path
) -> None:
    async with nothing_stored(db, item, tmp_path):
        content = img.png()
        status, body = await upload(
            client, item.id, editor, content + b"\0" * (LIMIT + 1 - len(content))
        )
        assert status == 413, body
        assert str(LIMIT) in str(body["detail"])


async def test_body_without_content_length_is_cut_off_at_the_limit(
    client: AsyncClient, db: AsyncSession, editor: dict[str, str], item: Item, tmp_path: Path
) -> None:
    body, content_type = img.multipart(b"\0" * (LIMIT * 4))
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for start in range(0, len(body), 64 * 1024):
            sent += 1
            yield body[start : start + 64 * 1024]

    async with nothing_stored(db, item, tmp_path):
        r = await client.patch(
            f"/item-image/{item.id}", content=chunks(), headers=editor | content_type
        )
        assert r.status_code == 413
        assert "content-length" not in r.request.headers
        assert sent < len(body) // (64 * 1024) / 2  # reading stopped near the limit


async def test_lying_content_length_is_cut_off_at_the_limit(
    client: AsyncClient, db: AsyncSession, editor: dict[str, str], item: Item, tmp_path: Path
) -> None:
    body, content_type = img.multipart(b"\0" * (LIMIT + 1))
    async with nothing_stored(db, item, tmp_path):
        headers = editor | content_type | {"Content-Length": "1000"}
        r = await client.patch(f"/item-image/{item.id}", content=body, headers=headers)
        assert r.status_code == 413


async def test_declared_content_length_over_the_limit_is_refused_unread(
    app: object, db: AsyncSession, editor: dict[str, str], item: Item
) -> None:
    """Raw ASGI: the app must answer 413 without asking for a single body message."""
    asked = 0
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        nonlocal asked
        asked += 1
        return {"type": "http.request", "body": b"x" * 1024, "more_body": True}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    headers = editor | {
        "content-type": "multipart/form-data; boundary=x",
        "content-length": str(LIMIT * 10),
    }
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PATCH",
        "scheme": "http",
        "path": f"/item-image/{item.id}",
        "raw_path": f"/item-image/{item.id}".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)  # type: ignore[operator]
    assert sent[0]["status"] == 413
    assert asked == 0
    assert await row(db, item.id) == (None, item.version)


async def test_guard_answers_before_the_body_is_judged(
    client: AsyncClient, db: AsyncSession, item: Item
) -> None:
    viewer = await auth_headers(db, await make_user(db, Role.viewer))
    body, content_type = img.multipart(b"\0" * (LIMIT + 1))
    r = await client.patch(f"/item-image/{item.id}", content=body, headers=content_type)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    r = await client.patch(f"/item-image/{item.id}", content=body, headers=viewer | content_type)
    assert r.status_code == 403
    assert await row(db, item.id) == (None, item.version)


async def test_unknown_item_is_404_before_the_body_is_read(
    client: AsyncClient, editor: dict[str, str], uploads: Path
) -> None:
    status, body = await upload(client, 999_999, editor, b"\0" * (LIMIT + 1))
    assert status == 404
    assert body == {"detail": "Item not found"}
    assert img.names(uploads) == []


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"", "multipart/form-data; boundary=x", 422),  # empty: no file field
        (
            b"--x\r\nContent-Disposition: form-data; name=file\r\n\r\nabc",
            "multipart/form-data; boundary=x",
            400,
        ),  # file part never ends
        (b"--x--\r\n", "multipart/form-data; boundary=x", 422),  # no parts at all
        (b'{"file": "x"}', "application/json", 422),
        (b"file=x", "application/x-www-form-urlencoded", 422),
        (b"", "multipart/form-data", 400),  # no boundary
    ],
)
async def test_malformed_or_missing_body(
    client: AsyncClient,
    db: AsyncSession,
    editor: dict[str, str],
    item: Item,
    tmp_path: Path,
    body: bytes,
    content_type: str,
    expected: int,
) -> None:
    async with nothing_stored(db, item, tmp_path):
        r = await client.patch(
            f"/item-image/{item.id}", content=body, headers=editor | {"Content-Type": content_type}
        )
        assert r.status_code == expected, r.text
        if expected == 422:
            assert r.json()["detail"][0]["loc"] == ["body", "file"]


async def test_missing_file_field_is_422(
    client: AsyncClient, db: AsyncSession, editor: dict[str, str], item: Item, tmp_path: Path
) -> None:
    async with nothing_stored(db, item, tmp_path):
        status, body = await upload(client, item.id, editor, img.png(), field=b"image")
        assert status == 422
        assert body["detail"] == [
            {"type": "missing", "loc": ["body", "file"], "msg": "Field required"}
        ]


async def test_two_files_are_refused(
    client: AsyncClient, db: AsyncSession, editor: dict[str, str], item: Item, tmp_path: Path
) -> None:
    one, content_type = img.multipart(img.png())
    two = one.removesuffix(f"--{img.BOUNDARY}--\r\n".encode()) + one
    async with nothing_stored(db, item, tmp_path):
        r = await client.patch(f"/item-image/{item.id}", content=two, headers=editor | content_type)
        assert r.status_code == 400


async def test_no_write_lock_is_held_while_the_body_streams(
    client: AsyncClient, db: AsyncSession, editor: dict[str, str], item: Item
) -> None:
    """Another writer gets through while an upload is still arriving (SQLite: no lock held)."""
    body, content_type = img.multipart(img.png())
    other: Item | None = None

    async def slow_client() -> AsyncIterator[bytes]:
        nonlocal other
        yield body[:100]
        other = await make_item(db, name="written meanwhile")
        yield body[100:]

    r = await client.patch(
        f"/item-image/{item.id}", content=slow_client(), headers=editor | content_type
    )
    assert r.status_code == 200, r.text
    assert other is not None
    assert await db.scalar(select(Item.name).where(Item.id == other.id)) == "written meanwhile"


# --- removing ----------------------------------------------------------------------------


async def test_delete_image_removes_the_file(
    client: AsyncClient, db: AsyncSession, editor: dict[str, str], item: Item, uploads: Path
) -> None:
    _, _body = await upload(client, item.id, editor, img.png())
    r = await client.delete(f"/item-image/{item.id}", headers=editor)
    assert r.status_code == 200
    assert r.json()["item"]["image_src"] is None
    assert r.json()["item"]["image_url"] is None
    assert img.names(uploads) == []
    assert await row(db, item.id) == (None, item.version + 2)


async def test_delete_image_without_one_changes_nothing(
    client: AsyncClient, db: AsyncSession, editor: dict[str, str], item: Item
) -> None:
    r = await client.delete(f"/item-image/{item.id}", headers=editor)
    assert r.status_code == 200
    assert r.json()["item"]["version"] == item.version
    assert await row(db, item.id) == (None, item.version)


async def test_delete_item_removes_its_file(
    client: AsyncClient, db: AsyncSession, editor: dict[str, str], item: Item, uploads: Path
) -> None:
    await upload(client, item.id, editor, img.png())
    admin = await auth_headers(db, await make_user(db, Role.admin))
    r = await client.delete(f"/items/{item.id}", headers=admin)
    assert r.status_code == 200
    assert img.names(uploads) == []
    assert await row(db, item.id) is None


# --- serving -----------------------------------------------------------------------------


async def test_static_serves_the_image_with_caching_headers(
    client: AsyncClient, editor: dict[str, str], item: Item, uploads: Path
) -> None:
    _, body = await upload(client, item.id, editor, img.webp())
    name = body["item"]["image_src"]
    r = await client.get(f"/static/{name}")
    assert r.status_code == 200
    assert r.content == (uploads / name).read_bytes()
    assert r.headers["content-type"] == "image/webp"
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["x-content-type-options"] == "nosniff"
    etag = r.headers["etag"]
    again = await client.get(f"/static/{name}", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    other = await client.get(f"/static/{name}", headers={"If-None-Match": '"nope"'})
    assert other.status_code == 200


async def test_static_404_for_names_that_are_not_stored_images(
    client: AsyncClient, uploads: Path, data_dir: Path
) -> None:
    img.names(uploads)  # creates it
    (uploads / "notes.txt").write_text("not an image")
    (uploads / "photo.jpg").write_bytes(img.jpeg_with_gps())  # a legacy, client-chosen name
    outside = data_dir / ("a" * 32 + ".png")
    outside.write_bytes(img.png())
    (uploads / ("b" * 32 + ".png")).symlink_to(outside)  # ours in name only
    (uploads / ("c" * 32 + ".png")).mkdir()
    for name in ["notes.txt", "photo.jpg", "b" * 32 + ".png", "c" * 32 + ".png", "d" * 32 + ".png"]:
        r = await client.get(f"/static/{name}")
        assert r.status_code == 404, name
        assert r.json() == {"detail": "Image not found"}


# --- OpenAPI -----------------------------------------------------------------------------


async def test_openapi_declares_the_upload_body_and_errors(client: AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    upload_op = paths["/item-image/{item_id}"]["patch"]
    schema = upload_op["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["required"] == ["file"]
    assert schema["properties"]["file"]["format"] == "binary"  # Swagger UI's file picker
    assert {"401", "403", "404", "413", "415", "422"} <= set(upload_op["responses"])
    assert upload_op["security"] == [{"OAuth2PasswordBearer": []}]
    assert {"401", "403", "404", "422"} <= set(
        paths["/item-image/{item_id}"]["delete"]["responses"]
    )
    static = paths["/static/{file}"]["get"]
    assert {"200", "304", "404"} <= set(static["responses"])
    assert "security" not in static


def _set(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    clear_settings()


async def test_frames_past_the_cap_are_refused(
    client: AsyncClient,
    db: AsyncSession,
    editor: dict[str, str],
    item: Item,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    _set(monkeypatch, MAX_IMAGE_FRAMES="5")
    async with nothing_stored(db, item, tmp_path):
        status, body = await upload(client, item.id, editor, img.tiny_frames_gif(6))
        assert status == 415, body
        assert body == {
            "detail": f"Too many frames: at most 5 are accepted; send a shorter {ACCEPTED} file"
        }
    status, _ = await upload(client, item.id, editor, img.tiny_frames_gif(5))
    assert status == 200


async def test_an_animation_bomb_of_tiny_frames_is_refused(
    client: AsyncClient, db: AsyncSession, editor: dict[str, str], item: Item, tmp_path: Path
) -> None:
    """Issue 14, point 3: 1 x 1 frames by the hundred thousand passed the pixel cap and took a
    minute of CPU and a gigabyte to re-encode. The default frame cap refuses them unread."""
    async with nothing_stored(db, item, tmp_path):
        status, body = await upload(client, item.id, editor, img.tiny_frames_gif(100_000))
        assert status == 415, body
        assert "Too many frames: at most 300" in body["detail"]


async def test_the_stored_file_is_held_to_the_upload_limit(
    client: AsyncClient,
    db: AsyncSession,
    editor: dict[str, str],
    item: Item,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    content = img.tiny_frames_gif(200)  # re-encoded, about half as large again
    _set(monkeypatch, MAX_UPLOAD_BYTES=str(len(content) + 100))
    async with nothing_stored(db, item, tmp_path):
        status, body = await upload(client, item.id, editor, content)
        assert status == 415, body
        assert body["detail"].startswith(f"Image too large once cleaned: over {len(content) + 100}")
