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

Counts live in the database (table `login_failures`, written in the request's transaction)
or, when REDIS_URL is set, in Redis sorted sets. Concurrent failures may overshoot a limit by
the number of requests in flight; the window still closes.
"""

import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Protocol

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from auth.errors import LoginThrottled
from auth.secret import get_secret_key
from auth.settings import get_auth_settings
from models.login_failure import LoginFailure
from models.session import ReadFirstSessionDep

Clock = Callable[[], float]


class ThrottleStore(Protocol):
    """Failure timestamps (seconds since the epoch) under opaque keys."""

    async def newest(self, keys: Sequence[str], since: float) -> dict[str, list[float]]:
        """Each key's timestamps after `since`, newest first (keys without any left out)."""

    async def add(self, keys: Sequence[str], at: float, window: float) -> None:
        """Record one failure under each key; forget what is older than `window`."""

    async def clear(self, keys: Sequence[str]) -> None: ...


# Built once: every login runs it.
_NEWEST = (
    select(LoginFailure.key, LoginFailure.at)
    .where(LoginFailure.key.in_(bindparam("keys", expanding=True)))
    .where(LoginFailure.at > bindparam("since"))
    .order_by(LoginFailure.at.desc())
)


class DatabaseStore:
    """Counts in `login_failures`, in the request's transaction (the 401 commits them)."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def newest(self, keys: Sequence[str], since: float) -> dict[str, list[float]]:
        # One query for every rule: a login pays one round trip, however many rules there are.
        # A key holds at most its limit within the window (throttled attempts are not counted).
        rows = await self.db.execute(_NEWEST, {"keys": list(keys), "since": _dt(since)})
        found: dict[str, list[float]] = {}
        for key, at in rows:
            found.setdefault(key, []).append(at.timestamp())
        return found

    async def add(self, keys: Sequence[str], at: float, window: float) -> None:
        await self.db.execute(delete(LoginFailure).where(LoginFailure.at <= _dt(at - window)))
        self.db.add_all(LoginFailure(key=key, at=_dt(at)) for key in keys)
        await self.db.flush()

    async def clear(self, keys: Sequence[str]) -> None:
        await self.db.execute(delete(LoginFailure).where(LoginFailure.key.in_(keys)))


class RedisStore:
    """Counts in Redis: one sorted set per key (score = time), expiring with the window."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = f"{prefix}login-failures:"

    async def newest(self, keys: Sequence[str], since: float) -> dict[str, list[float]]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.zrevrangebyscore(self.prefix + key, "+inf", f"({since}", withscores=True)
            answers = await pipe.execute()
        return {
            key: [float(score) for _member, score in found]
            for key, found in zip(keys, answers, strict=True)
            if found
        }

    async def add(self, keys: Sequence[str], at: float, window: float) -> None:
        member = f"{at}:{secrets.token_hex(4)}"  # unique, so equal timestamps both count
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in keys:
                name = self.prefix + key
                pipe.zadd(name, {member: at})
                pipe.zremrangebyscore(name, "-inf", at - window)
                pipe.expire(name, math.ceil(window) + 1)
            await pipe.execute()

    async def clear(self, keys: Sequence[str]) -> None:
        await self.redis.delete(*(self.prefix + key for key in keys))


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


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
        self._seen_failures = True  # until check() has looked
        self.rules = [
            Rule(name, limit)
            for name, limit in (
                ("pair", s.LOGIN_FAILURES_PER_PAIR),
                ("username", s.LOGIN_FAILURES_PER_USERNAME),
                ("address", s.LOGIN_FAILURES_PER_ADDRESS),
            )
            if limit > 0
        ]

    async def check(self, username: str, address: str) -> None:
        """Raise LoginThrottled if any rule's window is full."""
        now = self.clock()
        keys = {rule: _key(rule.name, username, address) for rule in self.rules}
        found = await self.store.newest(list(keys.values()), now - self.window) if keys else {}
        self._seen_failures = bool(found)
        wait = 0.0
        for rule, key in keys.items():
            times = found.get(key, [])
            if len(times) >= rule.limit:
                # The window lets one through once the limit-th newest failure leaves it.
                wait = max(wait, times[rule.limit - 1] + self.window - now)
        if wait > 0:
            raise LoginThrottled(max(1, math.ceil(wait)))

    async def failed(self, username: str, address: str) -> None:
        keys = [_key(rule.name, username, address) for rule in self.rules]
        if keys:
            await self.store.add(keys, self.clock(), self.window)

    async def succeeded(self, username: str, address: str) -> None:
        if not self._seen_failures:  # nothing to clear: spare the write
            return
        await self.store.clear([_key(name, username, address) for name in ("pair", "username")])


def _key(rule: str, username: str, address: str) -> str:
    """An opaque key: HMAC of the rule and its subject, so no typed username is stored."""
    name = username.strip().lower()
    subject = {"pair": f"{name}\0{address}", "username": name, "address": address}[rule]
    message = f"{rule}\0{subject}".encode()
    return hmac.new(get_secret_key().encode(), message, hashlib.sha256).hexdigest()


def connect_redis() -> Redis | None:
    """A Redis client when REDIS_URL is set (the app's lifespan owns and closes it)."""
    url = get_auth_settings().REDIS_URL
    return Redis.from_url(url) if url else None


def get_clock() -> Clock:
    """The throttle's clock; tests override this dependency to move time."""
    return time.time


async def get_login_throttle(
    request: Request, db: ReadFirstSessionDep, clock: Annotated[Clock, Depends(get_clock)]
) -> LoginThrottle:
    redis: Redis | None = getattr(request.app.state, "login_throttle_redis", None)
    store: ThrottleStore = (
        RedisStore(redis, get_auth_settings().REDIS_KEY_PREFIX)
        if redis is not None
        else DatabaseStore(db)
    )
    return LoginThrottle(store, clock)


LoginThrottleDep = Annotated[LoginThrottle, Depends(get_login_throttle)]
