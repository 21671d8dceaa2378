"""HEAD on every GET route: the GET's status and headers, no body; documented once."""

import re

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from httpx import AsyncClient, Headers
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.routing import Mount

from models.enums import Role
from tests import imagefiles as img
from tests.factories import auth_headers, make_item, make_user


def _get_paths(app: FastAPI) -> list[str]:
    """Every GET route, with one file of each mounted folder (the docs assets)."""
    paths = [c.path or "" for c in iter_route_contexts(app.routes) if "GET" in (c.methods or ())]
    paths += [f"{r.path}/swagger-ui.css" for r in app.routes if isinstance(r, Mount)]
    return paths


def _same(headers: Headers) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k != "x-request-id"}  # one per request


async def test_every_get_route_answers_head_with_the_gets_headers(
    app: FastAPI, client: AsyncClient, db: AsyncSession
) -> None:
    admin = await make_user(db, Role.admin)
    headers = await auth_headers(db, admin)
    item = await make_item(db)
    uploaded = await client.patch(
        f"/item-image/{item.id}", files={"file": ("a.png", img.png())}, headers=headers
    )
    values = {
        "item_id": str(item.id),
        "user_id": str(admin.id),
        "file": uploaded.json()["item"]["image_src"],
    }
    paths = _get_paths(app)
    assert "/items/{item_id}" in paths
    assert "/static/{file}" in paths
    for template in paths:
        path = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)
        get = await client.get(path, headers=headers)
        head = await client.head(path, headers=headers)
        assert get.status_code == 200, path
        assert head.status_code == 200, path
        assert head.content == b"", path
        assert _same(head.headers) == _same(get.headers), path
        assert "content-length" in head.headers, path


async def test_head_of_a_compressed_list_names_the_compressed_length(
    client: AsyncClient, db: AsyncSession
) -> None:
    for _ in range(20):
        await make_item(db, description="x" * 100)
    accept = {"Accept-Encoding": "gzip"}
    get = await client.get("/items", headers=accept)
    head = await client.head("/items", headers=accept)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-encoding"] == "gzip"
    assert head.headers["content-length"] == get.headers["content-length"]


@pytest.mark.parametrize(
    ("path", "status"), [("/items/999", 404), ("/static/missing.png", 404), ("/token", 405)]
)
async def test_head_answers_what_get_would(client: AsyncClient, path: str, status: int) -> None:
    get = await client.get(path)
    head = await client.head(path)
    assert (head.status_code, head.content) == (status, b"")
    assert get.status_code == status
    assert head.headers["content-length"] == get.headers["content-length"]


async def test_head_changes_nothing_and_returns_the_etag(
    client: AsyncClient, db: AsyncSession
) -> None:
    item = await make_item(db)
    head = await client.head(f"/items/{item.id}")
    assert head.headers["etag"] == (await client.get(f"/items/{item.id}")).headers["etag"]
    cached = await client.head(f"/items/{item.id}", headers={"If-None-Match": head.headers["etag"]})
    assert cached.status_code == 304


async def test_openapi_documents_head_once_not_per_route(client: AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert "answers `HEAD`" in schema["info"]["description"]
    assert not [p for p, ops in schema["paths"].items() if "head" in ops]
