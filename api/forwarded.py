"""X-Forwarded-For and X-Forwarded-Proto, believed only from TRUSTED_PROXIES.

uvicorn's ProxyHeadersMiddleware does the work: from a trusted peer, the client is the
rightmost address of X-Forwarded-For that is not itself a trusted proxy (a client cannot
forge its way past the proxy, which appends the address it saw), and the scheme is
X-Forwarded-Proto's. From anyone else both headers are ignored. `unix` trusts peers on a
unix socket (`inventory serve --uds`), which have no address; the socket file's
permissions decide who they can be.
"""

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

UNIX = "unix"


class ForwardedHeaders:
    def __init__(self, app: ASGIApp, trusted: list[str]) -> None:
        self.app = app
        self.unix = UNIX in trusted
        self.proxy = ProxyHeadersMiddleware(app, trusted)  # type: ignore[arg-type]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.unix and not scope.get("client"):
            scope["client"] = (UNIX, 0)
        await self.proxy(scope, receive, send)  # type: ignore[arg-type]
