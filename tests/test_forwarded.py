"""TRUSTED_PROXIES: X-Forwarded-For/-Proto believed from those proxies only; the login
throttle counts the forwarded client address."""

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from starlette.types import Receive, Scope, Send

from api.app import create_app
from api.forwarded import ForwardedHeaders
from api.settings import ApiSettings
from tests.conftest import clear_settings

PROXY = "10.1.2.3"
STRANGER = "192.0.2.7"


@pytest.fixture
async def app(database_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FastAPI]:
    monkeypatch.setenv("TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8")
    monkeypatch.setenv("LOGIN_FAILURES_PER_ADDRESS", "2")
    monkeypatch.setenv("LOGIN_FAILURES_PER_PAIR", "0")
    monkeypatch.setenv("LOGIN_FAILURES_PER_USERNAME", "0")
    clear_settings()
    application = create_app()
    async with application.router.lifespan_context(application):
        yield application


async def _fail_login(app: FastAPI, peer: str, forwarded_for: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    transport = ASGITransport(app=app, client=(peer, 40000))
    async with AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.post(
            "/token", data={"username": "nobody", "password": "wrong password"}, headers=headers
        )
    return r.status_code


async def test_the_throttle_counts_the_address_a_trusted_proxy_forwards(app: FastAPI) -> None:
    assert [await _fail_login(app, PROXY, "203.0.113.1") for _ in range(3)] == [401, 401, 429]
    # Another client behind the same proxy has counts of its own.
    assert await _fail_login(app, PROXY, "203.0.113.2") == 401
    # A client cannot forge its way out: the proxy appends the address it saw.
    assert await _fail_login(app, PROXY, "198.51.100.9, 203.0.113.1") == 429


async def test_forwarded_headers_from_anyone_else_are_ignored(app: FastAPI) -> None:
    statuses = [await _fail_login(app, STRANGER, f"203.0.113.{n}") for n in range(10, 13)]
    assert statuses == [401, 401, 429]


async def _scope_seen(trusted: list[str], client: tuple[str, int] | None) -> Scope:
    seen: dict[str, Scope] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen["scope"] = scope

    scope: Scope = {
        "type": "http",
        "scheme": "http",
        "client": client,
        "headers": [(b"x-forwarded-for", b"203.0.113.5"), (b"x-forwarded-proto", b"https")],
    }

    async def nothing() -> dict[str, str]:
        return {}

    await ForwardedHeaders(app, trusted)(scope, nothing, nothing)  # type: ignore[arg-type]
    return seen["scope"]


@pytest.mark.parametrize(
    ("trusted", "client", "expected"),
    [
        (["10.0.0.0/8"], ("10.9.9.9", 1), (("203.0.113.5", 0), "https")),
        (["10.0.0.1"], ("10.0.0.2", 1), (("10.0.0.2", 1), "http")),
        (["unix"], None, (("203.0.113.5", 0), "https")),
        (["10.0.0.0/8"], None, (None, "http")),
    ],
)
async def test_which_peers_are_believed(
    trusted: list[str], client: tuple[str, int] | None, expected: tuple[object, str]
) -> None:
    scope = await _scope_seen(trusted, client)
    assert (scope["client"], scope["scheme"]) == expected


@pytest.mark.parametrize("value", ["10.0.0.0/33", "localhost", "127.0.0.1, nginx"])
def test_a_mistyped_proxy_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="not an address, a network or `unix`"):
        ApiSettings(TRUSTED_PROXIES=value)


def test_addresses_networks_and_unix_are_accepted() -> None:
    settings = ApiSettings(TRUSTED_PROXIES=" 127.0.0.1, ::1,10.0.0.0/8 ,unix,")
    assert settings.trusted_proxies == ["127.0.0.1", "::1", "10.0.0.0/8", "unix"]
