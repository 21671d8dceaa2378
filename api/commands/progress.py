"""A one-line progress bar on standard error (stdlib only: `\\r` redraws the line)."""

import sys
from types import TracebackType
from typing import Self, TextIO

# Below this many rows an import is over before a bar would be read.
LARGE = 1000
WIDTH = 30


class Progress:
    def __init__(self, label: str, total: int, enabled: bool, stream: TextIO | None = None):
        self.label, self.total, self.enabled = label, total, enabled and total > 0
        self.stream = stream or sys.stderr
        self._shown = -1

    @staticmethod
    def wanted(total: int, forced: bool | None) -> bool:
        """Forced on or off by the user, or else: a large file and a terminal to draw on."""
        if forced is not None:
            return forced
        return total >= LARGE and sys.stderr.isatty()

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        percent = done * 100 // self.total
        if percent == self._shown:  # redraw at most 101 times
            return
        self._shown = percent
        filled = WIDTH * done // self.total
        bar = "#" * filled + "." * (WIDTH - filled)
        self.stream.write(f"\r{self.label} [{bar}] {percent:3d}% {done}/{self.total}")
        self.stream.flush()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.enabled and self._shown >= 0:
            self.stream.write("\n")
            self.stream.flush()
