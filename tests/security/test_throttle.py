"""Brute force against /token: 429 with Retry-After past each limit, and the window reopening.

Every test runs on the database store and, when a Redis server answers, on the Redis store.
Time is moved with an injected clock, never slept.
"""

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
import redis
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from auth.settings import get_auth_settings
from models.login_failure import LoginFailure
from models.user import AuthSession, User
from tests.conftest import clear_settings
from tests.factories import PASSWORD, auth_headers
from tests.security.conftest import FakeClock, snapshot

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/5")
WINDOW = 60
ATTACKER = "203.0.113.66"


def _redis_or_skip() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5)
    try:
        client.ping()
    except redis.RedisError:
        client.close()
        pytest.skip(f"no Redis at {REDIS_URL}")
    return client


def _delete_keys(client: redis.Redis, prefix: str) -> None:
    """Delete this test's keys only: other runs may share the Redis database."""
    for key in client.scan_iter(match=f"{prefix}*", count=500):
        client.delete(key)


# Autouse: the settings are in place before the app (tests/conftest.py) is built.
@pytest.fixture(params=["database", "redis"], autouse=True)
def store(
    request: pytest.FixtureRequest, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    client = _redis_or_skip() if request.param == "redis" else None
    # Keys of this test alone, deleted afterwards.
    prefix = f"inventory-test:{secrets.token_hex(8)}:"
    if client is not None:
        monkeypatch.setenv("REDIS_URL", REDIS_URL)
        monkeypatch.setenv("REDIS_KEY_PREFIX", prefix)
    monkeypatch.setenv("LOGIN_THROTTLE_WINDOW_SECONDS", str(WINDOW))
    monkeypatch.setenv("LOGIN_FAILURES_PER_PAIR", "3")
    monkeypatch.setenv("LOGIN_FAILURES_PER_USERNAME", "5")
    monkeypatch.setenv("LOGIN_FAILURES_PER_ADDRESS", "8")
    clear_settings()
    yield request.param
    if client is not None:
        _delete_keys(client, prefix)
        client.close()


@asynccontextmanager
async def client_at(app: FastAPI, address: str) -> AsyncIterator[AsyncClient]:
    transport = ASGITransport(app=app, client=(address, 40000))
    async with AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def login(c: AsyncClient, username: str, password: str = "wrong password!") -> Response:
    return await c.post("/token", data={"username": username, "password": password})


async def failures(c: AsyncClient, username: str, times: int) -> list[int]:
    """The statuses of `times` logins with a wrong password, one after the other."""
    return [(await login(c, username)).status_code for _ in range(times)]


async def sessions_of(db: AsyncSession, user: User) -> int:
    await db.rollback()
    return await db.scalar(select(func.count()).where(AuthSession.user_id == user.id)) or 0


async def test_brute_force_ends_in_429_with_retry_after(
    app: FastAPI, db: AsyncSession, editor: User, clock: FakeClock, store: str
) -> None:
    async with client_at(app, ATTACKER) as c:
        statuses = await failures(c, "eddie", 3)
        before = await snapshot(db)
        r = await login(c, "eddie")
    assert statuses == [401, 401, 401]
    assert r.status_code == 429
    assert r.headers["retry-after"] == str(WINDOW)
    assert r.json() == {"detail": "Too many failed logins; try again later"}
    assert await snapshot(db) == before  # a throttled attempt is not even counted
    if store == "database":
        assert len(before["login_failures"]) == 3 * 3  # three failures under three rules
    else:  # one sorted set per rule, under the configured prefix
        prefix = get_auth_settings().REDIS_KEY_PREFIX
        with redis.Redis.from_url(REDIS_URL) as client:
            assert len(list(client.scan_iter(match=f"{prefix}login-failures:*"))) == 3


async def test_right_password_is_refused_while_throttled(
    app: FastAPI, db: AsyncSession, editor: User, clock: FakeClock
) -> None:
    async with client_at(app, ATTACKER) as c:
        await failures(c, "eddie", 3)
        r = await login(c, "eddie", PASSWORD)
    assert r.status_code == 429
    assert "access_token" not in r.text
    assert await sessions_of(db, editor) == 0


async def test_window_reopens_when_the_failures_age_out(
    app: FastAPI, db: AsyncSession, editor: User, clock: FakeClock
) -> None:
    async with client_at(app, ATTACKER) as c:
        await failures(c, "eddie", 3)
        clock.advance(WINDOW - 1)
        still = await login(c, "eddie", PASSWORD)
        clock.advance(1)
        reopened = await login(c, "eddie", PASSWORD)
    assert (still.status_code, still.headers["retry-after"]) == (429, "1")
    assert reopened.status_code == 200
    assert await sessions_of(db, editor) == 1


async def test_window_slides(app: FastAPI, db: AsyncSession, clock: FakeClock) -> None:
    async with client_at(app, ATTACKER) as c:
        for _ in range(3):
            assert (await login(c, "nobody")).status_code == 401
            clock.advance(20)
        # failures at 0, 20, 40; now 60: the first has just left the window
        assert (await login(c, "nobody")).status_code == 401
        clock.advance(5)
        r = await login(c, "nobody")
    # failures at 20, 40, 60 fill the window until 20 + 60 = 80; now 65
    assert (r.status_code, r.headers["retry-after"]) == (429, "15")


async def test_unknown_usernames_are_throttled_alike(app: FastAPI, clock: FakeClock) -> None:
    async with client_at(app, ATTACKER) as c:
        statuses = await failures(c, "ghost", 4)
    assert statuses == [401, 401, 401, 429]


async def test_success_resets_the_usernames_count(
    app: FastAPI, db: AsyncSession, editor: User, clock: FakeClock
) -> None:
    async with client_at(app, "198.51.100.1") as c:
        first = await failures(c, "eddie", 2)
        ok = await login(c, "eddie", PASSWORD)
        second = await failures(c, "eddie", 2)
    assert first == second == [401, 401]
    assert ok.status_code == 200
    assert await sessions_of(db, editor) == 1


async def test_a_stranger_cannot_lock_the_user_out_from_elsewhere(
    app: FastAPI, db: AsyncSession, editor: User, clock: FakeClock
) -> None:
    async with client_at(app, ATTACKER) as attacker:
        await failures(attacker, "eddie", 4)
    async with client_at(app, "192.0.2.10") as owner:
        r = await login(owner, "eddie", PASSWORD)
    assert r.status_code == 200
    assert await sessions_of(db, editor) == 1


async def test_guessing_one_account_from_many_addresses_hits_the_username_limit(
    app: FastAPI, db: AsyncSession, editor: User, clock: FakeClock
) -> None:
    for n in range(5):
        async with client_at(app, f"198.51.100.{n + 1}") as c:
            assert (await login(c, "eddie")).status_code == 401
    async with client_at(app, "198.51.100.99") as c:
        r = await login(c, "eddie", PASSWORD)
    assert r.status_code == 429
    assert await sessions_of(db, editor) == 0


async def test_spraying_many_usernames_from_one_address_hits_the_address_limit(
    app: FastAPI, db: AsyncSession, editor: User, clock: FakeClock
) -> None:
    async with client_at(app, ATTACKER) as c:
        statuses = [(await login(c, f"user{n}")).status_code for n in range(8)]
        r = await login(c, "eddie", PASSWORD)
    assert statuses == [401] * 8
    assert r.status_code == 429
    assert await sessions_of(db, editor) == 0
    async with client_at(app, "192.0.2.10") as elsewhere:
        assert (await login(elsewhere, "eddie", PASSWORD)).status_code == 200


async def test_hammering_while_throttled_does_not_extend_the_lock(
    app: FastAPI, db: AsyncSession, editor: User, clock: FakeClock
) -> None:
    async with client_at(app, ATTACKER) as c:
        await failures(c, "eddie", 3)
        for _ in range(10):
            clock.advance(5)
            assert (await login(c, "eddie")).status_code == 429
        clock.advance(WINDOW - 50)
        r = await login(c, "eddie", PASSWORD)
    assert r.status_code == 200


async def test_old_failures_are_pruned(
    app: FastAPI, db: AsyncSession, clock: FakeClock, store: str
) -> None:
    if store != "database":
        pytest.skip("Redis expires its keys itself")
    async with client_at(app, ATTACKER) as c:
        await login(c, "ghost")
        clock.advance(WINDOW + 1)
        await login(c, "other")
    await db.rollback()
    assert await db.scalar(select(func.count()).select_from(LoginFailure)) == 3


async def change_password(c: AsyncClient, headers: dict[str, str], current: str) -> Response:
    body = {"current_password": current, "new_password": "a brand new passphrase"}
    return await c.post("/users/me/password", json=body, headers=headers)


async def test_password_change_is_throttled_per_user(
    app: FastAPI, db: AsyncSession, editor: User, viewer: User, clock: FakeClock
) -> None:
    """Issue 14, point 5: a stolen access token could guess the account's password."""
    headers = await auth_headers(db, editor)
    others = await auth_headers(db, viewer)
    async with client_at(app, ATTACKER) as c:
        wrong = [(await change_password(c, headers, "a wrong guess")).status_code for _ in range(3)]
        before = await snapshot(db)
        refused = await change_password(c, headers, PASSWORD)
        after = await snapshot(db)
        other = await change_password(c, others, "a wrong guess")
        clock.advance(WINDOW)
        reopened = await change_password(c, headers, PASSWORD)
    assert wrong == [400, 400, 400]
    assert (refused.status_code, refused.headers["retry-after"]) == (429, str(WINDOW))
    assert refused.json() == {"detail": "Too many failed logins; try again later"}
    assert after == before  # the password did not change, the refusal was not counted
    assert other.status_code == 400  # counted per user
    assert reopened.status_code == 204


ROUNDS = 25


async def test_concurrent_right_logins_of_one_account_all_succeed(
    app: FastAPI, db: AsyncSession, editor: User
) -> None:
    """Each success deletes its own reservation and the pair's and the username's counts:
    successes sharing keys take turns at them (PostgreSQL: they deadlocked, a 500)."""
    async with client_at(app, ATTACKER) as c:
        for _ in range(ROUNDS):
            statuses = await asyncio.gather(*(login(c, "eddie", PASSWORD) for _ in range(3)))
            assert [r.status_code for r in statuses] == [200] * 3, [r.text for r in statuses]
    assert await sessions_of(db, editor) == 3 * ROUNDS
