"""Pure ASGI middleware that runs on every request: kept to a header scan and a byte count."""

from fastapi import HTTPException, status
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A JSON API renders nothing in a browser: a policy that allows nothing, and no framing.
API_CSP = b"default-src 'none'; frame-ancestors 'none'"
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
# What a route sets itself (the docs pages' CSP, an image's caching) is kept.
DEFAULT_HEADERS = (*SECURITY_HEADERS, (b"content-security-policy", API_CSP))
# Responses that carry tokens or personal data must not be kept by any cache.
NO_STORE_PREFIXES = ("/token", "/users", "/logout")
NO_STORE = ((b"cache-control", b"no-store"),)
TOO_LARGE = b'{"detail":"Request body too large"}'


class SecurityHeaders:
    """Adds the security headers to every response, unless the route set that header itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        no_store = scope["path"].startswith(NO_STORE_PREFIXES)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                extra = DEFAULT_HEADERS + NO_STORE if no_store else DEFAULT_HEADERS
                headers.extend(h for h in extra if h[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyTooLarge(HTTPException):
    """Raised while the body streams in; FastAPI renders it as the usual JSON 413."""

    def __init__(self) -> None:
        super().__init__(status.HTTP_413_CONTENT_TOO_LARGE, "Request body too large")


class BodySizeLimit:
    """413 for a body over the limit: at once by Content-Length, else as the bytes arrive.

    The upload route (a PATCH under `multipart_paths`) gets the multipart limit; every other
    route the JSON one, whatever its Content-Type says.
    """

    def __init__(
        self, app: ASGIApp, *, max_json: int, max_multipart: int, multipart_paths: tuple[str, ...]
    ) -> None:
        self.app = app
        self.max_json = max_json
        self.max_multipart = max_multipart
        self.multipart_paths = multipart_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_json
        if scope["method"] == "PATCH" and scope["path"].startswith(self.multipart_paths):
            limit = self.max_multipart
        declared = b""
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
        if declared.isdigit() and int(declared) > limit:
            await _too_large(send)
            return

        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            # Reading the body outside FastAPI's parsing (which renders it itself).
            if started:
                raise
            await _too_large(send)


async def _too_large(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(TOO_LARGE)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": TOO_LARGE})
