"""Password hashing runs in its own threads, below the priority of request handling."""

import os
import sys
import threading

import pytest

from auth import passwords


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
async def test_hashes_run_in_threads_of_lower_priority() -> None:
    def where() -> tuple[str, int]:
        thread = threading.current_thread().name
        return thread, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    thread, nice = await passwords._in_pool(where)

    assert thread.startswith("argon2")
    loop = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())  # the loop's own
    assert nice == min(passwords.LOWEST_PRIORITY, loop + passwords.HASH_THREAD_NICE)
    if loop < passwords.LOWEST_PRIORITY:  # (a suite run under `nice -n 19` has no lower)
        assert loop < nice


async def test_hash_and_verify_round_trip() -> None:
    stored = await passwords.hash_password("correct horse battery")
    assert await passwords.verify_password("correct horse battery", stored) == (True, None)
    assert (await passwords.verify_password("wrong horse battery", stored))[0] is False
