"""Password hashing with argon2id, off the event loop and a bounded number at a time."""

import asyncio
from functools import lru_cache
from weakref import WeakKeyDictionary

from anyio import to_thread
from passlib.context import CryptContext

from auth.settings import get_auth_settings

# The longest password anyone can have (the user schemas enforce it); passlib refuses > 4 KiB.
MAX_PASSWORD_LENGTH = 128

_limits: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = WeakKeyDictionary()


@lru_cache
def get_password_context() -> CryptContext:
    s = get_auth_settings()
    return CryptContext(
        schemes=["argon2"],
        deprecated="auto",
        argon2__type="ID",
        argon2__memory_cost=s.ARGON2_MEMORY_COST_KIB,
        argon2__rounds=s.ARGON2_TIME_COST,
        # A stored hash with another time cost needs a re-hash (memory cost is checked by passlib).
        argon2__min_rounds=s.ARGON2_TIME_COST,
        argon2__max_rounds=s.ARGON2_TIME_COST,
        argon2__parallelism=s.ARGON2_PARALLELISM,
    )


@lru_cache
def _dummy_hash() -> str:
    return str(get_password_context().hash("not a real password: evens out login timing"))


def _limit() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    sem = _limits.get(loop)
    if sem is None:
        sem = _limits[loop] = asyncio.Semaphore(get_auth_settings().HASH_CONCURRENCY)
    return sem


async def hash_password(password: str) -> str:
    async with _limit():
        return str(await to_thread.run_sync(get_password_context().hash, password))


async def verify_password(password: str, stored_hash: str | None) -> tuple[bool, str | None]:
    """Check a password; returns (ok, new hash when the stored one uses outdated parameters).

    With no stored hash (unknown user) a dummy hash is verified, so the answer takes as long.
    """
    ctx = get_password_context()
    target = stored_hash or _dummy_hash()
    async with _limit():
        ok, new_hash = await to_thread.run_sync(ctx.verify_and_update, password, target)
    if stored_hash is None:
        return False, None
    return bool(ok), new_hash
