"""Whether the database answers, as this process sees it, and the one error for "it does not".

Connection failures, a server that closed the connection, and statements or connection
attempts that ran past their timeout all become `DatabaseUnavailable` (the API answers 503
with Retry-After). The first such failure is logged once, at ERROR; the first connection
handed out after it is logged as the database being back. While it is down, one request a
second (PROBE_INTERVAL) tries to connect; the others fail at once instead of each waiting for
the connect timeout, and so do the requests that were waiting for a pooled connection.
"""

import logging
import time
from collections.abc import Callable

log = logging.getLogger("models.availability")

# PostgreSQL error classes meaning "not now" rather than "wrong": connection exceptions,
# too many connections, and a server shutting down or starting up.
_UNAVAILABLE_SQLSTATES = ("08", "53300", "57P01", "57P02", "57P03")
# While it is down, one request tries to connect at most this often; the others fail at once.
PROBE_INTERVAL = 1.0
# Pool timeouts under load are logged at most this often.
_POOL_LOG_INTERVAL = 60.0


class DatabaseUnavailable(Exception):
    """The database could not be reached, or did not answer in time."""


class Availability:
    def __init__(self, on_down: Callable[[DatabaseUnavailable], None]) -> None:
        # Called once as the database goes down (the pool fails its waiting requests).
        self.on_down = on_down
        self.down_since: float | None = None
        self.probing = False
        self._probed = 0.0
        self.refused = 0
        self._pool_waits = 0
        self._pool_logged = 0.0

    def start_probe(self) -> bool:
        """While it is down: True if this request is to find out whether it is back."""
        if self.probing or time.monotonic() - self._probed < PROBE_INTERVAL:
            return False
        self.probing = True
        return True

    def end_probe(self) -> None:
        self.probing = False
        self._probed = time.monotonic()

    def went_down(self, reason: str) -> DatabaseUnavailable:
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.refused = 0
            log.error("database unreachable (%s); answering 503 until it is back", reason)
            self.on_down(DatabaseUnavailable(reason))
        self.refused += 1
        return DatabaseUnavailable(reason)

    def came_back(self) -> None:
        if self.down_since is not None:
            log.warning(
                "database reachable again after %.1f s (%d requests refused)",
                time.monotonic() - self.down_since,
                self.refused,
            )
            self.down_since = None

    def pool_timeout(self, seconds: float) -> DatabaseUnavailable:
        reason = f"no database connection free within {seconds:g} s"
        if self.down_since is not None:
            self.refused += 1  # part of the outage already logged
            return DatabaseUnavailable(reason)
        self._pool_waits += 1
        now = time.monotonic()
        if now - self._pool_logged >= _POOL_LOG_INTERVAL:
            log.warning("%s (%d requests answered 503)", reason, self._pool_waits)
            self._pool_waits = 0
            self._pool_logged = now
        return DatabaseUnavailable(reason)


def unreachable(exc: BaseException) -> bool:
    """An error of the connection rather than of the statement: the network, a timeout, the
    server gone or refusing connections for now."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError):  # refused, reset, unreachable, timed out
            return True
        if str(getattr(seen, "sqlstate", "") or "").startswith(_UNAVAILABLE_SQLSTATES):
            return True
        seen = seen.__cause__
    return False


def describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer within the timeout"
    cause = exc.__cause__ or exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0]}" if text else type(cause).__name__
