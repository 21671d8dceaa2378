"""gzip for whole responses of text and JSON over GZIP_MIN_BYTES, when the client accepts it.

Never for images (already compressed), for a response that streams (files: it would go out
chunked, its length unknown) or one that has an encoding already. Compressible responses
carry `Vary: Accept-Encoding` either way, so a shared cache keeps both forms apart.
The CPU cost per level: `bench/gzip_cost.py`.
"""

import zlib
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

COMPRESSIBLE = (b"application/json", b"text/", b"application/javascript")
GZIP_MIN_BYTES = 1024


class Gzip:
    def __init__(self, app: ASGIApp, *, level: int, minimum: int = GZIP_MIN_BYTES) -> None:
        self.app = app
        self.level = level
        self.minimum = minimum

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        accepted = accepts_gzip(scope["headers"])
        start: Message | None = None
        passing = False

        async def compressing_send(message: Message) -> None:
            nonlocal start, passing
            if passing:
                await send(message)
            elif message["type"] == "http.response.start":
                if _compressible(message.get("headers", ())):
                    start = message
                else:
                    passing = True
                    await send(message)
            elif message["type"] == "http.response.body" and start is not None:
                passing = True
                headers = [*start.get("headers", ()), (b"vary", b"Accept-Encoding")]
                body = message.get("body", b"")
                if accepted and not message.get("more_body") and len(body) >= self.minimum:
                    body = gzip(body, self.level)
                    headers = [(n, v) for n, v in headers if n.lower() != b"content-length"]
                    headers += [
                        (b"content-encoding", b"gzip"),
                        (b"content-length", str(len(body)).encode()),
                    ]
                    message = {**message, "body": body}
                await send({**start, "headers": headers})
                await send(message)
            else:
                await send(message)

        await self.app(scope, receive, compressing_send)


def gzip(body: bytes, level: int) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return compressor.compress(body) + compressor.flush()


def accepts_gzip(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Accept-Encoding names gzip (or `*`) without `q=0`."""
    for name, value in headers:
        if name != b"accept-encoding":
            continue
        for part in value.decode("latin-1").lower().split(","):
            coding, _, params = part.partition(";")
            if coding.strip() not in ("gzip", "*"):
                continue
            q = params.replace(" ", "").partition("q=")[2]
            try:
                if not q or float(q) > 0:
                    return True
            except ValueError:
                continue
    return False


def _compressible(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    content_type = b""
    for name, value in headers:
        lower = name.lower()
        if lower == b"content-encoding":
            return False
        if lower == b"content-type":
            content_type = value.lower()
    return content_type.startswith(COMPRESSIBLE)
