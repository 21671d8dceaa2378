"""Real images made with Pillow, multipart bodies built byte by byte, and folder snapshots."""

import hashlib
import io
import struct
import zlib
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

BOUNDARY = "----inventory-test-boundary"
# Amsterdam, more or less: what a phone writes into a photo.
GPS = {1: "N", 2: (52.0, 22.0, 1.5), 3: "E", 4: (4.0, 53.0, 2.0)}
ORIENTATION_ROTATE_90 = 6


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = GPS  # GPSInfo
    return exif


def jpeg_with_gps(size: tuple[int, int] = (64, 48)) -> bytes:
    """A phone photo: EXIF with GPS and a 'rotate 90°' orientation, and a comment."""
    exif = _exif()
    exif[0x0112] = ORIENTATION_ROTATE_90
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, "JPEG", exif=exif, comment=b"PhoneComment")
    return out.getvalue()


def png() -> bytes:
    info = PngInfo()
    info.add_text("Author", "PhoneMaker owner")
    out = io.BytesIO()
    Image.new("RGBA", (32, 32), (0, 128, 0, 128)).save(out, "PNG", pnginfo=info, exif=_exif())
    return out.getvalue()


def gif(frames: int = 1) -> bytes:
    pictures = [Image.new("RGB", (20, 20), (i * 80, 0, 0)) for i in range(frames)]
    out = io.BytesIO()
    pictures[0].save(
        out,
        "GIF",
        save_all=frames > 1,
        append_images=pictures[1:],
        duration=120,
        loop=0,
        comment=b"PhoneComment",
    )
    return out.getvalue()


def webp() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (30, 20), (10, 20, 200)).save(out, "WEBP", exif=_exif())
    return out.getvalue()


def bomb(side: int = 6000) -> bytes:
    """A small file declaring side² pixels (36 million by default): a decompression bomb."""
    out = io.BytesIO()
    Image.new("1", (side, side)).save(out, "PNG", optimize=True)
    return out.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG that only declares its size: past Pillow's own bomb limit, it fails on open."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def multipart(
    content: bytes,
    *,
    filename: bytes = b"photo.jpg",
    content_type: bytes = b"image/jpeg",
    field: bytes = b"file",
) -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data body with one file part, the file name sent exactly as given."""
    head = (
        b"--" + BOUNDARY.encode() + b"\r\n"
        b'Content-Disposition: form-data; name="' + field + b'"; filename="' + filename + b'"\r\n'
        b"Content-Type: " + content_type + b"\r\n\r\n"
    )
    body = head + content + b"\r\n--" + BOUNDARY.encode() + b"--\r\n"
    return body, {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` (relative path → content hash), the database's files aside."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith("inventory.db")
    }


def names(folder: Path) -> list[str]:
    """The file names in a folder (created if missing), sorted."""
    folder.mkdir(parents=True, exist_ok=True)
    return sorted(p.name for p in folder.iterdir())


def tiny_frames_gif(frames: int) -> bytes:
    """A 1 x 1 GIF of `frames` frames, alternating black and white (so none merges with the
    one before), written by hand: about 23 bytes a frame, whatever their number."""
    head = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff"
    control = b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # 100 ms a frame
    place = b"\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00"
    pixel = (b"\x02\x02\x44\x01\x00", b"\x02\x02\x4c\x01\x00")  # LZW of colour 0, colour 1
    return head + b"".join(control + place + pixel[n % 2] for n in range(frames)) + b"\x3b"
