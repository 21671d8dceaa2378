"""docs/api.md, the repository's copy of the HTTP contract, names exactly the app's routes.

Sections between `<!-- not-yet-implemented -->` and `<!-- /not-yet-implemented -->` describe
what the code does not do yet and are skipped; remove the markers with the code that does it.
"""

import re
from pathlib import Path

import pytest

from api.app import create_app

API_DOC = Path(__file__).resolve().parent.parent / "docs" / "api.md"
NOT_YET = re.compile(
    r"^<!-- not-yet-implemented -->$.*?^<!-- /not-yet-implemented -->$", re.MULTILINE | re.DOTALL
)
ROUTE = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`?\s]*)(?:\?[^`]*)?`")


def documented_routes(text: str) -> set[str]:
    implemented = NOT_YET.sub("", text)
    return {f"{method} {path}" for method, path in ROUTE.findall(implemented)}


def app_routes() -> set[str]:
    paths = create_app().openapi()["paths"]
    return {f"{method.upper()} {path}" for path, ops in paths.items() for method in ops}


DOCUMENTED = documented_routes(API_DOC.read_text())
SERVED = app_routes()


def test_the_markers_pair_up() -> None:
    text = API_DOC.read_text()
    opened = re.findall(r"^<!-- not-yet-implemented -->$", text, re.MULTILINE)
    closed = re.findall(r"^<!-- /not-yet-implemented -->$", text, re.MULTILINE)
    assert len(opened) == len(closed) == len(NOT_YET.findall(text))


@pytest.mark.parametrize("route", sorted(DOCUMENTED))
def test_documented_route_is_served(route: str) -> None:
    assert route in SERVED, f"docs/api.md names {route}, which the app does not serve"


@pytest.mark.parametrize("route", sorted(SERVED))
def test_served_route_is_documented(route: str) -> None:
    assert route in DOCUMENTED, f"{route} is served but docs/api.md does not name it"


def test_not_yet_implemented_parts_are_skipped() -> None:
    text = "`GET /a`\n<!-- not-yet-implemented -->\n`GET /b`\n<!-- /not-yet-implemented -->\n"
    assert documented_routes(text) == {"GET /a"}
