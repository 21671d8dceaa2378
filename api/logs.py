"""Make the application's own log records visible at LOG_LEVEL when nothing else set logging up.

Under uvicorn only uvicorn's loggers have handlers, so the INFO records of `auth.events`
would be dropped by Python's last-resort handler.
"""

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(level: str) -> None:
    for name in ("api", "auth"):
        logger = logging.getLogger(name)
        logger.setLevel(level.upper())
        if not logger.handlers and not logging.getLogger().handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter(FORMAT))
            logger.addHandler(handler)
