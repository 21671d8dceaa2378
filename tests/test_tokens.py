"""Login, bearer-token validation, refresh rotation and logout; forged, tampered, misused and
outlived tokens are each 401 (or 403) and change nothing."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Request
from httpx import AsyncClient, Response
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from auth import sessions, tokens
from auth.deps import get_principal
from auth.secret import get_secret_key
from auth.settings import get_auth_settings
from auth.tokens import TokenType
from models.base import utcnow
from models.enums import Role
from models.user import AuthSession, User
from tests.conftest import POSTGRES_URL, clear_settings
from tests.factories import PASSWORD, bearer, count, login_pair, make_user, row, sessions_of
from tests.security.conftest import snapshot
from tests.tokens import (
    b64json,
    b64url,
    claims_of,
    fresh_claims,
    hand_made,
    header_of,
    rsa_signed,
    sign,
)

BAD_CREDENTIALS = {"detail": "Incorrect username or password"}
ITEM = {"name": "Forged", "quantity": 1}
TOKEN_KEYS = {"access_token", "token_type", "expires_in", "refresh_token"}


def assert_401(r: Response) -> None:
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == "Bearer"
    assert isinstance(r.json()["detail"], str)


async def me(client: AsyncClient, token: str) -> Response:
    return await client.get("/users/me", headers=bearer(token))


async def refresh(client: AsyncClient, token: str) -> Response:
    return await client.post("/token/refresh", json={"refresh_token": token})


@pytest.fixture
async def user(db: AsyncSession) -> User:
    return await make_user(db, Role.editor, username="alice")


@pytest.fixture
async def pair(db: AsyncSession, user: User) -> tuple[str, str]:
    return await login_pair(db, user)


# --- /token -----------------------------------------------------------------------------


async def test_login_returns_token_pair(client: AsyncClient, db: AsyncSession, user: User) -> None:
    r = await client.post("/token", data={"username": "alice", "password": PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == TOKEN_KEYS
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == get_auth_settings().ACCESS_TOKEN_EXPIRE_MINUTES * 60
    assert r.headers["cache-control"] == "no-store"
    claims = claims_of(body["access_token"])
    assert {"sub", "exp", "iat", "jti", "typ", "sid"} <= set(claims)
    assert claims["sub"] == str(user.id)
    assert claims["exp"] - claims["iat"] == body["expires_in"]
    assert header_of(body["access_token"])["alg"] == "HS256"
    [login] = await sessions_of(db, user)
    assert login.id == claims["sid"]
    assert login.revoked_at is None


async def test_login_tokens_work(client: AsyncClient, user: User) -> None:
    r = await client.post("/token", data={"username": "alice", "password": PASSWORD})
    assert (await me(client, r.json()["access_token"])).status_code == 200
    assert (await refresh(client, r.json()["refresh_token"])).status_code == 200


async def test_login_ignores_username_case(client: AsyncClient, user: User) -> None:
    r = await client.post("/token", data={"username": "ALICE", "password": PASSWORD})
    assert r.status_code == 200
    assert claims_of(r.json()["access_token"])["sub"] == str(user.id)


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("alice", "wrong password"),
        ("nobody", PASSWORD),
        ("alice", PASSWORD.upper()),
        # Input no account can have is just wrong credentials, never a server error.
        ("ali\x00ce", PASSWORD),
        ("alice", "p" * 129),
        ("alice", PASSWORD + "x" * 5000),
    ],
    ids=[
        "wrong password",
        "unknown user",
        "password case matters",
        "NUL in username",
        "129-char password",
        "5000-char password",
    ],
)
async def test_bad_credentials_are_401(
    client: AsyncClient, db: AsyncSession, user: User, username: str, password: str
) -> None:
    r = await client.post("/token", data={"username": username, "password": password})
    assert_401(r)
    assert r.json() == BAD_CREDENTIALS
    assert await count(db, AuthSession) == 0


async def test_longest_allowed_password_logs_in(client: AsyncClient, db: AsyncSession) -> None:
    await make_user(db, username="long", password="p" * 128)
    r = await client.post("/token", data={"username": "long", "password": "p" * 128})
    assert r.status_code == 200


async def test_disabled_user_cannot_log_in(client: AsyncClient, db: AsyncSession) -> None:
    await make_user(db, username="sleepy", is_active=False)
    r = await client.post("/token", data={"username": "sleepy", "password": PASSWORD})
    assert_401(r)
    assert r.json() == BAD_CREDENTIALS
    assert await count(db, AuthSession) == 0


@pytest.mark.parametrize(
    "data",
    [{"username": "alice"}, {"password": PASSWORD}, {}, {"username": "", "password": "x"}],
    ids=["no password", "no user", "empty", "empty username"],
)
async def test_login_with_missing_fields_is_422(
    client: AsyncClient, user: User, data: dict[str, str]
) -> None:
    r = await client.post("/token", data=data)
    assert r.status_code == 422


async def test_login_with_json_body_is_422(client: AsyncClient, user: User) -> None:
    r = await client.post("/token", json={"username": "alice", "password": PASSWORD})
    assert r.status_code == 422


@pytest.mark.parametrize(
    "setting",
    [{"ARGON2_MEMORY_COST_KIB": "128"}, {"ARGON2_TIME_COST": "2"}, {"ARGON2_PARALLELISM": "2"}],
    ids=["memory cost", "time cost", "parallelism"],
)
async def test_login_rehashes_when_argon2_parameters_change(
    client: AsyncClient,
    db: AsyncSession,
    user: User,
    monkeypatch: pytest.MonkeyPatch,
    setting: dict[str, str],
) -> None:
    old = await row(db, User, user.id)
    assert old is not None
    for name, value in setting.items():
        monkeypatch.setenv(name, value)
    clear_settings()
    r = await client.post("/token", data={"username": "alice", "password": PASSWORD})
    assert r.status_code == 200
    new = await row(db, User, user.id)
    assert new is not None
    s = get_auth_settings()
    params = f"m={s.ARGON2_MEMORY_COST_KIB},t={s.ARGON2_TIME_COST},p={s.ARGON2_PARALLELISM}"
    assert params not in old["password_hash"]
    assert f"$argon2id$v=19${params}$" in new["password_hash"]
    r = await client.post("/token", data={"username": "alice", "password": PASSWORD})
    assert r.status_code == 200


async def test_login_keeps_hash_when_parameters_are_unchanged(
    client: AsyncClient, db: AsyncSession, user: User
) -> None:
    old = await row(db, User, user.id)
    assert old is not None
    r = await client.post("/token", data={"username": "alice", "password": PASSWORD})
    assert r.status_code == 200
    new = await row(db, User, user.id)
    assert new is not None
    assert new["password_hash"] == old["password_hash"]


async def test_login_deletes_the_users_expired_logins_only(
    client: AsyncClient, db: AsyncSession, user: User
) -> None:
    other = await make_user(db, Role.viewer, username="bob")
    now = utcnow()
    for id_, owner, expires, revoked in [
        ("a" * 32, user, now - timedelta(seconds=1), None),  # expired: deleted
        ("b" * 32, user, now + timedelta(days=1), now),  # revoked, not expired: kept
        ("c" * 32, other, now - timedelta(days=1), None),  # another user's: kept
    ]:
        db.add(
            AuthSession(
                id=id_,
                user_id=owner.id,
                refresh_token_hash="0" * 64,
                expires_at=expires,
                revoked_at=revoked,
            )
        )
    await db.commit()

    r = await client.post("/token", data={"username": "alice", "password": PASSWORD})

    assert r.status_code == 200
    assert [s.id for s in await sessions_of(db, user)] == [
        "b" * 32,
        claims_of(r.json()["access_token"])["sid"],
    ]
    assert [s.id for s in await sessions_of(db, other)] == ["c" * 32]


@pytest.mark.skipif(bool(POSTGRES_URL), reason="SQLite's query plan")
async def test_expired_logins_are_found_by_index(db: AsyncSession) -> None:
    """Each login deletes its user's expired logins: through an index, however many logins the
    user has (a script that logs in for every run has thousands)."""
    conn = await db.connection()
    compiled = sessions.EXPIRED_LOGINS.compile(dialect=conn.dialect)
    params = tuple(None for _ in compiled.positiontup or ())
    plan = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", params)
    [step] = [row[-1] for row in plan]
    assert step.startswith("SEARCH auth_sessions USING ")  # INDEX or COVERING INDEX
    assert step.endswith("INDEX ix_auth_sessions_user_id_expires_at (user_id=? AND expires_at<?)")


# --- bearer tokens ----------------------------------------------------------------------


async def test_forged_token_with_the_servers_key_is_accepted(
    client: AsyncClient, pair: tuple[str, str]
) -> None:
    """The forging helpers make tokens the server accepts, so the refusals below are real."""
    assert (await me(client, sign(fresh_claims(pair[0])))).status_code == 200
    header = {"alg": "HS256", "typ": "JWT"}
    token = hand_made(header, fresh_claims(pair[0]), hmac_key=get_secret_key())
    assert (await me(client, token)).status_code == 200


def _real_key() -> str:
    return get_secret_key()


_ATTACKER_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_ATTACKER_RSA_PUBLIC_PEM = _ATTACKER_RSA.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)
FAR_FUTURE = 32503680000  # year 3000

Forge = Callable[[dict[str, Any]], str]

FORGERIES: dict[str, Forge] = {
    "alg none": lambda c: hand_made({"alg": "none", "typ": "JWT"}, c, hmac_key=None),
    "alg None": lambda c: hand_made({"alg": "None", "typ": "JWT"}, c, hmac_key=None),
    "alg NONE, hmac kept": lambda c: hand_made({"alg": "NONE"}, c, hmac_key=None) + "c2ln",
    "HS512 with the real key": lambda c: hand_made({"alg": "HS512"}, c, hmac_key=_real_key()),
    "HS384 with the real key": lambda c: hand_made({"alg": "HS384"}, c, hmac_key=_real_key()),
    "HS256 with a guessed key": lambda c: hand_made({"alg": "HS256"}, c, hmac_key="secret"),
    "HS256 with an empty key": lambda c: hand_made({"alg": "HS256"}, c, hmac_key=""),
    "RS256 with the attacker's key": lambda c: rsa_signed({"alg": "RS256"}, c, _ATTACKER_RSA),
    "RS256 header over an HMAC with the real key": lambda c: hand_made(
        {"alg": "RS256", "typ": "JWT"}, c, hmac_key=_real_key()
    ),
    "HS256 keyed with an RSA public key": lambda c: hand_made(
        {"alg": "HS256"}, c, hmac_key=_ATTACKER_RSA_PUBLIC_PEM
    ),
    "kid path traversal to /dev/null": lambda c: hand_made(
        {"alg": "HS256", "kid": "../../../../../../dev/null"}, c, hmac_key=""
    ),
    "kid SQL injection": lambda c: hand_made(
        {"alg": "HS256", "kid": "x' UNION SELECT 'k"}, c, hmac_key="k"
    ),
    "embedded jwk": lambda c: hand_made(
        {"alg": "HS256", "jwk": {"kty": "oct", "k": b64url(b"attacker")}}, c, hmac_key="attacker"
    ),
    "jku to the attacker": lambda c: hand_made(
        {"alg": "HS256", "jku": "https://attacker.example/jwks.json"}, c, hmac_key="attacker"
    ),
    "exp in year 3000 with another key": lambda c: hand_made(
        {"alg": "HS256"}, {**c, "exp": FAR_FUTURE}, hmac_key="another key of thirty-two bytes!"
    ),
}


@pytest.mark.parametrize("name", FORGERIES)
async def test_forged_token_cannot_write(
    client: AsyncClient, db: AsyncSession, pair: tuple[str, str], name: str
) -> None:
    """Each forgery carries the claims of a live login, so only the forgery is wrong."""
    token = FORGERIES[name](fresh_claims(pair[0]))
    before = await snapshot(db)
    assert_401(await client.post("/items", json=ITEM, headers=bearer(token)))
    assert await snapshot(db) == before


@pytest.mark.parametrize(
    "sub",
    [
        lambda user_id: "9" * 30,  # past any id: an integer overflow in the query (500)
        lambda user_id: str(user_id).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")),
        lambda user_id: str(user_id).translate(str.maketrans("0123456789", "０１２３４５６７８９")),
        lambda user_id: f"0{user_id}",
        lambda user_id: f"+{user_id}",
        lambda user_id: str(2**31),
    ],
    ids=["thirty nines", "arabic-indic digits", "fullwidth digits", "leading zero", "plus", "2^31"],
)
async def test_subject_must_be_plain_ascii_digits_within_the_id_range(
    client: AsyncClient, db: AsyncSession, pair: tuple[str, str], sub: Callable[[int], str]
) -> None:
    """Issue 14, point 10: `str.isdigit` let "٢" through as user 2; thirty nines were a 500."""
    claims = fresh_claims(pair[0])
    claims["sub"] = sub(int(claims["sub"]))
    token = hand_made({"alg": "HS256", "typ": "JWT"}, claims, hmac_key=_real_key())
    before = await snapshot(db)
    assert_401(await client.post("/items", json=ITEM, headers=bearer(token)))
    assert_401(await me(client, token))
    assert await snapshot(db) == before


async def test_tampered_payload_is_401(
    client: AsyncClient, db: AsyncSession, pair: tuple[str, str]
) -> None:
    other = await make_user(db, Role.admin)
    header, _, signature = pair[0].split(".")
    payload = b64json(claims_of(pair[0]) | {"sub": str(other.id)})
    before = await snapshot(db)
    assert_401(await client.get("/users", headers=bearer(f"{header}.{payload}.{signature}")))
    assert await snapshot(db) == before


async def test_tampered_signature_is_401(
    client: AsyncClient, db: AsyncSession, pair: tuple[str, str]
) -> None:
    head, payload, sig = pair[0].split(".")
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    before = await snapshot(db)
    r = await client.post("/items", json=ITEM, headers=bearer(f"{head}.{payload}.{flipped}"))
    assert_401(r)
    assert await snapshot(db) == before


async def test_missing_token_is_401(client: AsyncClient) -> None:
    assert_401(await client.get("/users/me"))


async def test_non_bearer_scheme_is_401(client: AsyncClient, pair: tuple[str, str]) -> None:
    assert_401(await client.get("/users/me", headers={"Authorization": f"Basic {pair[0]}"}))


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer",
        "Bearer ",
        "bearer x",
        "Bearer garbage",
        "Bearer a.b",
        "Bearer a.b.c",
        "Bearer ...",
        "Bearer ....",
        "Bearer eyJhbGciOiJIUzI1NiJ9",
        "Bearer Bearer",
        "Bearer " + "x" * 5000,
        "Bearer ünï.cø.de",
    ],
)
async def test_malformed_authorization_is_401(
    client: AsyncClient, db: AsyncSession, authorization: str
) -> None:
    before = await snapshot(db)
    r = await client.post("/items", json=ITEM, headers={b"Authorization": authorization.encode()})
    assert_401(r)
    assert await snapshot(db) == before


async def test_token_in_the_query_string_is_ignored(
    client: AsyncClient, db: AsyncSession, pair: tuple[str, str]
) -> None:
    before = await snapshot(db)
    assert_401(await client.post(f"/items?access_token={pair[0]}", json=ITEM))
    assert await snapshot(db) == before


_AN_HOUR_AGO = int(utcnow().timestamp()) - 3600


@pytest.mark.parametrize(
    "changes",
    [
        {"iat": _AN_HOUR_AGO, "exp": _AN_HOUR_AGO + 60},
        {"sub": None},
        {"sub": "abc"},
        {"sub": "-1"},
        {"sub": "1.0"},
        {"sub": 1},
        {"sub": ""},
        {"sub": "1 OR 1=1"},
        {"sid": None},
        {"sid": 5},
        {"jti": None},
        {"exp": None},
        {"iat": None},
        {"typ": None},
        {"typ": "admin"},
        {"typ": "refresh"},
        {"sid": "not-a-login"},
    ],
    ids=lambda c: ",".join(f"{k}={v!r}" for k, v in c.items()),
)
async def test_token_with_bad_claims_is_401(
    client: AsyncClient, db: AsyncSession, pair: tuple[str, str], changes: dict[str, Any]
) -> None:
    """Signed with the server's own key: only the claims are wrong."""
    before = await snapshot(db)
    token = sign(fresh_claims(pair[0], **changes))
    assert_401(await client.post("/items", json=ITEM, headers=bearer(token)))
    assert await snapshot(db) == before


