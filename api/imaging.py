"""Judging an upload by its bytes with Pillow, and re-encoding it without metadata.

Only the pixels (and frame timings, transparency and the colour profile) reach the stored
file: EXIF (GPS, camera, time), XMP, IPTC, comments and text chunks are dropped, and
anything else hidden in the upload (an HTML or ZIP tail of a polyglot) cannot survive.
Decoding runs in worker threads, a few at a time: it costs memory in proportion to pixels.
"""

import asyncio
import logging
import os
from pathlib import Path
from typing import Any
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


async def clean(source: Path, target: Path, max_pixels: int) -> str:
    """Re-encode the image in `source` into `target`; returns the extension of its format.

    Raises UnsupportedMediaType for anything that is not a whole accepted image within
    `max_pixels` (width x height x frames).
    """
    async with _limit():
        return await to_thread.run_sync(_clean, source, target, max_pixels)


def _clean(source: Path, target: Path, max_pixels: int) -> str:
    too_large = UnsupportedMediaType(
        f"Image too large: at most {max_pixels} pixels (width x height x frames) are"
        f" accepted; send a smaller {ACCEPTED} file"
    )
    try:
        with Image.open(source, formats=list(EXTENSIONS)) as im:
            fmt = str(im.format)
            frames = getattr(im, "n_frames", 1)
            width, height = im.size
            if width * height * frames > max_pixels:
                raise too_large
            _encode(im, fmt, frames, target)
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


def _encode(im: Image.Image, fmt: str, frames: int, target: Path) -> None:
    options: dict[str, Any] = {}
    if icc := im.info.get("icc_profile"):
        options["icc_profile"] = icc  # colours, not facts about the photo
    if fmt == "JPEG":
        # The original's quantization: no second round of quality loss, no growth.
        options.update(quality="keep", subsampling="keep")
    elif fmt == "WEBP":
        options.update(quality=90)
    if frames > 1:
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
        first.save(out, fmt, **options)
        out.flush()
        os.fsync(out.fileno())


def _pixels_only(im: Image.Image) -> Image.Image:
    """Forget every piece of metadata but what the encoder needs to draw the same picture."""
    im.info = {k: im.info[k] for k in ("transparency", "duration") if k in im.info}
    return im
