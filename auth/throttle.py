"""Login throttling: failed logins counted in sliding windows, shared by every worker.

Three rules, each "at most N failures in the last LOGIN_THROTTLE_WINDOW_SECONDS":
- per (username, address) pair — tight: it stops one client guessing one account, and it
  locks out only that client;
- per username — looser: it stops guessing one account from many addresses, and it is the
  only rule a stranger can use against a real user, so it must not bite after a few tries;
- per address — looser still: it stops one client spraying many usernames, while an office
  behind one NAT address can still mistype passwords.
Past any rule `/token` answers 429 until enough failures leave the window, even for the right
password (so guessing cannot go on behind the refusals). Throttled attempts are not counted:
an attacker cannot extend a lock-out by hammering it. A successful login clears the
username's and the pair's counts, never the address's (else one valid account would reset
a sprayer's count).

Counts live in the database (table `login_failures`) or, when REDIS_URL is set, in Redis
sorted sets. An attempt is counted *before* its password is judged: `reserve` checks every
rule and records the attempt under each key in one atomic step shared by every worker and
instance (a short transaction of its own under per-key locks, or one Lua script in Redis), so
a burst of concurrent guesses judges at most the limit: there is no slack. A failure keeps its
reservation; a success releases it (and clears the pair's and the username's counts).
An attempt that dies between the two (a dropped connection) stays counted, on the safe side.
"""

import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Protocol, cast

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy import Table, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from auth.errors import LoginThrottled
from auth.secret import get_secret_key
from auth.settings import get_auth_settings
from models.engine import begin_write, dialect_name, will_write
from models.login_failure import LoginFailure
from models.session import ReadFirstSessionDep, SessionDep

Clock = Callable[[], float]


class WindowFull(Exception):
    """A key holds its limit of attempts; `until` is when the window has room again."""

    def __init__(self, until: float) -> None:
        self.until = until


@dataclass(frozen=True, slots=True)
class Reservation:
    keys: tuple[str, ...]
    handle: tuple[str, ...]  # what the store needs to take it back (row ids, or a member)
    others: bool  # other attempts were counted under these keys already


class ThrottleStore(Protocol):
    """Attempt timestamps (seconds since the epoch) under opaque keys."""

    async def reserve(self, limits: Mapping[str, int], now: float, window: float) -> Reservation:
        """Atomically: raise WindowFull if a key holds its limit of attempts after
        `now - window`, else count one attempt under each key. Forget what left the window."""

    async def release(self, reservation: Reservation) -> None:
        """Take the attempt back (it succeeded)."""

    async def clear(self, keys: Sequence[str]) -> None: ...


def _until(times: Sequence[float], limit: int, window: float) -> float | None:
    """When a key with these timestamps (newest first) has room again; None if it has now."""
    return times[limit - 1] + window if len(times) >= limit else None


# Built once, and run as Core statements on the session's connection (the ORM's DML path
# cost a login 1.8 ms of event-loop CPU): every login runs them.
_failures = cast(Table, LoginFailure.__table__)
_f = _failures.c
_NEWEST = (
    select(_f.key, _f.at)
    .where(_f.key.in_(bindparam("keys", expanding=True)))
    .where(_f.at > bindparam("since"))
    .order_by(_f.at.desc())
)
# Old rows are pruned by whichever attempt comes along; rows another one is pruning are left
# to it (SKIP LOCKED on PostgreSQL), so two pruners never wait for, or deadlock on, each other.
_OLD = select(_f.id).where(_f.at <= bindparam("cut"))
_PRUNE = _failures.delete().where(
    _f.id.in_(_OLD.with_for_update(skip_locked=True).scalar_subquery())
)
_COUNT = _failures.insert().returning(_f.id)
_RELEASE = _failures.delete().where(_f.id.in_(bindparam("ids", expanding=True)))
_CLEAR = _failures.delete().where(_f.key.in_(bindparam("keys", expanding=True)))
# One transaction-scoped advisory lock per key, taken in ascending order (so two attempts
# sharing keys cannot deadlock): attempts under the same key take turns.
_LOCK_KEYS = text(
    "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(CAST(:locks AS bigint[])) AS t(k)"
)


