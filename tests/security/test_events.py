"""Every authentication and user event is one structured record on `auth.events`: who, what,
when, where (the audit events of auth/audit.py once committed, and a throttled login)."""

import json
from datetime import datetime
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from auth import events
from models.enums import Role
from models.user import User
from tests.conftest import clear_settings
from tests.factories import PASSWORD, auth_headers, login_pair, make_user

ADDRESS = "127.0.0.1"  # httpx's ASGITransport reports this client address


class _Records(list[dict[str, Any]]):
    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        super().__init__()
        self.caplog = caplog

    def of(self, action: str) -> dict[str, Any]:
        """The one log record of `action`: an audit event's (`audit_event`), or one of
        auth/events.py's (`auth_event`) for an event that changes nothing."""
        found: list[dict[str, Any]] = []
        for r in self.caplog.records:
            if r.name != "auth.events":
                continue
            entry = getattr(r, "audit_event", None) or r.auth_event  # type: ignore[attr-defined]
            if entry.get("action", entry.get("event")) == action:
                found.append(entry)
        assert len(found) == 1, f"{action}: {len(found)} records"
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
    failed, ok = recorded.of("auth.login_failed"), recorded.of("auth.login")
    assert failed["actor_id"] is None  # unknown and known users log alike on failure
    assert failed["request_id"]
    assert (ok["actor_id"], ok["actor_username"]) == (editor.id, "eddie")
    assert (ok["target_type"], ok["target_id"]) == ("user", editor.id)


async def test_login_throttled(
    client: AsyncClient, db: AsyncSession, recorded: _Records, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGIN_FAILURES_PER_PAIR", "1")
    clear_settings()
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
    assert recorded.of("auth.refresh_reuse")["actor_id"] == editor.id


async def test_logout(
    client: AsyncClient, db: AsyncSession, editor: User, recorded: _Records
) -> None:
    await client.post("/logout?all=true", headers=await auth_headers(db, editor))
    record = recorded.of("auth.logout")
    assert record["actor_id"] == editor.id
    assert record["changes"] == {"all_devices": {"old": None, "new": True}}


async def test_password_change(
    client: AsyncClient, db: AsyncSession, editor: User, recorded: _Records
) -> None:
    r = await client.post(
        "/users/me/password",
        json={"current_password": PASSWORD, "new_password": "another long one"},
        headers=await auth_headers(db, editor),
    )
    assert r.status_code == 204
    record = recorded.of("user.password")
    assert record["actor_id"] == record["target_id"] == editor.id
    assert record["changes"] == {}


async def test_admin_changes(
    client: AsyncClient, db: AsyncSession, admin: User, recorded: _Records
) -> None:
    headers = await auth_headers(db, admin)
    created = await client.post(
        "/users", json={"username": "newbie", "password": "long enough pw"}, headers=headers
    )
    uid = created.json()["user"]["id"]
    await client.patch(
        f"/users/{uid}", json={"role": "editor", "is_active": False}, headers=headers
    )
    await client.patch(f"/users/{uid}", json={"password": "reset by admin"}, headers=headers)
    await client.delete(f"/users/{uid}", headers=headers)
    for action in ("user.create", "user.update", "user.password", "user.delete"):
        record = recorded.of(action)
        assert (record["actor_id"], record["target_id"]) == (admin.id, uid)
    assert recorded.of("user.create")["changes"]["username"] == {"old": None, "new": "newbie"}
    assert recorded.of("user.update")["changes"] == {
        "role": {"old": "viewer", "new": "editor"},
        "is_active": {"old": True, "new": False},
    }
    assert recorded.of("user.delete")["changes"]["username"] == {"old": "newbie", "new": None}


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
