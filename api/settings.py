"""HTTP-facing settings (read from the environment and `.env`)."""

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    PROJECT_NAME: str = "Inventory"
    # Serve /docs, /redoc and /openapi.json.
    DOCS_ENABLED: bool = True
    LOG_LEVEL: str = "INFO"
    # Request bodies larger than this are refused with 413 (every route; multipart uploads
    # have MAX_MULTIPART_BODY_BYTES instead, and their own per-file limit).
    MAX_JSON_BODY_BYTES: int = Field(default=64 * 1024, ge=1024, le=64 * 1024 * 1024)
    # Sanity cap for a whole multipart/form-data request; keep it above MAX_UPLOAD_BYTES.
    MAX_MULTIPART_BODY_BYTES: int = Field(default=16 * 1024 * 1024, ge=1024, le=1024**3)
    # Browser origins allowed to call the API, comma-separated (e.g.
    # https://app.example.com,https://admin.example.com). Empty: CORS stays closed.
    CORS_ORIGINS: str = ""

    @property
    def cors_origins(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.CORS_ORIGINS.split(",") if o.strip()]


@lru_cache
def get_api_settings() -> ApiSettings:
    return ApiSettings()
