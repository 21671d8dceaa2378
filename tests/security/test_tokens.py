"""Forged, tampered, misused and outlived tokens: each is 401 (or 403) and changes nothing."""

import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from auth.secret import get_secret_key
from models.enums import Role
from models.user import AuthSession, User
from tests.factories import PASSWORD, bearer, login_pair, make_user
from tests.security.conftest import snapshot
from tests.security.tokens import b64, claims_of, hmac_token, signing_input, unsigned_token

ITEM = {"name": "Forged", "quantity": 1}
FAR_FUTURE = 32503680000  # year 3000

_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PUBLIC_PEM = _rsa.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)


def _rs256(header: dict[str, Any], payload: dict[str, Any]) -> str:
    head = signing_input(header, payload)
    return f"{head}.{b64(_rsa.sign(head.encode(), padding.PKCS1v15(), hashes.SHA256()))}"


def _real_key() -> bytes:
    return get_secret_key().encode()


Forge = Callable[[dict[str, Any]], str]

FORGERIES: dict[str, Forge] = {
    "alg none": lambda c: unsigned_token({"alg": "none", "typ": "JWT"}, c),
    "alg None": lambda c: unsigned_token({"alg": "None", "typ": "JWT"}, c),
    "alg NONE, hmac kept": lambda c: unsigned_token({"alg": "NONE"}, c) + "c2ln",
    "HS512 with the real key": lambda c: hmac_token({"alg": "HS512"}, c, _real_key()),
    "HS384 with the real key": lambda c: hmac_token({"alg": "HS384"}, c, _real_key()),
    "HS256 with a guessed key": lambda c: hmac_token({"alg": "HS256"}, c, b"secret"),
    "HS256 with an empty key": lambda c: hmac_token({"alg": "HS256"}, c, b""),
    "RS256 with the attacker's key": lambda c: _rs256({"alg": "RS256"}, c),
    "HS256 keyed with an RSA public key": lambda c: hmac_token({"alg": "HS256"}, c, RSA_PUBLIC_PEM),
    "kid path traversal to /dev/null": lambda c: hmac_token(
        {"alg": "HS256", "kid": "../../../../../../dev/null"}, c, b""
    ),
    "kid SQL injection": lambda c: hmac_token(
        {"alg": "HS256", "kid": "x' UNION SELECT 'k"}, c, b"k"
    ),
    "embedded jwk": lambda c: hmac_token(
        {"alg": "HS256", "jwk": {"kty": "oct", "k": b64(b"attacker")}}, c, b"attacker"
    ),
    "jku to the attacker": lambda c: hmac_token(
        {"alg": "HS256", "jku": "https://attacker.example/jwks.json"}, c, b"attacker"
    ),
    "exp in year 3000 with another key": lambda c: hmac_token(
        {"alg": "HS256"}, {**c, "exp": FAR_FUTURE}, b"another key of thirty-two bytes!"
    ),
}


@pytest.fixture
async def claims(db: AsyncSession, editor: User) -> dict[str, Any]:
    """The claims of a real, live access token of the editor (so only the forgery is wrong)."""
    access, _ = await login_pair(db, editor)
    return claims_of(access)


