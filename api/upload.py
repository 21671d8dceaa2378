"""Reading the multipart field `file` from the request stream, the size limit enforced as it comes.

FastAPI's `UploadFile` (Starlette's form parser) spools the whole body to a temporary file,
with no size limit, before the endpoint runs. Upload routes therefore declare no body
parameter and read `request.stream()` through python-multipart's streaming parser here: a
declared `Content-Length` over the limit is refused before a byte is read, and a body that
grows past it is cut off there. Memory holds one network chunk at a time.
"""

from pathlib import Path
from typing import BinaryIO

from anyio import to_thread
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from api.errors import BadRequest, ContentTooLarge

FIELD = "file"
# Room for the multipart framing around the file: boundaries, part headers, small fields.
FRAMING_ALLOWANCE = 64 * 1024
INVALID = "Invalid multipart data"


def too_large(max_bytes: int) -> ContentTooLarge:
    return ContentTooLarge(f"File too large: at most {max_bytes} bytes are accepted")


def _missing_file() -> RequestValidationError:
    # The error FastAPI itself gives for a missing `File()` parameter.
    return RequestValidationError(
        [{"type": "missing", "loc": ("body", FIELD), "msg": "Field required", "input": None}]
    )


class _FilePart:
    """python-multipart callbacks: collect the `file` part's data, count it, ignore the rest."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.seen = self.ended = self.inside = self.too_large = False
        self.pending: list[bytes] = []
        self._header = b""
        self._value = b""
        self._disposition = b""

    def on_part_begin(self) -> None:
        self._disposition = b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        if self._header.strip().lower() == b"content-disposition":
            self._disposition = self._value
        self._header = self._value = b""

    def on_headers_finished(self) -> None:
        # The client's file name and content type are never used: the bytes decide.
        _, options = parse_options_header(self._disposition)
        self.inside = options.get(b"name") == FIELD.encode()
        if self.inside and self.seen:
            raise BadRequest(f"Send one file in the field '{FIELD}'")
        self.seen = self.seen or self.inside

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if not self.inside:
            return
        self.size += end - start
        if self.size > self.max_bytes:
            self.too_large = True
        else:
            self.pending.append(data[start:end])

    def on_part_end(self) -> None:
        if self.inside:
            self.ended = True
        self.inside = False


async def receive_file(request: Request, target: Path, max_bytes: int) -> int:
    """Write the bytes of the multipart field `file` into `target`; returns how many."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes + FRAMING_ALLOWANCE:
        raise too_large(max_bytes)
    content_type, params = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data":
        raise _missing_file()
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadRequest(INVALID)
    part = _FilePart(max_bytes)
    try:
        parser = MultipartParser(
            boundary,
            {
                "on_part_begin": part.on_part_begin,
                "on_header_field": part.on_header_field,
                "on_header_value": part.on_header_value,
                "on_header_end": part.on_header_end,
                "on_headers_finished": part.on_headers_finished,
                "on_part_data": part.on_part_data,
                "on_part_end": part.on_part_end,
            },
        )
        out = await to_thread.run_sync(target.open, "wb")
        try:
            await _pump(request, parser, part, out, max_bytes)
        finally:
            await to_thread.run_sync(out.close)
    except (FormParserError, ValueError):
        raise BadRequest(INVALID) from None
    except ClientDisconnect:
        raise BadRequest("The upload was interrupted") from None
    if not part.seen:
        raise _missing_file()
    if not part.ended:
        raise BadRequest(INVALID)
    return part.size


async def _pump(
    request: Request, parser: MultipartParser, part: _FilePart, out: BinaryIO, max_bytes: int
) -> None:
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > max_bytes + FRAMING_ALLOWANCE:
            raise too_large(max_bytes)
        parser.write(chunk)
        if part.too_large:
            raise too_large(max_bytes)
        if part.pending:
            data = b"".join(part.pending)
            part.pending.clear()
            await to_thread.run_sync(out.write, data)
    parser.finalize()
