"""Settings (read from the environment and `.env`): the shared base every package's settings
class builds on, the database's own, and the one place their cached values are forgotten."""

from collections.abc import Callable
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    DB_POOL_TIMEOUT: float = Field(default=30.0, gt=0)
    # Test each pooled connection before lending it out. With asyncpg that is BEGIN, SELECT,
    # ROLLBACK: three round trips on every request. Off, a connection the server dropped
    # (a PostgreSQL restart) fails one request, after which the pool is replaced.
    DB_POOL_PRE_PING: bool = False
    DB_ECHO: bool = False
    SQLITE_BUSY_TIMEOUT_MS: int = Field(default=5000, ge=0)

    @property
    def database_url(self) -> str:
        if self.DATABASE_URL:
            return self.DATABASE_URL
        return f"sqlite+aiosqlite:///{self.DATA_DIR / 'inventory.db'}"


@cached_setting
def get_database_settings() -> DatabaseSettings:
    return DatabaseSettings()
