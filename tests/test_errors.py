"""The error handlers: unexpected failures are a generic 500, untranslated conflicts a 409."""

import logging

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError


def _raise(exc: Exception) -> None:
    raise exc


@pytest.mark.parametrize(
    ("exc", "status", "detail"),
    [
        (RuntimeError("secret path /etc/x and SELECT * FROM users"), 500, "Internal server error"),
        (
            IntegrityError("INSERT INTO items VALUES (?)", ("hash",), Exception("UNIQUE")),
            409,
            "Conflict with the current state",
        ),
        (
            StaleDataError("UPDATE statement on table 'items' expected to update 1 row"),
            409,
            "Changed by someone else meanwhile; reload it and try again",
        ),
    ],
    ids=["unexpected", "integrity", "stale"],
)
async def test_errors_are_generic(
    app: FastAPI,
    caplog: pytest.LogCaptureFixture,
    exc: Exception,
    status: int,
    detail: str,
) -> None:
    async def boom() -> None:
        _raise(exc)

    app.router.add_api_route("/boom", boom)
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://testserver") as client:
        with caplog.at_level(logging.ERROR, logger="api"):
            r = await client.get("/boom", headers={"X-Request-ID": "req-42"})
    assert r.status_code == status
    assert r.json() == {"detail": detail}
    if status == 500:
        assert "req-42" in caplog.text  # logged with the request id, answered without detail
