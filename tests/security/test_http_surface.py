"""Headers on every response, body size limits, CORS, caching, docs switch, no banner."""

import base64
import hashlib
import logging
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from models.user import User
from tests.conftest import app_client
from tests.factories import auth_headers, make_item
from tests.security.conftest import snapshot
from tests.server import running_server

BASE_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/health", 200),
        ("GET", "/items", 200),
        ("GET", "/items/999", 404),
        ("GET", "/users/me", 401),
        ("POST", "/items", 401),
        ("DELETE", "/health", 405),
        ("GET", "/items?limit=0", 422),
        ("GET", "/nowhere", 404),
        ("GET", "/openapi.json", 200),
    ],
)
async def test_security_headers_on_every_response(
    client: AsyncClient, method: str, path: str, status: int
) -> None:
    r = await client.request(method, path)
    assert r.status_code == status
    for name, value in BASE_HEADERS.items():
        assert r.headers[name] == value
    assert r.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert "server" not in r.headers


def _inline_script_hashes(html: str) -> set[str]:
    return {
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    }


def _csp(header: str) -> dict[str, set[str]]:
    parts = (d.strip().split() for d in header.split(";") if d.strip())
    return {p[0]: set(p[1:]) for p in parts}


async def test_swagger_ui_csp_allows_exactly_its_assets_and_inline_script(
    client: AsyncClient,
) -> None:
    r = await client.get("/docs")
    assert r.status_code == 200
    csp = _csp(r.headers["content-security-policy"])
    hashes = _inline_script_hashes(r.text)
    assert len(hashes) == 1  # the SwaggerUIBundle(...) bootstrap
    assert csp["script-src"] == {"'self'", *hashes}
    assert "'unsafe-inline'" not in csp["script-src"]
    for src in re.findall(r'<script src="([^"]+)"', r.text):
        assert src.startswith("/docs-assets/")
    for href in re.findall(r'rel="stylesheet" href="([^"]+)"', r.text):
        assert href.startswith("/docs-assets/")
    assert csp["connect-src"] == {"'self'"}  # the spec and the Authorize login are same-origin
    assert csp["frame-ancestors"] == {"'none'"}
    assert r.headers["x-frame-options"] == "DENY"


async def test_redoc_has_its_own_csp(client: AsyncClient) -> None:
    redoc = await client.get("/redoc")
    redoc_csp = _csp(redoc.headers["content-security-policy"])
    assert redoc_csp["script-src"] == {"'self'", *_inline_script_hashes(redoc.text)}
    assert redoc_csp["worker-src"] == {"blob:"}
    assert "'unsafe-inline'" not in redoc_csp["script-src"]


async def test_oversized_json_body_is_413_before_it_is_read(
    client: AsyncClient, db: AsyncSession, editor: User
) -> None:
    headers = {**await auth_headers(db, editor), "Content-Type": "application/json"}
    before = await snapshot(db)
    body = b'{"name": "x", "quantity": 1, "description": "' + b"a" * 70_000 + b'"}'
    r = await client.post("/items", content=body, headers=headers)
    assert r.status_code == 413
    assert r.json() == {"detail": "Request body too large"}
    assert r.headers["x-content-type-options"] == "nosniff"
    assert await snapshot(db) == before


async def test_streamed_body_without_length_is_cut_at_the_limit(
    client: AsyncClient, db: AsyncSession, editor: User
) -> None:
    headers = {**await auth_headers(db, editor), "Content-Type": "application/json"}
    before = await snapshot(db)
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"name": "x", "quantity": 1, "description": "'
        for _ in range(100):
            sent += 1
            yield b"a" * 4096
        yield b'"}'

    r = await client.post("/items", content=chunks(), headers=headers)
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert r.status_code == 413
    assert r.json() == {"detail": "Request body too large"}
    assert await snapshot(db) == before


