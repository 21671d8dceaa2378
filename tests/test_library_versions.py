"""Code that leans on a library's internals was written for the versions pyproject.toml
bounds (the upper bound is the first version it was not checked against). Installed outside
those bounds, this test says which file to check before widening them."""

import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent

# Library → the files that lean on its internals (docs/architecture.md says what each uses).
LEANS_ON = {
    "fastapi": ["auth/bearer_first.py", "api/openapi.py"],
    "uvicorn": ["api/protocol.py", "api/listen.py"],
    "sqlalchemy": ["models/pool.py", "models/sqlite_driver.py", "models/engine.py"],
    "aiosqlite": ["models/sqlite_driver.py"],
    "uvloop": ["api/listen.py"],
}


def _requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = (Requirement(line) for line in project["dependencies"])
    return {r.name.lower(): r for r in found}


@pytest.mark.parametrize("library", sorted(LEANS_ON))
def test_internals_are_those_of_a_version_the_code_was_written_for(library: str) -> None:
    requirement = _requirements()[library]
    uppers = [s for s in requirement.specifier if s.operator == "<"]
    assert uppers, f"pyproject.toml: {library} needs an upper bound (its internals are used)"
    installed = version(library)
    assert requirement.specifier.contains(installed, prereleases=True), (
        f"{library} {installed} is installed, but {', '.join(LEANS_ON[library])} were written "
        f"for {library}{requirement.specifier}: check what they use of its internals against "
        f"this version (docs/architecture.md, 'Leans on'), then move the bound in pyproject.toml"
    )
