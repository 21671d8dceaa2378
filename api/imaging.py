"""Judging an upload by its bytes with Pillow, and re-encoding it without metadata.

Only the pixels (and frame timings, transparency and the colour profile) reach the stored
file: EXIF (GPS, camera, time), XMP, IPTC, comments and text chunks are dropped, and
anything else hidden in the upload (an HTML or ZIP tail of a polyglot) cannot survive.
Decoding runs in worker threads, a few at a time: it costs memory in proportion to pixels.
"""

import asyncio
import io
import logging
import os
from pathlib import Path
from typing import IO, Any, BinaryIO, cast
from weakref import WeakKeyDictionary

from anyio import to_thread
from PIL import Image, ImageOps, ImageSequence

from api.errors import UnsupportedMediaType

log = logging.getLogger("api.imaging")

ACCEPTED = "JPEG, PNG, GIF or WebP"
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}
NOT_AN_IMAGE = "Not an accepted image: send a JPEG, PNG, GIF or WebP file"
# Images decoded at once per process; each may take up to MAX_IMAGE_PIXELS x 4 bytes.
DECODE_CONCURRENCY = 2

_limits: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = WeakKeyDictionary()


def _limit() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    sem = _limits.get(loop)
    if sem is None:
        sem = _limits[loop] = asyncio.Semaphore(DECODE_CONCURRENCY)
    return sem


async def clean(
    source: Path, target: Path, *, max_pixels: int, max_frames: int, max_bytes: int
) -> str:
    """Re-encode the image in `source` into `target`; returns the extension of its format.

    Raises UnsupportedMediaType for anything that is not a whole accepted image of at most
    `max_frames` frames and `max_pixels` pixels (width x height x frames), or whose
    re-encoded file would be larger than `max_bytes`.
    """
    async with _limit():
        return await to_thread.run_sync(_clean, source, target, max_pixels, max_frames, max_bytes)


def _clean(source: Path, target: Path, max_pixels: int, max_frames: int, max_bytes: int) -> str:
    too_large = UnsupportedMediaType(
        f"Image too large: at most {max_pixels} pixels (width x height x frames) are"
        f" accepted; send a smaller {ACCEPTED} file"
    )
    try:
        with Image.open(source, formats=list(EXTENSIONS)) as im:
            fmt = str(im.format)
            frames = _frames(im, max_frames)
            width, height = im.size
            if width * height * frames > max_pixels:
                raise too_large
            _encode(im, fmt, frames, target, max_bytes)
    except UnsupportedMediaType:
        raise
    except Image.DecompressionBombError:
        raise too_large from None  # Pillow's own, far higher, limit fired first
    except OSError as exc:
        if exc.errno is not None:
            raise  # the disk, not the image (Pillow's decoding errors carry no errno)
        log.info("upload refused by the image decoder: %r", exc)
        raise UnsupportedMediaType(NOT_AN_IMAGE) from None
    except Exception as exc:
        # Hostile input can make a decoder raise nearly anything; none of it is our fault.
        log.info("upload refused by the image decoder: %r", exc)
        raise UnsupportedMediaType(NOT_AN_IMAGE) from None
    return EXTENSIONS[fmt]


def _frames(im: Image.Image, max_frames: int) -> int:
    """The number of frames, or UnsupportedMediaType past `max_frames`: found by seeking to
    the first frame too many, never by counting them all (a GIF of 1 x 1 frames holds
    hundreds of thousands in a few megabytes, and Pillow's count walks through every one)."""
    if not getattr(im, "is_animated", False):
        return 1
    try:
        im.seek(max_frames)
    except EOFError:
        pass
    else:
        raise UnsupportedMediaType(
            f"Too many frames: at most {max_frames} are accepted; send a shorter {ACCEPTED} file"
        )
    im.seek(0)
    return int(getattr(im, "n_frames", 1))


class _Capped(io.RawIOBase):
    """A file that refuses to grow past `limit` bytes: the stored image is held to the upload
    limit too (re-encoding may inflate a file, an animation's above all)."""

    def __init__(self, out: BinaryIO, limit: int) -> None:
        self.out, self.limit, self.size = out, limit, 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.size += len(data)
        if self.size > self.limit:
            raise UnsupportedMediaType(
                f"Image too large once cleaned: over {self.limit} bytes; send a smaller"
                f" {ACCEPTED} file"
            )
        return self.out.write(data)


def _encode(im: Image.Image, fmt: str, frames: int, target: Path, max_bytes: int) -> None:
    options: dict[str, Any] = {}
    if icc := im.info.get("icc_profile"):
        options["icc_profile"] = icc  # colours, not facts about the photo
    if fmt == "JPEG":
        # The original's quantization: no second round of quality loss, no growth.
        options.update(quality="keep", subsampling="keep")
    elif fmt == "WEBP":
        options.update(quality=90)
    if frames > 1:
        # Bounded by max_frames and max_pixels: Pillow's GIF and APNG writers hold every
        # frame until the file is written (they compare each with the one before) anyway.
        pictures = [_pixels_only(frame.copy()) for frame in ImageSequence.Iterator(im)]
        first = pictures[0]
        options.update(
            save_all=True,
            append_images=pictures[1:],
            duration=[p.info.get("duration", 100) for p in pictures],
            loop=im.info.get("loop", 0),
        )
    else:
        im.load()  # decodes every pixel: a truncated or corrupt file fails here
        # Browsers honour the EXIF orientation; apply it before the EXIF goes.
        ImageOps.exif_transpose(im, in_place=True)
        first = _pixels_only(im)
    with target.open("wb") as out:
        first.save(cast(IO[bytes], _Capped(out, max_bytes)), fmt, **options)
        out.flush()
        os.fsync(out.fileno())


def _pixels_only(im: Image.Image) -> Image.Image:
    """Forget every piece of metadata but what the encoder needs to draw the same picture."""
    im.info = {k: im.info[k] for k in ("transparency", "duration") if k in im.info}
    return im