async def test_token_of_another_users_login_is_401(
    client: AsyncClient, db: AsyncSession, pair: tuple[str, str]
) -> None:
    """A `sub` and a `sid` that do not belong together (signed with the real key)."""
    other = await make_user(db)
    assert_401(await me(client, sign(fresh_claims(pair[0], sub=str(other.id)))))


async def test_deleted_users_token_is_401(
    client: AsyncClient, db: AsyncSession, user: User, pair: tuple[str, str]
) -> None:
    await db.execute(delete(User).where(User.id == user.id))
    await db.commit()
    before = await snapshot(db)
    assert_401(await client.post("/items", json=ITEM, headers=bearer(pair[0])))
    assert await snapshot(db) == before


async def test_disabled_users_token_is_401(
    client: AsyncClient, db: AsyncSession, user: User, pair: tuple[str, str]
) -> None:
    """Even with the login itself untouched, the active flag is read on every request."""
    await db.execute(update(User).where(User.id == user.id).values(is_active=False))
    await db.commit()
    before = await snapshot(db)
    assert_401(await client.post("/items", json=ITEM, headers=bearer(pair[0])))
    assert await snapshot(db) == before
    assert all(s.revoked_at is None for s in await sessions_of(db, user))


async def test_demoted_editor_is_refused_on_the_next_request(
    client: AsyncClient, db: AsyncSession, user: User, pair: tuple[str, str]
) -> None:
    admin_access, _ = await login_pair(db, await make_user(db, Role.admin))
    demote = await client.patch(
        f"/users/{user.id}", json={"role": "viewer"}, headers=bearer(admin_access)
    )
    assert demote.status_code == 200
    before = await snapshot(db)
    r = await client.post("/items", json=ITEM, headers=bearer(pair[0]))
    assert r.status_code == 403
    assert await snapshot(db) == before


