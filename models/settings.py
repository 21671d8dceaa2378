"""Settings (read from the environment and `.env`): the shared base every package's settings
class builds on, the database's own, and the one place their cached values are forgotten."""

from collections.abc import Callable
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The async drivers this service ships, by the URL schemes people write.
_DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
}
ACCEPTED_URLS = "postgresql://user:password@host:5432/name (or postgres://) or sqlite:///path.db"


def async_url(url: str) -> str:
    """The URL with the driver this service uses for it; ValueError for any other database."""
    scheme, sep, rest = url.strip().partition("://")
    driver = _DRIVERS.get(scheme.lower()) if sep else None
    if driver is None:
        # Only the scheme is repeated: the rest may hold a password.
        got = f"'{scheme}://'" if sep else "no scheme"
        raise ValueError(f"unsupported database URL ({got}); use {ACCEPTED_URLS}")
    return f"{driver}://{rest}"


if TYPE_CHECKING:
    from functools import _lru_cache_wrapper


class Environment(StrEnum):
    development = "development"
    production = "production"


class SharedSettings(BaseSettings):
    """What every package reads; each package's settings class adds its own."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    ENVIRONMENT: Environment = Environment.development
    DATA_DIR: Path = Path("data")


T = TypeVar("T")
_cached: "list[_lru_cache_wrapper[object]]" = []


def cached_setting(getter: Callable[[], T]) -> "_lru_cache_wrapper[T]":
    """Read once per process (like `functools.lru_cache`), and forgotten by
    `clear_cached_settings`. For the settings getters and what is derived from settings."""
    cached = lru_cache(getter)
    _cached.append(cached)
    return cached


def clear_cached_settings() -> None:
    """Forget every cached setting, so the next read sees the environment as it is now."""
    for cached in _cached:
        cached.cache_clear()


class DatabaseSettings(SharedSettings):
    # Empty means SQLite at DATA_DIR/inventory.db.
    DATABASE_URL: str = ""
    # Connections kept per worker. Overflow ones are closed as soon as they are returned while
    # the pool is full, so under sustained load past the pool size each request opened a new
    # connection (on PostgreSQL a new backend process): size the pool, keep overflow at 0.
    DB_POOL_SIZE: int = Field(default=20, ge=1, le=200)
    DB_MAX_OVERFLOW: int = Field(default=0, ge=0, le=500)
    # Seconds a request waits for a free connection, to open one, and for one statement
    # (PostgreSQL; 0: no limit) before it is answered 503: a stalled database gives quick
    # refusals rather than requests that hang.
    DB_POOL_TIMEOUT: float = Field(default=10.0, gt=0)
    DB_CONNECT_TIMEOUT: float = Field(default=5.0, gt=0)
    DB_COMMAND_TIMEOUT: float = Field(default=10.0, ge=0)
    # Test each pooled connection before lending it out. With asyncpg that is BEGIN, SELECT,
    # ROLLBACK: three round trips on every request. Off, a connection the server dropped
    # (a PostgreSQL restart) fails one request, after which the pool is replaced.
    DB_POOL_PRE_PING: bool = False
    DB_ECHO: bool = False
    SQLITE_BUSY_TIMEOUT_MS: int = Field(default=5000, ge=0)

    @field_validator("DATABASE_URL")
    @classmethod
    def _supported(cls, value: str) -> str:
        if value.strip():
            async_url(value)
        return value.strip()

    @property
    def database_url(self) -> str:
        if self.DATABASE_URL:
            return async_url(self.DATABASE_URL)
        return f"sqlite+aiosqlite:///{self.DATA_DIR / 'inventory.db'}"


@cached_setting
def get_database_settings() -> DatabaseSettings:
    return DatabaseSettings()
