"""The token signing key: from SECRET_KEY, or generated once per data directory in development."""

import contextlib
import os
import secrets
from pathlib import Path

from auth.settings import get_auth_settings
from models.settings import Environment, cached_setting

MIN_SECRET_BYTES = 32
# A random key of 32+ characters has many distinct ones; "aaaa…" or "abcabc…" do not.
MIN_DISTINCT_CHARS = 12
# Values that are public (documentation, examples) and so never a secret.
KNOWN_PUBLIC_KEYS = frozenset({"change-me-to-a-random-string-of-at-least-32-bytes", "x" * 32})


class InsecureSecretKey(RuntimeError):
    pass


@cached_setting
def get_secret_key() -> str:
    settings = get_auth_settings()
    configured = settings.SECRET_KEY.get_secret_value() if settings.SECRET_KEY else ""
    if Environment.production == settings.ENVIRONMENT:
        if len(configured.encode()) < MIN_SECRET_BYTES:
            raise InsecureSecretKey(
                f"SECRET_KEY must be set to at least {MIN_SECRET_BYTES} random bytes in "
                'production (e.g. python -c "import secrets; print(secrets.token_urlsafe(48))")'
            )
        if configured in KNOWN_PUBLIC_KEYS or "change-me" in configured.lower():
            raise InsecureSecretKey("SECRET_KEY is an example value; generate your own")
        if len(set(configured)) < MIN_DISTINCT_CHARS:
            raise InsecureSecretKey("SECRET_KEY is not random enough; generate your own")
        return configured
    return configured or _development_key(settings.DATA_DIR / "secret_key")


def _development_key(path: Path) -> str:
    """Read the key kept in the data directory, creating it atomically on first use.

    Several workers may start at once: the key is written to a private temporary file and
    hard-linked into place, so every process reads the one key that won.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            tmp.unlink()
    return path.read_text().strip()