async def test_token_issued_before_password_change_is_401(
    client: AsyncClient, db: AsyncSession, user: User, pair: tuple[str, str]
) -> None:
    fresh_access, _ = await login_pair(db, user)
    r = await client.post(
        "/users/me/password",
        json={"current_password": PASSWORD, "new_password": "another good password"},
        headers=bearer(fresh_access),
    )
    assert r.status_code == 204
    assert_401(await me(client, pair[0]))
    login = await client.post(
        "/token", data={"username": "alice", "password": "another good password"}
    )
    assert (await me(client, login.json()["access_token"])).status_code == 200


async def test_refresh_token_is_not_an_access_token(
    client: AsyncClient, db: AsyncSession, pair: tuple[str, str]
) -> None:
    before = await snapshot(db)
    assert_401(await client.post("/items", json=ITEM, headers=bearer(pair[1])))
    assert await snapshot(db) == before


async def test_access_token_is_not_a_refresh_token(
    client: AsyncClient, db: AsyncSession, pair: tuple[str, str]
) -> None:
    before = await snapshot(db)
    r = await refresh(client, pair[0])
    assert_401(r)
    assert "access_token" not in r.text
    assert await snapshot(db) == before


# --- /token/refresh ---------------------------------------------------------------------


async def test_refresh_rotates_the_pair(
    client: AsyncClient, db: AsyncSession, user: User, pair: tuple[str, str]
) -> None:
    [before] = await sessions_of(db, user)
    old_hash = before.refresh_token_hash
    r = await refresh(client, pair[1])
    assert r.status_code == 200
    body = r.json()
    assert set(body) == TOKEN_KEYS
    assert r.headers["cache-control"] == "no-store"
    assert body["refresh_token"] != pair[1]
    assert claims_of(body["refresh_token"])["sid"] == claims_of(pair[1])["sid"]
    [after] = await sessions_of(db, user)
    assert after.refresh_token_hash != old_hash
    assert after.revoked_at is None
    assert (await me(client, body["access_token"])).status_code == 200
    assert (await refresh(client, body["refresh_token"])).status_code == 200


