"""The HTTP protocol of `inventory serve`: uvicorn's httptools one, with deadlines and a cap.

uvicorn closes a connection that idles between requests (its keep-alive timeout) but not one
that never finishes a request: a client sending its head a byte at a time, or a body that
stops, held its connection (and a file descriptor) for ever, and enough of them starved every
other client. Here:
- a request head must be complete within HEADER_TIMEOUT_SECONDS of the connection opening or
  of the request's first byte, else the connection is closed;
- a body must keep arriving: BODY_TIMEOUT_SECONDS without a byte of it closes the connection
  (time the server itself stops reading, to let the app catch up, does not count);
- past MAX_CONNECTIONS_PER_WORKER open connections a new one is answered 503 and closed at
  once, so the worker never runs out of file descriptors.
"""

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from api.settings import get_api_settings

_BUSY_BODY = b'{"detail":"Too many connections; try again later"}'
BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: application/json\r\n"
    b"content-length: %d\r\n"
    b"retry-after: 1\r\n"
    b"connection: close\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY)
)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        settings = get_api_settings()
        self.head_timeout = settings.HEADER_TIMEOUT_SECONDS
        self.body_timeout = settings.BODY_TIMEOUT_SECONDS
        self.max_connections = settings.MAX_CONNECTIONS_PER_WORKER
        self.deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.write(BUSY)
            transport.close()
            return
        self._expect(self.head_timeout, self._head_late)

    def connection_lost(self, exc: Exception | None) -> None:
        self._expect(None)
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._expect(self.head_timeout, self._head_late)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._expect(self.body_timeout, self._body_stalled)

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._expect(self.body_timeout, self._body_stalled)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._expect(None)

    def _expect(self, seconds: float | None, late: Any = None) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
        if seconds is not None:
            self.deadline = self.loop.call_later(seconds, late)

    def _head_late(self) -> None:
        self.deadline = None
        self.transport.close()

    def _body_stalled(self) -> None:
        self.deadline = None
        if self.flow.read_paused:  # the server stopped reading, not the client sending
            self._expect(self.body_timeout, self._body_stalled)
            return
        self.transport.close()
