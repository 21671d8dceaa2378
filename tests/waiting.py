"""Waiting in tests: on a condition with a deadline, never for a fixed time."""

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def until(condition: Callable[[], bool], seconds: float = 10) -> None:
    """Yield to the event loop until `condition()` holds; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {seconds} s: {condition}")
        await asyncio.sleep(0.001)


def polled(condition: Callable[[], T], seconds: float = 10) -> T:
    """`until` without an event loop: call `condition()` until it returns something true, and
    return that; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {seconds} s: {condition}")
        time.sleep(0.05)
    return result
