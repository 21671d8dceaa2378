"""How `inventory serve` listens: each worker on a socket of its own, accepting every
connection that waits.

uvicorn's workers share one listening socket, and the worker that wakes first takes every
connection waiting: a burst of new connections (a client opening its pool of 32) can land
all on one worker while the other idles, and stay there for as long as they are kept alive.
With a socket per worker bound with SO_REUSEPORT, Linux hands each new connection to one of
the workers' sockets by a hash of its addresses. Only processes of the same user can bind
the port this way.

uvloop (libuv) accepts one connection per turn of its loop, and a busy worker's turn is long,
so a burst waits to be accepted. `Loop` accepts all that wait whenever the socket is ready, as
asyncio's own loop does, and hands each connection to uvloop (figures: bench/RESULTS.md).
"""

import asyncio
import errno
import logging
import os
import socket
import stat
from typing import Any

import uvloop

log = logging.getLogger("api.listen")

# Connections taken per readiness of the socket at most, as asyncio's own loop does.
_ACCEPT_BATCH = 100
# The listen backlog when none is given (asyncio's default).
_BACKLOG = 100
# After the process ran out of file descriptors or memory: wait before accepting again.
_RETRY_SECONDS = 1.0


class ListeningAddress(socket.socket):
    """Bound in the supervisor, never listened on: it holds the address (a port already taken
    fails at startup, as before) and receives no connections. uvicorn's supervisor hands its
    sockets to each worker it starts by pickling them; a worker unpickles this as a socket
    of its own, bound to the same address, on which uvicorn listens."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_bound, (socket.socket, self.family, self.getsockname()))


def _bound(kind: type[socket.socket], family: socket.AddressFamily, address: Any) -> Any:
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP.
    sock = kind(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def listening_address(host: str, port: int) -> ListeningAddress:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    address: ListeningAddress = _bound(ListeningAddress, family, (host, port))
    return address


def listening_path(path: str) -> socket.socket:
    """A unix socket at `path` (`inventory serve --uds`), which the workers share. A socket
    file nothing listens on any more (left by a killed server) is replaced; one in use is not."""
    if os.path.exists(path) and stat.S_ISSOCK(os.stat(path).st_mode):
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(path)
            except ConnectionRefusedError:
                os.unlink(path)
            else:
                raise OSError(errno.EADDRINUSE, "another server listens there")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)  # its mode follows the umask: who may connect is the owner's choice
    except BaseException:
        sock.close()
        raise
    return sock


class Loop(uvloop.Loop):
    """uvloop, where a server on a listening socket handed in (`create_server(sock=...)`, as
    uvicorn's workers start theirs) accepts every connection waiting at once."""

    async def create_server(
        self, protocol_factory: Any, *args: Any, sock: Any = None, **kwargs: Any
    ) -> Any:
        if sock is None or args or kwargs.get("ssl") is not None:
            return await super().create_server(protocol_factory, *args, sock=sock, **kwargs)
        return _Acceptor(self, protocol_factory, sock, kwargs.get("backlog", _BACKLOG))


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The loop factory for uvicorn (`loop="api.listen:new_event_loop"`)."""
    return Loop()


class _Acceptor:
    """The part of asyncio's Server that uvicorn uses: `sockets`, `close`, `wait_closed`."""

    def __init__(self, loop: Loop, protocol_factory: Any, sock: socket.socket, backlog: int):
        self._loop = loop
        self._protocol_factory = protocol_factory
        self._sock = sock
        self.sockets = (sock,)
        sock.setblocking(False)
        sock.listen(backlog)
        self._listening = False
        self._listen()

    def _listen(self) -> None:
        if not self._listening and self._sock.fileno() >= 0:
            self._loop.add_reader(self._sock.fileno(), self._accept)
            self._listening = True

    def _pause(self) -> None:
        if self._listening:
            self._loop.remove_reader(self._sock.fileno())
            self._listening = False

    def _accept(self) -> None:
        for _ in range(_ACCEPT_BATCH):
            try:
                conn, _address = self._sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return  # none waiting (or one gave up before it was taken)
            except OSError as exc:
                # Out of file descriptors or memory: the connections wait in the backlog.
                log.error("accepting connections paused for %.0f s: %s", _RETRY_SECONDS, exc)
                self._pause()
                self._loop.call_later(_RETRY_SECONDS, self._listen)
                return
            self._loop.create_task(self._serve(conn))

    async def _serve(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._protocol_factory, conn)
        except OSError:
            conn.close()  # the client went away before its transport was made

    def close(self) -> None:
        self._pause()
        self._sock.close()

    async def wait_closed(self) -> None:
        return