async def _take_turns(db: AsyncSession, conn: AsyncConnection, keys: Sequence[str]) -> None:
    """PostgreSQL: this transaction's turn at each key (SQLite has one writer anyway)."""
    if dialect_name(db) == "postgresql":
        await conn.execute(_LOCK_KEYS, {"locks": sorted(int(key[:15], 16) for key in keys)})


class DatabaseStore:
    """Counts in `login_failures`.

    A reservation is a short write transaction of its own, committed before the password is
    judged (the one place a request commits early: other workers must see it). On SQLite it
    runs in the database's one writer's turn; on PostgreSQL under an advisory lock per key.
    Release and clear are written in the request's transaction.
    """

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def reserve(self, limits: Mapping[str, int], now: float, window: float) -> Reservation:
        db = self.db
        writing = will_write(db)  # a write request's transaction goes on after this one
        if not writing:
            await begin_write(db)
        keys = list(limits)
        try:
            conn = await db.connection()
            await _take_turns(db, conn, keys)
            await conn.execute(_PRUNE, {"cut": _dt(now - window)})
            found: dict[str, list[float]] = {}
            newest = await conn.execute(_NEWEST, {"keys": keys, "since": _dt(now - window)})
            for key, at in newest:
                found.setdefault(key, []).append(at.timestamp())
            full = [_until(found.get(k, []), limit, window) for k, limit in limits.items()]
            if any(u is not None for u in full):
                await db.commit()  # keep the pruning; count nothing
                raise WindowFull(max(u for u in full if u is not None))
            # One statement a row: a list of one or more would be SQLAlchemy's executemany.
            ids = [
                (await conn.execute(_COUNT, {"key": key, "at": _dt(now)})).scalar_one()
                for key in keys
            ]
            handle = tuple(str(i) for i in ids)
            await db.commit()
        except BaseException:
            await db.rollback()
            raise
        finally:
            if writing:
                await begin_write(db)
        return Reservation(tuple(keys), handle, bool(found))

    async def release(self, reservation: Reservation) -> None:
        """In the request's transaction, which holds its keys' locks from here on: two
        successful logins that share keys, each deleting the other's rows, would deadlock."""
        conn = await self.db.connection()
        await _take_turns(self.db, conn, reservation.keys)
        await conn.execute(_RELEASE, {"ids": [int(i) for i in reservation.handle]})

    async def clear(self, keys: Sequence[str]) -> None:
        await (await self.db.connection()).execute(_CLEAR, {"keys": list(keys)})


# KEYS: the keys; ARGV: now, window, member, then each key's limit. Returns {} when the attempt
# is counted, else the times at which each full key has room again.
_RESERVE = """
local now, window, member = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local full, others = {}, 0
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local limit = tonumber(ARGV[3 + i])
  local count = redis.call('ZCARD', key)
  others = others + count
  if count >= limit then
    local nth = redis.call('ZREVRANGE', key, limit - 1, limit - 1, 'WITHSCORES')
    table.insert(full, nth[2])
  end
end
if #full > 0 then return {0, full} end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, member)
  redis.call('EXPIRE', key, math.ceil(window) + 1)
end
return {1, others}
"""


