"""One log line per request, and an `X-Request-ID` on every response.

Pure ASGI (BaseHTTPMiddleware would cost throughput). The app wraps its whole middleware stack
in this one, so it also sees the answers Starlette's outer layers make (a 500, a 413).
"""

import logging
import os
import re
import time
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"
_HEADER_BYTES = HEADER.encode()
# A client's id is echoed only if it is safe to put in a log line and a header.
_SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_MAX_PATH = 512

# Set in the scope by the 500 handler once it has logged the exception with the request id.
ERROR_LOGGED = "api.error_logged"

log = logging.getLogger("api.access")
_request_id: ContextVar[str] = ContextVar("request_id", default="-")


def current_request_id() -> str:
    """The id of the request being handled ("-" outside one)."""
    return _request_id.get()


def _incoming_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == _HEADER_BYTES:
            candidate = value.decode("latin-1")
            if _SANE_ID.fullmatch(candidate):
                return str(candidate)
            break
    return os.urandom(16).hex()


def _loggable_path(scope: Scope) -> str:
    # The raw (still percent-encoded) path: a decoded one could carry a newline into the log.
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else str(scope["path"]).encode("unicode_escape").decode()
    path = path.split("?", 1)[0]
    return path if len(path) <= _MAX_PATH else path[:_MAX_PATH] + "…"


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope)
        token = _request_id.set(request_id)
        # Also for the audit trail (auth/audit.origin_of), as `request.state.request_id`.
        scope.setdefault("state", {})["request_id"] = request_id
        start = time.perf_counter()
        status = 500

        id_header = (_HEADER_BYTES, request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Starlette re-raises after its 500 answer only so that the server logs the
            # traceback; api/errors.py has logged it already, with the request id.
            if not scope.get(ERROR_LOGGED):
                raise
        finally:
            _request_id.reset(token)
            if log.isEnabledFor(logging.INFO):
                _log(scope, status, (time.perf_counter() - start) * 1000, request_id)


def _log(scope: Scope, status: int, duration_ms: float, request_id: str) -> None:
    method, path = scope["method"], _loggable_path(scope)
    log.info(
        "%s %s %d %.1fms id=%s",
        method,
        path,
        status,
        duration_ms,
        request_id,
        extra={
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round(duration_ms, 1),
            "request_id": request_id,
        },
    )