async def test_refresh_token_is_spent_after_use(client: AsyncClient, pair: tuple[str, str]) -> None:
    assert (await refresh(client, pair[1])).status_code == 200
    assert_401(await refresh(client, pair[1]))


async def test_refresh_reuse_revokes_the_whole_login(
    client: AsyncClient, db: AsyncSession, user: User, pair: tuple[str, str]
) -> None:
    newer = (await refresh(client, pair[1])).json()
    r = await refresh(client, pair[1])
    assert_401(r)
    assert_401(await me(client, newer["access_token"]))
    assert_401(await refresh(client, newer["refresh_token"]))
    assert_401(await me(client, pair[0]))
    [login] = await sessions_of(db, user)
    assert login.revoked_at is not None  # committed, although the request answered 401


async def test_refresh_reuse_leaves_other_logins_alone(
    client: AsyncClient, db: AsyncSession, user: User, pair: tuple[str, str]
) -> None:
    other_access, other_refresh = await login_pair(db, user)
    await refresh(client, pair[1])
    assert_401(await refresh(client, pair[1]))
    assert (await me(client, other_access)).status_code == 200
    assert (await refresh(client, other_refresh)).status_code == 200


async def test_refresh_of_disabled_user_is_401(
    client: AsyncClient, db: AsyncSession, user: User, pair: tuple[str, str]
) -> None:
    await db.execute(update(User).where(User.id == user.id).values(is_active=False))
    await db.commit()
    assert_401(await refresh(client, pair[1]))


