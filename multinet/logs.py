"""Logging set up from the netconf keys Multus users know: logLevel, logFile, logToStderr."""

from __future__ import annotations

import logging
import sys

LEVELS = {
    "debug": logging.DEBUG,
    "verbose": logging.INFO,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "panic": logging.CRITICAL,
    "": logging.WARNING,
}


def configure(level: str, log_file: str, to_stderr: bool, context: str = "") -> None:
    logger = logging.getLogger("multinet")
    logger.handlers.clear()
    logger.setLevel(LEVELS.get(level, logging.WARNING))
    logger.propagate = False
    fmt = logging.Formatter(
        "%(asctime)s %(levelname)s " + (context + " " if context else "") + "%(message)s"
    )
    handlers: list[logging.Handler] = []
    if to_stderr:
        handlers.append(logging.StreamHandler(sys.stderr))
    if log_file:
        try:
            handlers.append(logging.FileHandler(log_file))
        except OSError as e:
            print(f"multinet: cannot open logFile {log_file}: {e}", file=sys.stderr)
    for h in handlers:
        h.setFormatter(fmt)
        logger.addHandler(h)
