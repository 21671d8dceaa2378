"""Every error the OpenAPI schema documents is one its route really answers, word for word.

The cases come from the app's own schema: every documented error status of every operation
(422 keeps FastAPI's validation model and has no example). Each is provoked through HTTP and
the answer's body compared with the documented example, so a new route's examples are
checked too: a documented error with no way to provoke it below fails until one is added.
"""

import errno
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from unittest import mock

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, create_async_engine

from api.app import create_app
from api.settings import get_api_settings
from models.enums import Role
from models.item import Item
from models.reads import Reads, ReadTooLong
from models.user import User
from tests.factories import PASSWORD, auth_headers, make_item, make_user

MISSING_ID = 999_999
MISSING_FILE = f"{'0' * 32}.png"


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    operation: str
    status: int
    example: Any

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.status}"


def documented_errors() -> list[Case]:
    cases = []
    for path, operations in create_app().openapi()["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) < 400 or status == "422":
                    continue
                example = response["content"]["application/json"].get("example")
                cases.append(
                    Case(method.upper(), path, operation["operationId"], int(status), example)
                )
    return cases


CASES = documented_errors()


@dataclass
class World:
    """What the requests need: a client, an item with a sku, users of each role."""

    client: AsyncClient
    app: FastAPI
    item: Item
    other_item: Item
    admin: User
    viewer: User
    as_admin: dict[str, str]
    as_editor: dict[str, str]
    as_viewer: dict[str, str]

    def path(self, case: Case, *, missing: bool = False) -> str:
        item_id = MISSING_ID if missing else self.item.id
        user_id = MISSING_ID if missing else self.viewer.id
        return case.path.format(item_id=item_id, user_id=user_id, file=MISSING_FILE)

    async def call(self, case: Case, headers: dict[str, str], **kwargs: Any) -> Response:
        return await self.client.request(case.method, self.path(case), headers=headers, **kwargs)


@pytest.fixture
async def world(client: AsyncClient, app: FastAPI, db: AsyncSession) -> World:
    admin = await make_user(db, Role.admin, email="admin@example.com")
    editor = await make_user(db, Role.editor)
    viewer = await make_user(db, Role.viewer, email="viewer@example.com")
    return World(
        client=client,
        app=app,
        item=await make_item(db, sku="TAKEN"),
        other_item=await make_item(db),
        admin=admin,
        viewer=viewer,
        as_admin=await auth_headers(db, admin),
        as_editor=await auth_headers(db, editor),
        as_viewer=await auth_headers(db, viewer),
    )


Provoke = Callable[[World, Case], Awaitable[Response]]

# A body each route accepts, for the errors that are looked for after the body is checked.
VALID_BODIES: dict[str, dict[str, Any]] = {
    "update_item": {"quantity": 1},
    "update_user": {"full_name": "Someone"},
    "adjust_stock": {"delta": 1, "reason": "received"},
}


async def no_token(w: World, case: Case) -> Response:
    return await w.call(case, {}, json=VALID_BODIES.get(case.operation, {}))


async def role_too_low(w: World, case: Case) -> Response:
    return await w.call(case, w.as_viewer, json={})


async def missing_path_id(w: World, case: Case) -> Response:
    path = w.path(case, missing=True)
    body = VALID_BODIES.get(case.operation, {})
    return await w.client.request(case.method, path, headers=w.as_admin, json=body)


async def body_too_large(w: World, case: Case) -> Response:
    settings = get_api_settings()
    if case.operation == "upload_image":
        size, kind = settings.MAX_MULTIPART_BODY_BYTES, "multipart/form-data; boundary=b"
    else:
        size, kind = settings.MAX_JSON_BODY_BYTES, "application/json"
    return await w.call(case, {**w.as_admin, "Content-Type": kind}, content=b"x" * (size + 1))


async def broken_multipart(w: World, case: Case) -> Response:
    headers = {**w.as_editor, "Content-Type": "multipart/form-data; boundary=b"}
    return await w.call(case, headers, content=b"--b\r\nno headers, no end")


async def not_an_image(w: World, case: Case) -> Response:
    return await w.call(case, w.as_editor, files={"file": ("a.png", b"plain text", "image/png")})


async def stale_etag(w: World, case: Case) -> Response:
    return await w.call(case, {**w.as_editor, "If-Match": '"999"'}, json={"quantity": 1})


async def stale_etag_on_adjust(w: World, case: Case) -> Response:
    body = VALID_BODIES["adjust_stock"]
    return await w.call(case, {**w.as_editor, "If-Match": '"999"'}, json=body)


async def not_enough_stock(w: World, case: Case) -> Response:
    item = f"/items/{w.item.id}"
    assert (await w.client.patch(item, headers=w.as_editor, json={"quantity": 2})).is_success
    return await w.call(case, w.as_editor, json={"delta": -3, "reason": "sold"})


async def wrong_password(w: World, case: Case) -> Response:
    return await w.client.post("/token", data={"username": w.admin.username, "password": "nope"})


async def throttled_login(w: World, case: Case) -> Response:
    data = {"username": w.admin.username, "password": "wrong password"}
    for _ in range(50):  # past LOGIN_FAILURES_PER_PAIR, whatever it is set to
        r = await w.client.post("/token", data=data)
        if r.status_code != 401:
            return r
    return r


async def throttled_password_change(w: World, case: Case) -> Response:
    body = {"current_password": "not my password", "new_password": "a new password 1"}
    for _ in range(50):  # past LOGIN_FAILURES_PER_PAIR, whatever it is set to
        r = await w.call(case, w.as_viewer, json=body)
        if r.status_code != 400:
            return r
    return r


async def bad_refresh_token(w: World, case: Case) -> Response:
    return await w.client.post("/token/refresh", json={"refresh_token": "not a token"})


async def duplicate_sku_on_create(w: World, case: Case) -> Response:
    return await w.call(case, w.as_editor, json={"name": "Bolt", "quantity": 1, "sku": "TAKEN"})


async def duplicate_sku_on_update(w: World, case: Case) -> Response:
    path = case.path.format(item_id=w.other_item.id)
    return await w.client.patch(path, headers=w.as_editor, json={"sku": "TAKEN"})


async def taken_email(w: World, case: Case) -> Response:
    return await w.call(case, w.as_viewer, json={"email": "admin@example.com"})


async def wrong_current_password(w: World, case: Case) -> Response:
    body = {"current_password": "not my password", "new_password": "a new password 1"}
    return await w.call(case, w.as_viewer, json=body)


async def taken_username(w: World, case: Case) -> Response:
    body = {"username": w.viewer.username, "password": PASSWORD, "role": "viewer"}
    return await w.call(case, w.as_admin, json=body)


async def last_admin(w: World, case: Case) -> Response:
    path = case.path.format(user_id=w.admin.id)
    body = {"role": "viewer"} if case.method == "PATCH" else None
    return await w.client.request(case.method, path, headers=w.as_admin, json=body)


async def database_down(w: World, case: Case) -> Response:
    # Not provokable from outside: nothing a client sends makes the database stop answering.
    # The app's engine is swapped for one whose database cannot be opened.
    working = w.app.state.engine, w.app.state.reads
    broken = create_async_engine("sqlite+aiosqlite:////nonexistent/dir/x.db")
    w.app.state.engine, w.app.state.reads = broken, Reads(broken)
    try:
        return await w.client.get(case.path)
    finally:
        await broken.dispose()
        w.app.state.engine, w.app.state.reads = working


async def upload_folder_failing(w: World, case: Case) -> Response:
    # Not provokable from outside either: the folder fails as it does when it is missing (503)
    # or its disk is full (507); tests/test_storage_faults.py does both on a real file system.
    failure = OSError(errno.ENOSPC if case.status == 507 else errno.ENOENT, "forced")
    with mock.patch("api.storage.tempfile.mkstemp", side_effect=failure):
        return await w.call(case, w.as_editor, files={"file": ("a.png", b"x", "image/png")})


async def search_too_long(w: World, case: Case) -> Response:
    # Not provokable on a small table: a 1-character search scans it well within its 2 s.
    # The search runs inside its real bound, which then reports it stopped (as it does when
    # the timeout interrupts the statement; tests/test_items_search.py stops a long one).
    reads: Reads = w.app.state.reads
    connect = reads.connect

    @asynccontextmanager
    async def stopped(seconds: float | None = None) -> AsyncIterator[AsyncConnection]:
        async with connect(seconds) as conn:
            yield conn
            if seconds is not None:
                raise ReadTooLong()

    with mock.patch.object(reads, "connect", stopped):
        return await w.client.get("/items?q=b", headers=w.as_viewer)


# (operationId, status) → how to provoke it; operationId "*" for what every route does alike.
PROVOKE: dict[tuple[str, int], Provoke] = {
    ("*", 401): no_token,
    ("*", 403): role_too_low,
    ("*", 404): missing_path_id,
    ("*", 413): body_too_large,
    ("upload_image", 400): broken_multipart,
    ("upload_image", 415): not_an_image,
    ("upload_image", 503): upload_folder_failing,
    ("upload_image", 507): upload_folder_failing,
    ("update_item", 412): stale_etag,
    ("adjust_stock", 412): stale_etag_on_adjust,
    ("adjust_stock", 409): not_enough_stock,
    ("login", 401): wrong_password,
    ("login", 429): throttled_login,
    ("change_my_password", 429): throttled_password_change,
    ("refresh", 401): bad_refresh_token,
    ("create_item", 409): duplicate_sku_on_create,
    ("update_item", 409): duplicate_sku_on_update,
    ("update_me", 409): taken_email,
    ("change_my_password", 400): wrong_current_password,
    ("create_user", 409): taken_username,
    ("update_user", 409): last_admin,
    ("delete_user", 409): last_admin,
    ("ready", 503): database_down,
    ("list_items", 503): search_too_long,
}


def test_every_documented_error_has_an_example() -> None:
    assert CASES
    missing = [str(c) for c in CASES if c.example is None]
    assert not missing, f"documented errors without an example: {missing}"


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_documented_error_is_what_the_route_answers(world: World, case: Case) -> None:
    provoke = PROVOKE.get((case.operation, case.status)) or PROVOKE.get(("*", case.status))
    assert provoke, f"{case}: no way to provoke this documented error; add one to PROVOKE"

    r = await provoke(world, case)

    assert r.status_code == case.status, r.text
    assert r.json() == case.example
