"""Password hashing with argon2id: off the event loop, a bounded number at a time, and at a
lower CPU priority than request handling.

argon2 is made to be slow and memory-hard, so a login storm would otherwise take every core
from the event loops and stall all other requests. The hashes run in this process's own
thread pool (HASH_CONCURRENCY threads) whose threads lower their OS priority: they use every
idle cycle, and yield the core whenever a request has work to do.
"""

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import TypeVar

from passlib.context import CryptContext

from auth.settings import get_auth_settings
from models.settings import cached_setting

# The longest password anyone can have (the user schemas enforce it); passlib refuses > 4 KiB.
MAX_PASSWORD_LENGTH = 128

# Added to the service's own nice value for the hashing threads, on Linux (19 is the lowest
# priority): below the event loop's, also when the service itself runs under `nice`.
HASH_THREAD_NICE = 10
LOWEST_PRIORITY = 19

T = TypeVar("T")


@cached_setting
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


def _lower_priority() -> None:
    # On Linux, PRIO_PROCESS with a thread id sets that one thread's nice value.
    # Elsewhere hashing still works, at normal priority.
    with contextlib.suppress(AttributeError, OSError):
        thread = threading.get_native_id()
        own = os.getpriority(os.PRIO_PROCESS, thread)  # a new thread starts at the process's
        os.setpriority(os.PRIO_PROCESS, thread, min(LOWEST_PRIORITY, own + HASH_THREAD_NICE))


@lru_cache
def _hashing_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(
        max_workers=get_auth_settings().HASH_CONCURRENCY,
        thread_name_prefix="argon2",
        initializer=_lower_priority,
    )


async def _in_pool(work: Callable[..., T], *args: object) -> T:
    return await asyncio.get_running_loop().run_in_executor(_hashing_pool(), work, *args)


async def hash_password(password: str) -> str:
    return str(await _in_pool(get_password_context().hash, password))


async def verify_password(password: str, stored_hash: str | None) -> tuple[bool, str | None]:
    """Check a password; returns (ok, new hash when the stored one uses outdated parameters).

    With no stored hash (unknown user) a dummy hash is verified, so the answer takes as long.
    """
    ctx = get_password_context()
    target = stored_hash or _dummy_hash()
    ok, new_hash = await _in_pool(ctx.verify_and_update, password, target)
    if stored_hash is None:
        return False, None
    return bool(ok), new_hash
