"""/docs and /redoc load every file from this server: the machine may have no internet."""

import re

import pytest
from httpx import AsyncClient


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_nothing_from_elsewhere(client: AsyncClient, page: str) -> None:
    r = await client.get(page)
    assert r.status_code == 200
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", r.text)
    assert urls
    assert all(u.startswith("/docs-assets/") for u in urls), urls
    assert "http://" not in r.text
    assert "https://" not in r.text


async def test_swagger_ui_does_not_call_the_online_validator(client: AsyncClient) -> None:
    r = await client.get("/docs")
    assert '"validatorUrl": null' in r.text


@pytest.mark.parametrize(
    ("asset", "media_type"),
    [
        ("swagger-ui-bundle.js", "javascript"),
        ("swagger-ui.css", "text/css"),
        ("redoc.standalone.js", "javascript"),
        ("favicon.png", "image/png"),
    ],
)
async def test_docs_assets_are_served(client: AsyncClient, asset: str, media_type: str) -> None:
    r = await client.get(f"/docs-assets/{asset}")
    assert r.status_code == 200
    assert media_type in r.headers["content-type"]
    assert len(r.content) > 1000


async def test_docs_assets_refuse_traversal(client: AsyncClient) -> None:
    r = await client.get("/docs-assets/..%2F..%2Fapi%2Fapp.py")
    assert r.status_code == 404
