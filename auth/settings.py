"""Authentication settings (read from the environment and `.env`)."""

import os

from pydantic import Field, SecretStr

from models.settings import SharedSettings, cached_setting


class AuthSettings(SharedSettings):
    # HS256 key for every token. Required (>= 32 bytes) in production; in development an
    # unset key is generated once and kept in DATA_DIR/secret_key.
    SECRET_KEY: SecretStr | None = None
    ACCESS_TOKEN_EXPIRE_MINUTES: int = Field(default=30, ge=1, le=24 * 60)
    REFRESH_TOKEN_EXPIRE_DAYS: int = Field(default=14, ge=1, le=365)
    # argon2id cost (OWASP's minimum: 19 MiB, 2 passes, 1 lane). Changing it re-hashes each
    # password at its owner's next successful login.
    ARGON2_MEMORY_COST_KIB: int = Field(default=19456, ge=8, le=4 * 1024 * 1024)
    ARGON2_TIME_COST: int = Field(default=2, ge=1, le=100)
    ARGON2_PARALLELISM: int = Field(default=1, ge=1, le=64)
    # Hashes computed at once per process (each takes a core and ARGON2_MEMORY_COST_KIB).
    # Default: the cores divided among the worker processes (`inventory serve --workers N`
    # sets it), so a login storm runs one hash per core rather than several fighting over it.
    HASH_CONCURRENCY: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=256)
    # Login throttling: failed logins counted in a sliding window, per (username, address)
    # pair, per username and per client address; 0 turns a rule off. See docs/security.md.
    LOGIN_THROTTLE_WINDOW_SECONDS: int = Field(default=600, ge=1, le=24 * 3600)
    LOGIN_FAILURES_PER_PAIR: int = Field(default=5, ge=0, le=10_000)
    LOGIN_FAILURES_PER_USERNAME: int = Field(default=20, ge=0, le=10_000)
    LOGIN_FAILURES_PER_ADDRESS: int = Field(default=50, ge=0, le=10_000)
    # Keep the throttle's counters in Redis (e.g. redis://127.0.0.1:6379/0) instead of the
    # database.
    REDIS_URL: str = ""
    # The start of every key this service writes in Redis (services sharing one database).
    REDIS_KEY_PREFIX: str = "inventory:"
    FIRST_ADMIN_USERNAME: str = "admin"
    FIRST_ADMIN_PASSWORD: SecretStr | None = None


@cached_setting
def get_auth_settings() -> AuthSettings:
    return AuthSettings()
