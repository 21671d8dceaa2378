"""Database and environment settings (read from the environment and `.env`)."""

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    development = "development"
    production = "production"


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    ENVIRONMENT: Environment = Environment.development
    DATA_DIR: Path = Path("data")
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


@lru_cache
def get_database_settings() -> DatabaseSettings:
    return DatabaseSettings()
