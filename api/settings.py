"""HTTP-facing settings (read from the environment and `.env`)."""

from enum import StrEnum
from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class LogFormat(StrEnum):
    text = "text"
    json = "json"


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    PROJECT_NAME: str = "Inventory"
    # Serve /docs, /redoc and /openapi.json.
    DOCS_ENABLED: bool = True
    LOG_LEVEL: str = "INFO"
    # text: one readable line per event; json: one JSON object per line (for log shippers).
    LOG_FORMAT: LogFormat = LogFormat.text


@lru_cache
def get_api_settings() -> ApiSettings:
    return ApiSettings()