@pytest.mark.parametrize("name", FORGERIES)
async def test_forged_token_cannot_write(
    client: AsyncClient, db: AsyncSession, claims: dict[str, Any], name: str
) -> None:
    token = FORGERIES[name](claims)
    before = await snapshot(db)
    r = await client.post("/items", json=ITEM, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert await snapshot(db) == before


async def test_tampered_payload_keeps_no_signature(
    client: AsyncClient, db: AsyncSession, editor: User, admin: User
) -> None:
    access, _ = await login_pair(db, editor)
    head, _payload, sig = access.split(".")
    claims = {**claims_of(access), "sub": str(admin.id)}
    forged = f"{signing_input({'alg': 'HS256', 'typ': 'JWT'}, claims).split('.')[1]}"
    before = await snapshot(db)
    r = await client.get("/users", headers={"Authorization": f"Bearer {head}.{forged}.{sig}"})
    assert r.status_code == 401
    assert await snapshot(db) == before


async def test_tampered_signature_is_refused(
    client: AsyncClient, db: AsyncSession, editor: User
) -> None:
    access, _ = await login_pair(db, editor)
    head, payload, sig = access.split(".")
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    before = await snapshot(db)
    r = await client.post(
        "/items", json=ITEM, headers={"Authorization": f"Bearer {head}.{payload}.{flipped}"}
    )
    assert r.status_code == 401
    assert await snapshot(db) == before


@pytest.mark.parametrize(
    "change",
    [
        {"exp": int(time.time()) - 10},  # expired, real key
        {"typ": "refresh"},
        {"typ": None},
        {"sid": "no-such-login"},
        {"sub": "1 OR 1=1"},
        {"sub": 1},
    ],
    ids=["expired", "typ refresh", "no typ", "unknown sid", "sub injection", "sub int"],
)
async def test_wrong_claims_signed_with_the_real_key_are_refused(
    client: AsyncClient, db: AsyncSession, claims: dict[str, Any], change: dict[str, Any]
) -> None:
    payload = {k: v for k, v in {**claims, **change}.items() if v is not None}
    token = hmac_token({"alg": "HS256", "typ": "JWT"}, payload, _real_key())
    before = await snapshot(db)
    r = await client.post("/items", json=ITEM, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
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
    client: AsyncClient,
    db: AsyncSession,
    claims: dict[str, Any],
    sub: Callable[[int], str],
) -> None:
    """Issue 14, point 10: `str.isdigit` let "٢" through as user 2; thirty nines were a 500."""
    payload = {**claims, "sub": sub(int(claims["sub"]))}
    token = hmac_token({"alg": "HS256", "typ": "JWT"}, payload, _real_key())
    before = await snapshot(db)
    for method, path in (("POST", "/items"), ("GET", "/users/me")):
        r = await client.request(
            method, path, json=ITEM if method == "POST" else None, headers=bearer(token)
        )
        assert r.status_code == 401, path
        assert r.json() == {"detail": "Could not validate credentials"}
    assert await snapshot(db) == before


@pytest.mark.parametrize(
    "authorization",
    ["Bearer", "Bearer ", "Basic cm9vdDpwYXNzd29yZA==", "Bearer a.b", "Bearer ....", "bearer x"],
)
async def test_malformed_authorization_headers_are_401(
    client: AsyncClient, db: AsyncSession, authorization: str
) -> None:
    before = await snapshot(db)
    r = await client.post("/items", json=ITEM, headers={"Authorization": authorization})
    assert r.status_code == 401
    assert await snapshot(db) == before


async def test_token_in_the_query_string_is_ignored(
    client: AsyncClient, db: AsyncSession, editor: User
) -> None:
    access, _ = await login_pair(db, editor)
    before = await snapshot(db)
    r = await client.post(f"/items?access_token={access}", json=ITEM)
    assert r.status_code == 401
    assert await snapshot(db) == before


async def test_refresh_token_is_not_an_access_token(
    client: AsyncClient, db: AsyncSession, editor: User
) -> None:
    _, refresh = await login_pair(db, editor)
    before = await snapshot(db)
    r = await client.post("/items", json=ITEM, headers={"Authorization": f"Bearer {refresh}"})
    assert r.status_code == 401
    assert await snapshot(db) == before


async def test_access_token_is_not_a_refresh_token(
    client: AsyncClient, db: AsyncSession, editor: User
) -> None:
    access, _ = await login_pair(db, editor)
    before = await snapshot(db)
    r = await client.post("/token/refresh", json={"refresh_token": access})
    assert r.status_code == 401
    assert "access_token" not in r.text
    assert await snapshot(db) == before


async def test_replayed_refresh_token_ends_the_whole_login(
    client: AsyncClient, db: AsyncSession, editor: User
) -> None:
    _, refresh = await login_pair(db, editor)
    first = await client.post("/token/refresh", json={"refresh_token": refresh})
    assert first.status_code == 200
    replay = await client.post("/token/refresh", json={"refresh_token": refresh})
    new_access = first.json()["access_token"]
    after = await client.get("/users/me", headers={"Authorization": f"Bearer {new_access}"})
    again = await client.post(
        "/token/refresh", json={"refresh_token": first.json()["refresh_token"]}
    )
    assert (replay.status_code, after.status_code, again.status_code) == (401, 401, 401)
    logins = (await db.scalars(select(AuthSession).where(AuthSession.user_id == editor.id))).all()
    assert len(logins) == 1
    assert logins[0].revoked_at is not None


async def test_token_of_a_deleted_user_is_401(
    client: AsyncClient, db: AsyncSession, admin: User
) -> None:
    doomed = await make_user(db, Role.editor)
    access, _ = await login_pair(db, doomed)
    await db.delete(doomed)
    await db.commit()
    before = await snapshot(db)
    r = await client.post("/items", json=ITEM, headers={"Authorization": f"Bearer {access}"})
    assert r.status_code == 401
    assert await snapshot(db) == before


async def test_token_of_a_disabled_user_is_401(
    client: AsyncClient, db: AsyncSession, admin: User
) -> None:
    user = await make_user(db, Role.admin)
    access, _ = await login_pair(db, user)
    user.is_active = False
    await db.commit()
    before = await snapshot(db)
    r = await client.get("/users", headers={"Authorization": f"Bearer {access}"})
    assert r.status_code == 401
    assert await snapshot(db) == before


async def test_demoted_editor_is_refused_on_the_next_request(
    client: AsyncClient, db: AsyncSession, editor: User, admin: User
) -> None:
    access, _ = await login_pair(db, editor)
    headers = {"Authorization": f"Bearer {access}"}
    admin_access, _ = await login_pair(db, admin)
    demote = await client.patch(
        f"/users/{editor.id}",
        json={"role": "viewer"},
        headers={"Authorization": f"Bearer {admin_access}"},
    )
    assert demote.status_code == 200
    before = await snapshot(db)
    r = await client.post("/items", json=ITEM, headers=headers)
    assert r.status_code == 403
    assert await snapshot(db) == before


async def test_token_after_logout_is_401(
    client: AsyncClient, db: AsyncSession, editor: User
) -> None:
    access, refresh = await login_pair(db, editor)
    headers = {"Authorization": f"Bearer {access}"}
    assert (await client.post("/logout", headers=headers)).status_code == 204
    before = await snapshot(db)
    r = await client.post("/items", json=ITEM, headers=headers)
    again = await client.post("/token/refresh", json={"refresh_token": refresh})
    assert (r.status_code, again.status_code) == (401, 401)
    assert await snapshot(db) == before


async def test_token_after_password_change_is_401(
    client: AsyncClient, db: AsyncSession, editor: User
) -> None:
    access, _ = await login_pair(db, editor)
    headers = {"Authorization": f"Bearer {access}"}
    changed = await client.post(
        "/users/me/password",
        json={"current_password": PASSWORD, "new_password": "a brand new password"},
        headers=headers,
    )
    assert changed.status_code == 204
    before = await snapshot(db)
    r = await client.post("/items", json=ITEM, headers=headers)
    assert r.status_code == 401
    assert await snapshot(db) == before
