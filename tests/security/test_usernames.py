"""Usernames that only look like another: case variants collide, look-alike letters are refused."""

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from models.user import User
from tests.factories import PASSWORD, auth_headers, make_user
from tests.security.conftest import snapshot


@pytest.fixture
async def existing(db: AsyncSession) -> User:
    return await make_user(db, username="admin")


@pytest.mark.parametrize(
    ("username", "status"),
    [
        *((name, 409) for name in ["ADMIN", "Admin", "aDmIn"]),  # the same name in any case
        *(
            (name, 422)
            for name in [
                "\u0430dmin",  # Cyrillic small a
                "\u0391dmin",  # Greek Alpha
                "\uff41dmin",  # fullwidth a
                "ad\u200bmin",  # zero-width space
                "admin\u00a0",  # no-break space
                "a\u0301dmin",  # combining accent
                "\u212aate",  # Kelvin sign, lower-cases to "k"
                "adm\u0131n",  # dotless i
                "admin ",
                "adm in",
                "admin\u0000",
                "ad/../min",
            ]
        ),
    ],
)
async def test_case_variants_conflict_and_look_alikes_are_refused(
    client: AsyncClient, db: AsyncSession, admin: User, existing: User, username: str, status: int
) -> None:
    headers = await auth_headers(db, admin)
    before = await snapshot(db)
    r = await client.post(
        "/users", json={"username": username, "password": "long enough pw"}, headers=headers
    )
    assert r.status_code == status
    assert await snapshot(db) == before


async def test_look_alike_login_does_not_reach_the_real_account(
    client: AsyncClient, db: AsyncSession, existing: User
) -> None:
    before = await snapshot(db)
    r = await client.post("/token", data={"username": "\u0430dmin", "password": PASSWORD})
    after = await snapshot(db)
    assert r.status_code == 401
    assert after["auth_sessions"] == before["auth_sessions"]
    assert after["users"] == before["users"]
