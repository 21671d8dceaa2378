"""Logging set up once per process (the app factory and the CLI call `configure_logging`):
one handler on the root logger, plain text or JSON lines (`LOG_FORMAT`)."""

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from api.settings import LogFormat, get_api_settings

# Attributes every LogRecord has; anything else was passed with `extra=` and is data.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class TextFormatter(logging.Formatter):
    """`2026-11-25T08:40:01.123+00:00 INFO api.access GET /items 200 3.1ms id=…`"""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname} {record.name} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line; fields given with `extra=` become keys of their own."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_extras(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever sys.stderr is at the time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure_logging() -> None:
    """Idempotent: replaces only the handler it installed, so a test's capture handler stays."""
    settings = get_api_settings()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(handler)
    handler = _StderrHandler()
    json_lines = LogFormat.json == settings.LOG_FORMAT
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    root.addHandler(handler)
    root.setLevel(settings.LOG_LEVEL.upper())
    # Uvicorn's loggers would print with their own format; let them reach this handler instead.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # api/request_log.py replaces uvicorn's access log (also when uvicorn is started directly).
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