async def test_oversized_login_form_is_413(client: AsyncClient, db: AsyncSession) -> None:
    before = await snapshot(db)
    r = await client.post("/token", data={"username": "x" * 70_000, "password": "y"})
    assert r.status_code == 413
    assert await snapshot(db) == before  # not even counted as a failed login


async def test_multipart_has_its_own_limit_on_the_upload_route_only(
    client: AsyncClient, db: AsyncSession, editor: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Uploads are exempt from the JSON limit but not from the multipart sanity cap."""
    headers = await auth_headers(db, editor)
    item = await make_item(db, name="pictured")
    await db.commit()
    files = {"file": ("a.bin", b"a" * 90_000, "application/octet-stream")}
    big = {"file": ("a.bin", b"a" * 120_000, "application/octet-stream")}
    async with app_client(monkeypatch, MAX_MULTIPART_BODY_BYTES="100000") as c:
        under = await c.patch(f"/item-image/{item.id}", files=files, headers=headers)
        over = await c.patch(f"/item-image/{item.id}", files=big, headers=headers)
        elsewhere = await c.post("/items", files=files, headers=headers)
    assert under.status_code == 415  # past the 64 KiB JSON limit, yet read and judged
    assert over.status_code == 413
    assert elsewhere.status_code == 413  # the label does not lift the limit on other routes


async def test_a_multipart_label_does_not_lift_an_anonymous_routes_limit(
    client: AsyncClient, db: AsyncSession
) -> None:
    """Issue 14, point 2: 16 MB bodies labelled multipart to /token/refresh were read whole."""
    before = await snapshot(db)
    files = {"file": ("a.bin", b"a" * 100_000, "application/octet-stream")}
    for path in ("/token/refresh", "/token"):
        r = await client.post(path, files=files)
        assert r.status_code == 413, path
        assert r.json() == {"detail": "Request body too large"}
    assert await snapshot(db) == before


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "Not authenticated"),
        ({"Authorization": "Bearer not.a.token"}, "Could not validate credentials"),
    ],
)
async def test_an_unauthenticated_body_is_refused_before_it_is_read(
    client: AsyncClient, db: AsyncSession, headers: dict[str, str], detail: str
) -> None:
    before = await snapshot(db)
    read = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal read
        for _ in range(10):
            read += 1
            yield b" " * 4096

    for method, path in (("POST", "/items"), ("PATCH", "/users/me"), ("POST", "/logout")):
        r = await client.request(
            method, path, content=body(), headers={**headers, "Content-Type": "application/json"}
        )
        assert r.status_code == 401, path
        assert r.json() == {"detail": detail}
        assert r.headers["www-authenticate"] == "Bearer"
    assert read == 0
    assert await snapshot(db) == before


async def test_cors_is_closed_by_default(client: AsyncClient) -> None:
    origin = {"Origin": "https://evil.example"}
    simple = await client.get("/items", headers=origin)
    preflight = await client.options(
        "/items",
        headers={**origin, "Access-Control-Request-Method": "POST"},
    )
    assert simple.status_code == 200
    assert "access-control-allow-origin" not in simple.headers
    assert preflight.status_code == 405
    assert "access-control-allow-origin" not in preflight.headers


@pytest.fixture
async def cors_client(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[AsyncClient]:
    origins = "https://app.example, https://admin.example/"
    async with app_client(monkeypatch, CORS_ORIGINS=origins) as c:
        yield c


async def test_cors_allow_list_opens_only_listed_origins(cors_client: AsyncClient) -> None:
    ask = {"Access-Control-Request-Method": "PATCH", "Access-Control-Request-Headers": "If-Match"}
    allowed = await cors_client.options(
        "/items/1", headers={"Origin": "https://admin.example", **ask}
    )
    other = await cors_client.options("/items/1", headers={"Origin": "https://evil.example", **ask})
    simple = await cors_client.get("/items", headers={"Origin": "https://app.example"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://admin.example"
    assert "access-control-allow-credentials" not in allowed.headers
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers
    assert simple.headers["access-control-allow-origin"] == "https://app.example"
    assert "ETag" in simple.headers["access-control-expose-headers"]


@pytest.mark.parametrize("path", ["/users/me", "/users", "/users/1"])
async def test_user_responses_are_not_stored(
    client: AsyncClient, db: AsyncSession, admin: User, path: str
) -> None:
    r = await client.get(path, headers=await auth_headers(db, admin))
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"


async def test_token_responses_are_not_stored(
    client: AsyncClient, db: AsyncSession, admin: User
) -> None:
    from tests.factories import PASSWORD

    r = await client.post("/token", data={"username": "root", "password": PASSWORD})
    refreshed = await client.post(
        "/token/refresh", json={"refresh_token": r.json()["refresh_token"]}
    )
    assert (r.status_code, refreshed.status_code) == (200, 200)
    assert r.headers["cache-control"] == refreshed.headers["cache-control"] == "no-store"


async def test_public_item_reads_stay_cacheable(client: AsyncClient) -> None:
    r = await client.get("/items")
    assert "cache-control" not in r.headers


@pytest.fixture
async def no_docs_client(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[AsyncClient]:
    async with app_client(monkeypatch, DOCS_ENABLED="false") as c:
        yield c


@pytest.mark.parametrize(
    "path",
    ["/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect", "/docs-assets/swagger-ui.css"],
)
async def test_docs_can_be_switched_off(no_docs_client: AsyncClient, path: str) -> None:
    r = await no_docs_client.get(path)
    assert r.status_code == 404
    assert (await no_docs_client.get("/health")).status_code == 200


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """`inventory serve` for real: uvicorn, migrations and the first admin on a fresh SQLite."""
    with running_server(tmp_path / "served", "a long enough password") as url:
        yield url


def test_real_server_sends_no_version_banner(served: str) -> None:
    r = httpx.get(f"{served}/health", timeout=5)
    assert r.status_code == 200
    assert "server" not in r.headers
    assert r.headers["x-content-type-options"] == "nosniff"
    big = httpx.post(
        f"{served}/token",
        content=b"a" * 100_000,
        timeout=5,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert big.status_code == 413
    assert "server" not in big.headers


async def test_an_unexpected_error_is_a_bare_500_with_the_headers(app: FastAPI) -> None:
    async def boom() -> None:
        raise RuntimeError("internal detail: /srv/secret/path")

    app.add_api_route("/boom", boom)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://testserver") as c:
        r = await c.get("/boom")
    assert r.status_code == 500
    assert r.json() == {"detail": "Internal server error"}
    for name, value in BASE_HEADERS.items():
        assert r.headers[name] == value
    assert "content-security-policy" in r.headers


async def test_allowed_hosts_refuses_other_host_headers(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14, point 9: `Host: evil.example` steered the trailing-slash redirect there."""
    async with app_client(monkeypatch, ALLOWED_HOSTS="inventory.example, *.inventory.example") as c:
        evil = await c.get("/items/", headers={"Host": "evil.example"})
        ours = await c.get("/items/", headers={"Host": "inventory.example"})
        sub = await c.get("/items", headers={"Host": "eu.inventory.example"})
    assert evil.status_code == 400
    assert "evil.example" not in evil.headers.get("location", "")
    assert evil.headers["x-content-type-options"] == "nosniff"
    assert ours.status_code == 307
    assert ours.headers["location"] == "http://inventory.example/items"
    assert sub.status_code == 200


async def test_production_without_allowed_hosts_warns(
    database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", secrets.token_urlsafe(48))
    async with app_client(monkeypatch, ALLOWED_HOSTS="") as c:
        r = await c.get("/health", headers={"Host": "anything.example"})
    assert r.status_code == 200
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(m.startswith("ALLOWED_HOSTS is not set") for m in warnings)
