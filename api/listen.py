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
import ctypes
import errno
import logging
import multiprocessing
import os
import signal
import socket
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
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

    claim: socket.socket | None = None

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


class PortInUse(OSError):
    pass


def listening_address(host: str, port: int) -> ListeningAddress:
    """The supervisor's claim on the address: `PortInUse` if another program listens there,
    or another `inventory serve` (SO_REUSEPORT alone would let a second one share the port,
    and requests would land on either at random)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        address: ListeningAddress = _bound(ListeningAddress, family, (host, port))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise PortInUse(exc.errno, f"port {port} is in use") from None
    port = address.getsockname()[1]
    # A name in Linux's abstract socket namespace, held while this process lives: the kernel
    # frees it however the process ends, and a second supervisor cannot take it.
    claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        claim.bind(f"\0inventory-serve-port-{port}")
    except OSError:
        claim.close()
        address.close()
        raise PortInUse(
            errno.EADDRINUSE, f"port {port} is in use by another `inventory serve`"
        ) from None
    address.claim = claim
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


@contextmanager
def light_worker_start() -> Iterator[None]:
    """Workers started meanwhile answer the supervisor's health check within a second.

    A spawned worker first re-imports the parent's `__main__` (multiprocessing's
    "prepare"); ours is the `inventory` script, which imports the CLI and with it the whole
    app: 6.8 s on the loaded 2-core development machine, past uvicorn's health check, so
    the supervisor killed workers that were still starting. Without a file to re-import, a
    worker loads uvicorn (0.7 s there), starts answering health checks, and imports the app
    after that."""
    main = sys.modules["__main__"]
    path, spec = getattr(main, "__file__", None), main.__spec__
    vars(main).pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        main.__spec__ = spec
        if path is not None:
            main.__file__ = path


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The loop factory for uvicorn (`loop="api.listen:new_event_loop"`): the first code of
    ours a worker runs, so it also ties the worker's life to its supervisor's."""
    _end_with_supervisor()
    return Loop()


_PR_SET_PDEATHSIG = 1


def _end_with_supervisor() -> None:
    # A worker outlived a SIGKILLed supervisor, still serving with nothing to replace or stop
    # it. Linux sends it SIGTERM (a graceful stop) when the supervisor dies, however it dies.
    supervisor = multiprocessing.parent_process()
    if supervisor is None or not sys.platform.startswith("linux"):
        return  # not a worker (one process serves alone), or not Linux
    if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0):
        log.warning("cannot tie this worker to its supervisor: %s", os.strerror(ctypes.get_errno()))
    elif os.getppid() != supervisor.pid:
        os.kill(os.getpid(), signal.SIGTERM)  # it died before the line above


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
