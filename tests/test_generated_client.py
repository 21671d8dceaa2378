"""The schema is good enough for a standard generator: openapi-python-client builds a typed
client from /openapi.json without warnings, and that client logs in and creates an item."""

import asyncio
import importlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.enums import Role
from models.item import Item
from tests.factories import PASSWORD, make_user

PACKAGE = "inventory_client"
GENERATOR = Path(sys.executable).with_name("openapi-python-client")


@pytest.fixture
async def generated(client: AsyncClient, tmp_path: Path) -> AsyncIterator[Path]:
    schema = tmp_path / "openapi.json"
    schema.write_text((await client.get("/openapi.json")).text)
    # The generator formats its output with ruff, found on PATH.
    env = {**os.environ, "PATH": f"{GENERATOR.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    # Item images (GET /static/{file}) are binary: the generator's documented way to take
    # content types it has no mapping for.
    config = tmp_path / "config.json"
    images = ("image/jpeg", "image/png", "image/gif", "image/webp")
    overrides = dict.fromkeys(images, "application/octet-stream")
    config.write_text(json.dumps({"content_type_overrides": overrides}))
    command = [str(GENERATOR), "generate", "--path", str(schema), "--meta", "none"]
    command += ["--config", str(config)]
    command += ["--output-path", str(tmp_path / PACKAGE)]
    done = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "warning" not in output.lower(), output
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path / PACKAGE
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


async def test_generated_client_logs_in_and_creates_an_item(
    generated: Path, app: FastAPI, db: AsyncSession
) -> None:
    editor = await make_user(db, Role.editor, username="generated")
    client_module, models = _module("client"), _module("models")
    login, create_item = _module("api.auth.login"), _module("api.items.create_item")
    # The client builds its own httpx client; only the transport is swapped for the app.
    httpx_args: dict[str, Any] = {"transport": ASGITransport(app=app)}

    anonymous = client_module.Client(base_url="http://testserver", httpx_args=httpx_args)
    async with anonymous:
        tokens = await login.asyncio(
            client=anonymous, body=models.BodyLogin(username="generated", password=PASSWORD)
        )
    assert isinstance(tokens, models.TokenPair)

    authed = client_module.AuthenticatedClient(
        base_url="http://testserver", token=tokens.access_token, httpx_args=httpx_args
    )
    body = models.ItemCreate(name="Typed bolt", quantity=7, sku="GEN-1")
    async with authed:
        created = await create_item.asyncio_detailed(client=authed, body=body)
        duplicate = await create_item.asyncio_detailed(client=authed, body=body)

    assert created.status_code == 201
    assert isinstance(created.parsed, models.ItemOut)
    assert (created.parsed.item.name, created.parsed.item.quantity) == ("Typed bolt", 7)
    assert duplicate.status_code == 409
    assert isinstance(duplicate.parsed, models.ErrorOut)
    assert duplicate.parsed.detail == "An item with this sku already exists"
    rows = (await db.scalars(select(Item).where(Item.sku == "GEN-1"))).all()
    assert [(r.id, r.name, r.created_by_id) for r in rows] == [
        (created.parsed.item.id, "Typed bolt", editor.id)
    ]
