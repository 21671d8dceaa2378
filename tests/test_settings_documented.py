"""Every setting is documented: in .env.example (with its default) and in the README's table."""

import re
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from api.settings import ApiSettings
from auth.settings import AuthSettings
from models.settings import DatabaseSettings

ROOT = Path(__file__).resolve().parent.parent
SETTINGS: list[type[BaseSettings]] = [DatabaseSettings, AuthSettings, ApiSettings]
# The shared ones (ENVIRONMENT, DATA_DIR) are in every class: each name once.
NAMES = list(dict.fromkeys(name for cls in SETTINGS for name in cls.model_fields))


@pytest.mark.parametrize("name", NAMES)
def test_setting_is_in_env_example(name: str) -> None:
    text = (ROOT / ".env.example").read_text()
    assert re.search(rf"^(# ?)?{name}=", text, re.MULTILINE), f"{name} missing in .env.example"


@pytest.mark.parametrize("name", NAMES)
def test_setting_is_in_readme_table(name: str) -> None:
    assert f"| `{name}` |" in (ROOT / "README.md").read_text(), f"{name} missing in README"
