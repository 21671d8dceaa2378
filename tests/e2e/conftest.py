"""Debian's Chromium, driven by Playwright (its own browser download does not work here).

`make e2e` installs the `chromium` package with apt when /usr/bin/chromium is missing; without
it these tests are skipped with that hint.
"""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, sync_playwright

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Without the networking flags the browser's background connections fail by the dozen on a
# closed network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).parent / "screenshots"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    if not shutil.which(CHROMIUM):
        message = f"{CHROMIUM} not found: `make e2e` installs Debian's chromium with apt"
        if os.environ.get("CI"):  # CI installs it first (`make chromium`): never skip there
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            user_data_dir=tmp_path / "chromium-profile",  # fresh each test
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def screenshots(request: pytest.FixtureRequest) -> Path:
    folder = SCREENSHOTS / str(request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    print(f"screenshots: {folder}")
    return folder
