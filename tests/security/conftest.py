"""Shared arrangements for the attack suite: one user per role and a snapshot of every table."""

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from auth.throttle import get_clock
from models.enums import Role
from models.tables import metadata
from models.user import User
from tests.factories import make_user

Snapshot = dict[str, list[tuple[Any, ...]]]


async def snapshot(db: AsyncSession) -> Snapshot:
    """Every committed row of every table, read on a connection of its own (so the test's
    session and the objects it holds are left alone)."""
    state: Snapshot = {}
    engine = db.bind
    assert isinstance(engine, AsyncEngine)
    async with engine.connect() as conn:
        for table in metadata.sorted_tables:
            rows = await conn.execute(select(table).order_by(*table.primary_key.columns))
            state[table.name] = [tuple(row) for row in rows]
    return state


@pytest.fixture
async def admin(db: AsyncSession) -> User:
    return await make_user(db, Role.admin, username="root")


@pytest.fixture
async def editor(db: AsyncSession) -> User:
    return await make_user(db, Role.editor, username="eddie")


@pytest.fixture
async def viewer(db: AsyncSession) -> User:
    return await make_user(db, Role.viewer, username="vera")


class FakeClock:
    """The login throttle's clock, moved by hand instead of sleeping."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(app: FastAPI) -> FakeClock:
    fake = FakeClock()

    def fake_clock() -> Callable[[], float]:
        return fake

    app.dependency_overrides[get_clock] = fake_clock
    return fake