class RedisStore:
    """Counts in Redis: one sorted set per key (score = time), expiring with the window."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = f"{prefix}login-failures:"

    async def reserve(self, limits: Mapping[str, int], now: float, window: float) -> Reservation:
        member = f"{now}:{secrets.token_hex(8)}"  # unique, so equal timestamps both count
        names = [self.prefix + key for key in limits]
        args: list[str | float] = [now, window, member, *limits.values()]
        answer = self.redis.eval(_RESERVE, len(names), *names, *args)
        counted, detail = await answer
        if not counted:
            raise WindowFull(max(float(t) + window for t in detail))
        return Reservation(tuple(limits), (member,), int(detail) > 0)

    async def release(self, reservation: Reservation) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in reservation.keys:
                pipe.zrem(self.prefix + key, *reservation.handle)
            await pipe.execute()

    async def clear(self, keys: Sequence[str]) -> None:
        await self.redis.delete(*(self.prefix + key for key in keys))


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


@dataclass(frozen=True, slots=True)
class Attempt:
    """A counted attempt: kept if it fails, released by `LoginThrottle.succeeded`."""

    reservation: Reservation
    forget: tuple[str, ...]  # keys whose counts a success clears


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    limit: int


class LoginThrottle:
    def __init__(self, store: ThrottleStore, clock: Clock = time.time) -> None:
        s = get_auth_settings()
        self.store = store
        self.clock = clock
        self.window = float(s.LOGIN_THROTTLE_WINDOW_SECONDS)
        self.rules = [
            Rule(name, limit)
            for name, limit in (
                ("pair", s.LOGIN_FAILURES_PER_PAIR),
                ("username", s.LOGIN_FAILURES_PER_USERNAME),
                ("address", s.LOGIN_FAILURES_PER_ADDRESS),
            )
            if limit > 0
        ]
        # A password change is judged like a login, counted per user (the pair's limit).
        self.password_limit = s.LOGIN_FAILURES_PER_PAIR

    async def reserve(self, username: str, address: str) -> Attempt | None:
        """Count a login attempt before it is judged; LoginThrottled if a rule's window is
        full (nothing is counted then). None when every rule is off."""
        name = username.strip().lower()
        subjects = {"pair": f"{name}\0{address}", "username": name, "address": address}
        keys = {r.name: _key(r.name, subjects[r.name]) for r in self.rules}
        limits = {keys[r.name]: r.limit for r in self.rules}
        # A success forgets the failures before it, but the address's (else one valid
        # account would reset a sprayer's count).
        forget = tuple(k for name, k in keys.items() if name != "address")
        return await self._reserve(limits, forget)

    async def reserve_password_change(self, user_id: int) -> Attempt | None:
        """Count an attempt at the current password of `user_id` (POST /users/me/password)."""
        if self.password_limit <= 0:
            return None
        key = _key("password", str(user_id))
        return await self._reserve({key: self.password_limit}, (key,))

    async def _reserve(self, limits: dict[str, int], forget: tuple[str, ...]) -> Attempt | None:
        if not limits:
            return None
        now = self.clock()
        try:
            reservation = await self.store.reserve(limits, now, self.window)
        except WindowFull as full:
            # The window lets one through once the limit-th newest attempt leaves it.
            raise LoginThrottled(max(1, math.ceil(full.until - now))) from None
        return Attempt(reservation, forget)

    async def succeeded(self, attempt: Attempt | None) -> None:
        """The attempt was right: take it back and forget the failures before it."""
        if attempt is None:
            return
        await self.store.release(attempt.reservation)
        if attempt.reservation.others:  # nothing else to clear otherwise: spare the write
            await self.store.clear(attempt.forget)


def _key(rule: str, subject: str) -> str:
    """An opaque key: HMAC of the rule and its subject, so no typed username is stored."""
    message = f"{rule}\0{subject}".encode()
    return hmac.new(get_secret_key().encode(), message, hashlib.sha256).hexdigest()


def connect_redis() -> Redis | None:
    """A Redis client when REDIS_URL is set (the app's lifespan owns and closes it)."""
    url = get_auth_settings().REDIS_URL
    return Redis.from_url(url) if url else None


def get_clock() -> Clock:
    """The throttle's clock; tests override this dependency to move time."""
    return time.time


def _throttle(request: Request, db: AsyncSession, clock: Clock) -> LoginThrottle:
    redis: Redis | None = getattr(request.app.state, "login_throttle_redis", None)
    store: ThrottleStore = (
        RedisStore(redis, get_auth_settings().REDIS_KEY_PREFIX)
        if redis is not None
        else DatabaseStore(db)
    )
    return LoginThrottle(store, clock)


async def get_login_throttle(
    request: Request, db: ReadFirstSessionDep, clock: Annotated[Clock, Depends(get_clock)]
) -> LoginThrottle:
    return _throttle(request, db, clock)


async def get_throttle(
    request: Request, db: SessionDep, clock: Annotated[Clock, Depends(get_clock)]
) -> LoginThrottle:
    """The throttle on a write request's own session (a password change)."""
    return _throttle(request, db, clock)


LoginThrottleDep = Annotated[LoginThrottle, Depends(get_login_throttle)]
ThrottleDep = Annotated[LoginThrottle, Depends(get_throttle)]
