"""HTTP-facing settings (read from the environment and `.env`)."""

import ipaddress
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from models.settings import SharedSettings, cached_setting


class LogFormat(StrEnum):
    text = "text"
    json = "json"


class ApiSettings(SharedSettings):
    PROJECT_NAME: str = "Inventory"
    # Serve /docs, /redoc and /openapi.json.
    DOCS_ENABLED: bool = True
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # text: one readable line per event; json: one JSON object per line (for log shippers).
    LOG_FORMAT: LogFormat = LogFormat.text

    # Item images. Unset UPLOAD_DIR means DATA_DIR/uploads (see `upload_dir`).
    UPLOAD_DIR: Path | None = None
    MAX_UPLOAD_BYTES: int = Field(default=5 * 1024 * 1024, ge=1)
    # Width x height x frames; larger images are refused before they are decoded.
    MAX_IMAGE_PIXELS: int = Field(default=25_000_000, ge=1)

    # Request bodies larger than this are refused with 413 (every route; multipart uploads
    # have MAX_MULTIPART_BODY_BYTES instead, and their own per-file limit).
    MAX_JSON_BODY_BYTES: int = Field(default=64 * 1024, ge=1024, le=64 * 1024 * 1024)
    # Sanity cap for a whole multipart/form-data request; keep it above MAX_UPLOAD_BYTES.
    MAX_MULTIPART_BODY_BYTES: int = Field(default=16 * 1024 * 1024, ge=1024, le=1024**3)
    # Browser origins allowed to call the API, comma-separated (e.g.
    # https://app.example.com,https://admin.example.com). Empty: CORS stays closed.
    CORS_ORIGINS: str = ""
    # Proxies whose X-Forwarded-For/-Proto are believed, comma-separated addresses or networks
    # (e.g. 127.0.0.1,10.0.0.0/8); `unix` for peers on `inventory serve --uds`. Empty: none.
    TRUSTED_PROXIES: str = ""
    # gzip level for JSON and text responses over 1 KiB when the client accepts it; 0: off.
    GZIP_LEVEL: int = Field(default=1, ge=0, le=9)

    @property
    def cors_origins(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.CORS_ORIGINS.split(",") if o.strip()]

    @property
    def trusted_proxies(self) -> list[str]:
        return [p.strip() for p in self.TRUSTED_PROXIES.split(",") if p.strip()]

    @field_validator("TRUSTED_PROXIES")
    @classmethod
    def _addresses_or_networks(cls, value: str) -> str:
        # uvicorn would take a mistyped entry as a literal that never matches: say so instead.
        for entry in (p.strip() for p in value.split(",") if p.strip()):
            if entry != "unix":
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"{entry!r} is not an address, a network or `unix`") from None
        return value

    @field_validator("UPLOAD_DIR", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `UPLOAD_DIR=` in .env must not become Path("") (the working directory).
        return None if value == "" else value

    @property
    def upload_dir(self) -> Path:
        return self.UPLOAD_DIR or self.DATA_DIR / "uploads"


@cached_setting
def get_api_settings() -> ApiSettings:
    return ApiSettings()
