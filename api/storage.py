"""The upload folder: names the server picks, temporary files, atomic placement, removal.

Blocking calls here are meant for worker threads (the async callers use `to_thread`), except
`remove`, a single unlink that transaction hooks run as the transaction ends.
"""

import asyncio
import errno
import logging
import os
import re
import secrets
import stat
import tempfile
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from anyio import to_thread

from api.errors import DomainError, InsufficientStorage, ServiceUnavailable
from api.settings import get_api_settings
from models.settings import get_database_settings

log = logging.getLogger("api.storage")

# Every stored name: 128 random bits in hex plus the extension of the format Pillow found.
NAME_PATTERN = re.compile(r"[0-9a-f]{32}\.(?:jpg|png|gif|webp)")
MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp"}
# Uploads in progress; the leading dot keeps them out of NAME_PATTERN (never served).
TEMP_PREFIX = ".upload-"
# prune-images leaves younger files alone: they may belong to an upload not yet committed.
PRUNE_GRACE_SECONDS = 3600
# A removal that failed after its commit (read-only folder, I/O error) is tried again this often.
RETRY_SECONDS = 60
# Names whose removal failed, for `prune-images` (kept in DATA_DIR: the upload folder may be
# the one that cannot be written).
UNREMOVED_FILE = "unremoved-images"
NO_SPACE = "Not enough disk space to store the image; try again later"
UNAVAILABLE = "Images cannot be stored right now; try again later"


def storage_error(exc: OSError) -> DomainError:
    """The answer for a failed write in the upload folder: 507 when it is full, else 503 (a
    read-only or missing folder, an I/O error). Logged here: the client's message has no path."""
    log.error("cannot write in the upload folder %s: %s", upload_dir(), exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return InsufficientStorage(NO_SPACE)
    return ServiceUnavailable(UNAVAILABLE)


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


def prepare_folder() -> None:
    """At startup: make the default folder (DATA_DIR/uploads). A configured UPLOAD_DIR is never
    made: if it is missing (a share not mounted), uploads answer 503 rather than fill a local
    folder that the other instances do not see."""
    settings = get_api_settings()
    folder = settings.upload_dir
    if settings.UPLOAD_DIR is None:
        with suppress(OSError):  # reported by the first upload instead
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    elif not folder.is_dir():
        log.error("UPLOAD_DIR %s does not exist; image uploads answer 503 until it does", folder)


@contextmanager
def temp_file() -> Iterator[Path]:
    """A new empty file inside the upload folder, removed on exit unless it was moved away."""
    fd, raw = tempfile.mkstemp(dir=upload_dir(), prefix=TEMP_PREFIX, suffix=".tmp")
    os.close(fd)
    path = Path(raw)
    try:
        yield path
    finally:
        with suppress(OSError):  # the folder's failure is what the caller reports
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


# This process's failed removals, retried by `retry_removals`.
_unremoved: set[str] = set()


def remove(name: str) -> None:
    """Remove a stored image; a name that is not ours is never turned into a path. Runs after
    a commit: a failure is logged and the removal tried again later (`retry_removals`)."""
    if not NAME_PATTERN.fullmatch(name):
        return
    try:
        (upload_dir() / name).unlink(missing_ok=True)
    except OSError as exc:
        log.error("cannot remove image %s (%s); trying again later", name, exc.strerror)
        _unremoved.add(name)
        with suppress(OSError), _unremoved_path().open("a") as ledger:
            ledger.write(f"{name}\n")


def retry_removals() -> None:
    for name in sorted(_unremoved):
        try:
            (upload_dir() / name).unlink(missing_ok=True)
        except OSError:
            continue
        _unremoved.discard(name)
        log.warning("removed image %s at last", name)


async def keep_retrying_removals() -> None:
    """The served app's background task: failed removals are tried again every RETRY_SECONDS."""
    while True:
        await asyncio.sleep(RETRY_SECONDS)
        if _unremoved:
            await to_thread.run_sync(retry_removals)


def _unremoved_path() -> Path:
    return get_database_settings().DATA_DIR / UNREMOVED_FILE


def unremoved_names() -> set[str]:
    """Names whose removal failed after a commit (by any process using this DATA_DIR)."""
    try:
        lines = _unremoved_path().read_text().split()
    except OSError:
        return set()
    return {line for line in lines if NAME_PATTERN.fullmatch(line)}


def forget_unremoved() -> None:
    """prune-images has dealt with them (removed, or found gone)."""
    with suppress(FileNotFoundError):
        _unremoved_path().unlink()


def settled_files(also: Collection[str] = ()) -> list[str]:
    """Regular files directly in the folder, except those younger than the grace period (a
    name in `also`, a file whose removal once failed, is listed whatever its age)."""
    folder = upload_dir()
    if not folder.is_dir():
        return []
    cutoff = time.time() - PRUNE_GRACE_SECONDS
    return sorted(
        entry.name
        for entry in os.scandir(folder)
        if entry.is_file(follow_symlinks=False)
        and (entry.name in also or entry.stat(follow_symlinks=False).st_mtime <= cutoff)
    )


def delete_file(name: str) -> None:
    """prune-images: remove any file directly in the folder (legacy names included)."""
    path = upload_dir() / name
    if path.parent == upload_dir() and name not in ("", ".", ".."):
        path.unlink(missing_ok=True)
