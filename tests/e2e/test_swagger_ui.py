"""A person's first visit: /docs in a real browser against the real server."""

import json
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, Route, expect

from tests.server import running_server

pytestmark = pytest.mark.e2e

ADMIN_PASSWORD = "swagger walkthrough 1"
BODY = {"name": "Hex bolt M8", "quantity": 40, "sku": "E2E-BOLT-M8"}


def _expect_status(page: Page, operation: str, status: str) -> None:
    """The server's answer as Swagger UI renders it (not the header row, not the docs)."""
    cell = page.locator(f"{operation} .live-responses-table tr.response .response-col_status")
    expect(cell).to_have_text(status)


def _open_authorize(page: Page) -> None:
    page.locator(".auth-wrapper button.authorize").click()
    expect(page.locator(".modal-ux")).to_be_visible()


def test_authorize_create_an_item_then_log_out(
    browser: BrowserContext, screenshots: Path, tmp_path: Path
) -> None:
    elsewhere: list[str] = []

    def only_this_server(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    browser.route("**/*", only_this_server)
    with running_server(tmp_path / "data", ADMIN_PASSWORD) as base:
        page = browser.new_page()
        page.goto(f"{base}/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("Inventory")
        page.screenshot(path=screenshots / "1-docs.png", full_page=True)

        _open_authorize(page)
        page.locator("#oauth_username").fill("admin")
        page.locator("#oauth_password").fill(ADMIN_PASSWORD)
        page.locator(".modal-ux button.authorize").click()
        expect(page.locator(".modal-ux button", has_text="Logout")).to_be_visible()
        page.screenshot(path=screenshots / "2-authorized.png")
        page.locator(".modal-ux button.btn-done").click()

        create = "#operations-items-create_item"
        page.locator(f"{create} .opblock-summary").first.click()
        page.locator(f"{create} button.try-out__btn").click()
        page.locator(f"{create} textarea.body-param__text").fill(json.dumps(BODY))
        page.locator(f"{create} button.execute").click()
        _expect_status(page, create, "201")
        expect(page.locator(f"{create} .live-responses-table")).to_contain_text("E2E-BOLT-M8")
        page.locator(f"{create} .live-responses-table").scroll_into_view_if_needed()
        page.screenshot(path=screenshots / "3-created.png")

        _open_authorize(page)
        page.locator(".modal-ux button", has_text="Logout").click()
        expect(page.locator("#oauth_username")).to_be_visible()
        page.locator(".modal-ux button.btn-done").click()
        page.locator(f"{create} button.execute").click()
        _expect_status(page, create, "401")
        page.locator(f"{create} .live-responses-table").scroll_into_view_if_needed()
        page.screenshot(path=screenshots / "4-logged-out.png")

        # What the server holds afterwards: exactly the one item the browser created.
        items = httpx.get(f"{base}/items").json()["items"]
    assert [(i["name"], i["quantity"], i["sku"]) for i in items] == [
        ("Hex bolt M8", 40, "E2E-BOLT-M8")
    ]
    assert elsewhere == []
