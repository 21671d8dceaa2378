import json
import logging
import re

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from api.app import create_app
from tests.conftest import app_client, clear_settings

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


def _access(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "api.access"]


async def test_one_line_per_request_with_a_generated_id(
    client: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    r = await client.get("/items", params={"limit": 5})
    assert r.status_code == 200
    request_id = r.headers["x-request-id"]
    assert GENERATED_ID.fullmatch(request_id)
    [line] = _access(caplog)
    assert (line.method, line.path, line.status, line.request_id) == (  # type: ignore[attr-defined]
        "GET",
        "/items",
        200,
        request_id,
    )
    assert line.duration_ms >= 0  # type: ignore[attr-defined]
    assert re.fullmatch(rf"GET /items 200 \d+\.\dms id={request_id}", line.getMessage())


async def test_a_sane_client_id_is_echoed_and_logged(
    client: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    r = await client.get("/items/999", headers={"X-Request-ID": "checkout-42.retry_1"})
    assert r.status_code == 404
    assert r.headers["x-request-id"] == "checkout-42.retry_1"
    [line] = _access(caplog)
    assert (line.status, line.request_id) == (404, "checkout-42.retry_1")  # type: ignore[attr-defined]


@pytest.mark.parametrize("bad", ["a" * 129, "two words", "x;rm -rf", "ünïcode", ""])
async def test_an_unsafe_client_id_is_replaced(
    client: AsyncClient, caplog: pytest.LogCaptureFixture, bad: str
) -> None:
    caplog.set_level(logging.INFO)
    r = await client.get("/health", headers={b"X-Request-ID": bad.encode()})
    assert GENERATED_ID.fullmatch(r.headers["x-request-id"])
    [line] = _access(caplog)
    assert line.request_id == r.headers["x-request-id"]  # type: ignore[attr-defined]


async def test_a_path_cannot_forge_log_lines(
    client: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    r = await client.get("/items%0AINFO%20api.access%20GET%20/fake")
    assert r.status_code == 404
    [line] = _access(caplog)
    assert "\n" not in line.getMessage()
    assert line.path == "/items%0AINFO%20api.access%20GET%20/fake"  # type: ignore[attr-defined]


async def test_a_crash_is_logged_once_with_the_request_id(
    app: FastAPI, client: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom() -> None:
        raise RuntimeError("kaput")

    app.add_api_route("/boom", boom)
    caplog.set_level(logging.INFO)
    r = await client.get("/boom", headers={"X-Request-ID": "req-500"})
    assert r.status_code == 500
    assert r.json() == {"detail": "Internal server error"}
    assert r.headers["x-request-id"] == "req-500"
    [error] = [rec for rec in caplog.records if rec.levelno == logging.ERROR]
    assert error.request_id == "req-500"  # type: ignore[attr-defined]
    assert "id=req-500" in error.getMessage()
    assert error.exc_info is not None
    [line] = _access(caplog)
    assert (line.status, line.request_id) == (500, "req-500")  # type: ignore[attr-defined]


async def test_json_lines_when_log_format_is_json(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        async with app_client(monkeypatch, LOG_FORMAT="json") as c:
            r = await c.get("/health", headers={"X-Request-ID": "json-1"})
    finally:
        monkeypatch.delenv("LOG_FORMAT")
        clear_settings()
        create_app()  # puts the text handler back for the tests that follow
    assert r.status_code == 200
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    [entry] = [e for e in lines if e["logger"] == "api.access"]
    assert entry["method"] == "GET"
    assert entry["path"] == "/health"
    assert entry["status"] == 200
    assert entry["request_id"] == "json-1"
    assert isinstance(entry["duration_ms"], float)
    assert entry["level"] == "INFO"
    assert entry["time"].endswith("+00:00")
