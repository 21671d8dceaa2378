"""Every authentication event is one structured record on `auth.events`: who, what, when, where."""

import json
from datetime import datetime
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from auth import events
from models.enums import Role
from models.user import User
from tests.factories import PASSWORD, auth_headers, login_pair, make_user

ADDRESS = "127.0.0.1"  # httpx's ASGITransport reports this client address


class _Records(list[dict[str, Any]]):
    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        super().__init__()
        self.caplog = caplog

    def of(self, event: str) -> dict[str, Any]:
        found = [
            r.auth_event  # type: ignore[attr-defined]
            for r in self.caplog.records
            if r.name == "auth.events" and r.auth_event["event"] == event  # type: ignore[attr-defined]
        ]
        assert len(found) == 1, f"{event}: {len(found)} records"
        record: dict[str, Any] = found[0]
        assert json.loads(json.dumps(record)) == record
        datetime.fromisoformat(record["at"])
        assert record["address"] == ADDRESS
        return record


@pytest.fixture
def recorded(caplog: pytest.LogCaptureFixture) -> _Records:
    caplog.set_level("INFO", logger="auth.events")
    return _Records(caplog)


async def test_login_success_and_failure(
    client: AsyncClient, db: AsyncSession, editor: User, recorded: _Records
) -> None:
    await client.post("/token", data={"username": "eddie", "password": "nope nope"})
    await client.post("/token", data={"username": "EDDIE", "password": PASSWORD})
    failed, ok = recorded.of("login_failed"), recorded.of("login_succeeded")
    assert failed["username"] == "eddie"
    assert failed["user_id"] is None  # unknown and known users log alike on failure
    assert (ok["user_id"], ok["username"]) == (editor.id, "eddie")


async def test_login_throttled(
    client: AsyncClient, db: AsyncSession, recorded: _Records, monkeypatch: pytest.MonkeyPatch
) -> None:
    from auth.settings import get_auth_settings

    monkeypatch.setenv("LOGIN_FAILURES_PER_PAIR", "1")
    get_auth_settings.cache_clear()
    await client.post("/token", data={"username": "ghost", "password": "nope nope"})
    r = await client.post("/token", data={"username": "ghost", "password": "nope nope"})
    assert r.status_code == 429
    record = recorded.of("login_throttled")
    assert record["username"] == "ghost"
    assert record["retry_after"] == int(r.headers["retry-after"])


async def test_refresh_reuse(
    client: AsyncClient, db: AsyncSession, editor: User, recorded: _Records
) -> None:
    _, refresh = await login_pair(db, editor)
    await client.post("/token/refresh", json={"refresh_token": refresh})
    await client.post("/token/refresh", json={"refresh_token": refresh})
    assert recorded.of("refresh_token_reused")["user_id"] == editor.id


async def test_logout(
    client: AsyncClient, db: AsyncSession, editor: User, recorded: _Records
) -> None:
    await client.post("/logout?all=true", headers=await auth_headers(db, editor))
    record = recorded.of("logout")
    assert (record["user_id"], record["all_devices"]) == (editor.id, True)


async def test_password_change(
    client: AsyncClient, db: AsyncSession, editor: User, recorded: _Records
) -> None:
    r = await client.post(
        "/users/me/password",
        json={"current_password": PASSWORD, "new_password": "another long one"},
        headers=await auth_headers(db, editor),
    )
    assert r.status_code == 204
    record = recorded.of("password_changed")
    assert record["user_id"] == record["target_user_id"] == editor.id


async def test_admin_changes(
    client: AsyncClient, db: AsyncSession, admin: User, recorded: _Records
) -> None:
    headers = await auth_headers(db, admin)
    created = await client.post(
        "/users", json={"username": "newbie", "password": "long enough pw"}, headers=headers
    )
    uid = created.json()["user"]["id"]
    await client.patch(f"/users/{uid}", json={"role": "editor"}, headers=headers)
    await client.patch(f"/users/{uid}", json={"is_active": False}, headers=headers)
    await client.patch(f"/users/{uid}", json={"password": "reset by admin"}, headers=headers)
    await client.delete(f"/users/{uid}", headers=headers)
    for event in ("user_created", "role_changed", "status_changed", "password_reset"):
        record = recorded.of(event)
        assert (record["user_id"], record["target_user_id"]) == (admin.id, uid)
        assert record["target_username"] == "newbie"
    role = recorded.of("role_changed")
    assert (role["old"], role["new"]) == ("viewer", "editor")
    status = recorded.of("status_changed")
    assert (status["old"], status["new"]) == (True, False)
    assert recorded.of("user_deleted")["target_user_id"] == uid


async def test_unchanged_role_logs_nothing(
    client: AsyncClient, db: AsyncSession, admin: User, recorded: _Records
) -> None:
    other = await make_user(db, Role.editor)
    headers = await auth_headers(db, admin)
    await client.patch(f"/users/{other.id}", json={"role": "editor"}, headers=headers)
    assert not [r for r in recorded.caplog.records if r.name == "auth.events"]


def test_a_crafted_username_cannot_forge_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="auth.events")
    events.emit("login_failed", address="x", username='eve\n{"event": "login_succeeded"}')
    (record,) = caplog.records
    assert "\n" not in record.getMessage()
    assert json.loads(record.getMessage())["event"] == "login_failed"


def test_secret_looking_fields_are_refused() -> None:
    with pytest.raises(ValueError, match="secret"):
        events.emit("oops", address=None, refresh_token="x")
