"""The upload folder: names the server picks, temporary files, atomic placement, removal.

Blocking calls here are meant for worker threads (the async callers use `to_thread`), except
`remove`, a single unlink that transaction hooks run as the transaction ends.
"""

import os
import re
import secrets
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from api.settings import get_api_settings

# Every stored name: 128 random bits in hex plus the extension of the format Pillow found.
NAME_PATTERN = re.compile(r"[0-9a-f]{32}\.(?:jpg|png|gif|webp)")
MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp"}
# Uploads in progress; the leading dot keeps them out of NAME_PATTERN (never served).
TEMP_PREFIX = ".upload-"
# prune-images leaves younger files alone: they may belong to an upload not yet committed.
PRUNE_GRACE_SECONDS = 3600


def upload_dir() -> Path:
    return get_api_settings().upload_dir


def new_name(extension: str) -> str:
    assert extension in MEDIA_TYPES, extension
    return f"{secrets.token_hex(16)}.{extension}"


def media_type(name: str) -> str:
    return MEDIA_TYPES[name.rsplit(".", 1)[1]]


def stored_file(name: str) -> Path | None:
    """The path of a stored image, or None: the name must be ours and a regular file.

    The name never becomes a path unless it matches NAME_PATTERN (no separators, no dots
    but the extension's), so nothing outside the folder can be reached.
    """
    if not NAME_PATTERN.fullmatch(name):
        return None
    path = upload_dir() / name
    try:
        st = path.lstat()  # a symlink is not ours, even when it points to a file
    except OSError:
        return None
    return path if stat.S_ISREG(st.st_mode) else None


@contextmanager
def temp_file() -> Iterator[Path]:
    """A new empty file inside the upload folder, removed on exit unless it was moved away."""
    folder = upload_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, raw = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX, suffix=".tmp")
    os.close(fd)
    path = Path(raw)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def place(temp: Path, name: str) -> None:
    """Give a finished temporary file its final name, atomically and durably."""
    folder = upload_dir()
    os.chmod(temp, 0o644)  # mkstemp's 0600 would keep a proxy serving the folder out
    os.replace(temp, folder / name)
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    # So the rename survives a power cut as the database commit does.
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove(name: str) -> None:
    """Remove a stored image; a name that is not ours is never turned into a path."""
    if NAME_PATTERN.fullmatch(name):
        (upload_dir() / name).unlink(missing_ok=True)


def settled_files() -> list[str]:
    """Regular files directly in the folder, except those younger than the grace period."""
    folder = upload_dir()
    if not folder.is_dir():
        return []
    cutoff = time.time() - PRUNE_GRACE_SECONDS
    return sorted(
        entry.name
        for entry in os.scandir(folder)
        if entry.is_file(follow_symlinks=False)
        and entry.stat(follow_symlinks=False).st_mtime <= cutoff
    )


def delete_file(name: str) -> None:
    """prune-images: remove any file directly in the folder (legacy names included)."""
    path = upload_dir() / name
    if path.parent == upload_dir() and name not in ("", ".", ".."):
        path.unlink(missing_ok=True)