async def test_refresh_of_deleted_user_is_401(
    client: AsyncClient, db: AsyncSession, user: User, pair: tuple[str, str]
) -> None:
    await db.execute(delete(User).where(User.id == user.id))
    await db.commit()
    assert_401(await refresh(client, pair[1]))


async def test_a_remembered_access_token_still_expires(
    client: AsyncClient, pair: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token verified once is remembered (auth/tokens.decode), and refused from its `exp`
    on without being verified again."""
    assert (await me(client, pair[0])).status_code == 200
    expires_at = tokens.decode(pair[0], TokenType.access).expires_at
    monkeypatch.setattr(tokens, "utcnow", lambda: expires_at)
    assert_401(await me(client, pair[0]))


async def test_a_remembered_access_token_is_refused_under_another_key(
    client: AsyncClient, pair: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await me(client, pair[0])).status_code == 200
    monkeypatch.setenv("SECRET_KEY", "another key that is long enough to sign with " * 2)
    clear_settings()
    assert_401(await me(client, pair[0]))


async def test_the_caller_already_in_the_session_is_the_principal(
    app: FastAPI, db: AsyncSession, user: User, pair: tuple[str, str]
) -> None:
    """get_principal attaches the caller's row to the request's session; a session that
    loaded that user before (a dependency declared first) gets its own instance back."""
    loaded = await db.get(User, user.id)
    request = Request({"type": "http", "app": app, "headers": []})
    principal = await get_principal(request, db, pair[0])
    assert principal.user is loaded
    assert not db.dirty


async def test_expired_refresh_token_is_401(
    client: AsyncClient, db: AsyncSession, user: User, pair: tuple[str, str]
) -> None:
    now = int(utcnow().timestamp())
    token = sign(fresh_claims(pair[1], iat=now - 100, exp=now - 1))
    assert_401(await refresh(client, token))
    assert all(s.revoked_at is None for s in await sessions_of(db, user))


async def test_refresh_with_forged_signature_is_401_and_revokes_nothing(
    client: AsyncClient, db: AsyncSession, user: User, pair: tuple[str, str]
) -> None:
    token = sign(fresh_claims(pair[1]), key="another key that is long enough to be a key")
    assert_401(await refresh(client, token))
    assert all(s.revoked_at is None for s in await sessions_of(db, user))


@pytest.mark.parametrize(
    "payload",
    [{}, {"refresh_token": ""}, {"refresh_token": None}, {"refresh_token": "x", "extra": 1}],
)
async def test_refresh_with_invalid_body_is_422(
    client: AsyncClient, payload: dict[str, Any]
) -> None:
    r = await client.post("/token/refresh", json=payload)
    assert r.status_code == 422


# --- /logout ----------------------------------------------------------------------------


async def test_logout_ends_this_login_only(
    client: AsyncClient, db: AsyncSession, user: User, pair: tuple[str, str]
) -> None:
    other_access, other_refresh = await login_pair(db, user)
    r = await client.post("/logout", headers=bearer(pair[0]))
    assert r.status_code == 204
    assert r.content == b""
    assert_401(await me(client, pair[0]))
    assert_401(await refresh(client, pair[1]))
    assert (await me(client, other_access)).status_code == 200
    revoked = {s.id: s.revoked_at is not None for s in await sessions_of(db, user)}
    assert revoked == {claims_of(pair[0])["sid"]: True, claims_of(other_access)["sid"]: False}
    assert (await refresh(client, other_refresh)).status_code == 200


async def test_logout_with_refresh_token_also_ends_that_login(
    client: AsyncClient, db: AsyncSession, user: User, pair: tuple[str, str]
) -> None:
    other_access, other_refresh = await login_pair(db, user)
    r = await client.post("/logout", json={"refresh_token": other_refresh}, headers=bearer(pair[0]))
    assert r.status_code == 204
    assert_401(await me(client, other_access))
    assert all(s.revoked_at is not None for s in await sessions_of(db, user))


async def test_logout_all_ends_every_login_of_the_user_only(
    client: AsyncClient, db: AsyncSession, user: User, pair: tuple[str, str]
) -> None:
    second_access, second_refresh = await login_pair(db, user)
    bystander = await make_user(db)
    bystander_access, _ = await login_pair(db, bystander)
    r = await client.post("/logout", params={"all": "true"}, headers=bearer(pair[0]))
    assert r.status_code == 204
    for token in (pair[0], second_access):
        assert_401(await me(client, token))
    for token in (pair[1], second_refresh):
        assert_401(await refresh(client, token))
    assert all(s.revoked_at is not None for s in await sessions_of(db, user))
    assert (await me(client, bystander_access)).status_code == 200
    assert all(s.revoked_at is None for s in await sessions_of(db, bystander))


async def test_logout_with_another_users_refresh_token_ends_only_the_callers_login(
    client: AsyncClient, db: AsyncSession, user: User, pair: tuple[str, str]
) -> None:
    """Issue 14, point 12: the foreign token made it a 401 that kept the caller logged in."""
    other = await make_user(db)
    other_access, other_refresh = await login_pair(db, other)
    r = await client.post("/logout", json={"refresh_token": other_refresh}, headers=bearer(pair[0]))
    assert r.status_code == 204
    assert [s.revoked_at is not None for s in await sessions_of(db, user)] == [True]
    assert all(s.revoked_at is None for s in await sessions_of(db, other))
    assert_401(await me(client, pair[0]))
    assert (await me(client, other_access)).status_code == 200
    assert (await refresh(client, other_refresh)).status_code == 200  # ignored, still valid


async def test_logout_with_garbage_refresh_token_ends_the_callers_login(
    client: AsyncClient, db: AsyncSession, user: User, pair: tuple[str, str]
) -> None:
    r = await client.post("/logout", json={"refresh_token": "garbage"}, headers=bearer(pair[0]))
    assert r.status_code == 204
    assert [s.revoked_at is not None for s in await sessions_of(db, user)] == [True]
    assert_401(await me(client, pair[0]))


async def test_logout_without_token_is_401(client: AsyncClient) -> None:
    assert_401(await client.post("/logout"))


async def test_logout_with_spent_access_token_is_401(
    client: AsyncClient, pair: tuple[str, str]
) -> None:
    assert (await client.post("/logout", headers=bearer(pair[0]))).status_code == 204
    assert_401(await client.post("/logout", headers=bearer(pair[0])))
