"""The token signing key: from SECRET_KEY, or generated once per data directory in development."""

import contextlib
import itertools
import math
import os
import secrets
import string
from pathlib import Path

from auth.settings import get_auth_settings
from models.settings import Environment, cached_setting

MIN_SECRET_BYTES = 32
# A generated key of 32+ bytes has many distinct characters; "aaaa…" or "abcabc…" do not.
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
        if not looks_generated(configured):
            raise InsecureSecretKey(
                "SECRET_KEY does not look like a generated key: use at least 32 random bytes"
                " written as hex (64+ characters) or base64 (43+ characters), e.g."
                ' python -c "import secrets; print(secrets.token_urlsafe(48))"'
            )
        return configured
    return configured or _development_key(settings.DATA_DIR / "secret_key")


def looks_generated(key: str) -> bool:
    """Whether `key` can be 32+ random bytes as a key generator writes them (hex, or base64
    in either alphabet), and shows none of the patterns a typed key has: few distinct
    characters, or runs of neighbours ("abcdef…", "aaaa…", "0123…"). Random text of that
    alphabet has one neighbour pair in 5 (hex) or 20 (base64); half is far beyond chance."""
    hex_form = len(key) >= 2 * MIN_SECRET_BYTES and all(c in string.hexdigits for c in key)
    base64_form = len(key.rstrip("=")) >= math.ceil(MIN_SECRET_BYTES * 4 / 3) and all(
        c in _BASE64 for c in key.rstrip("=")
    )
    if not (hex_form or base64_form) or len(set(key)) < MIN_DISTINCT_CHARS:
        return False
    neighbours = sum(abs(ord(a) - ord(b)) <= 1 for a, b in itertools.pairwise(key))
    return neighbours <= (len(key) - 1) / 2


_BASE64 = frozenset(string.ascii_letters + string.digits + "+/-_")


def _development_key(path: Path) -> str:
    """Read the key kept in the data directory, creating it atomically on first use.

    Several workers may start at once: the key is written to a private temporary file and
    hard-linked into place, so every process reads the one key that won.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # DATA_DIR: private
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
