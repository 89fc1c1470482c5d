"""Logging set up from the netconf keys Multus users know: logLevel, logFile, logToStderr.

A thin-mode process writes its lines with `multinet.log`'s writer, not `logging` (not
imported: docs/performance.md); a process that has loaded `logging` already (multinetd, the
tests), or a logFile that rotates (`logging.handlers`), configures `logging` as before."""

from __future__ import annotations

import os
import sys

from multinet.log import CRITICAL, DEBUG, ERROR, INFO, WARNING, Writer, log
from multinet.record import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from collections.abc import Mapping
    from typing import Any, TextIO

LEVELS = {
    "debug": DEBUG,
    "verbose": INFO,
    "info": INFO,
    "warning": WARNING,
    "warn": WARNING,
    "error": ERROR,
    "panic": CRITICAL,
    "": WARNING,
}


def level_name(value: str) -> str:
    """The netconf's logLevel as Multus reads it: case-insensitive, and a level it does not
    know is ignored (with a word on stderr), not an error."""
    name = value.strip().lower()
    if name in LEVELS:
        return name
    known = ", ".join(level for level in LEVELS if level)
    print(f"multinet: unknown logLevel {value!r} ignored (one of {known})", file=sys.stderr)
    return ""


@record(frozen=True)
class LogOptions:
    """Multus's `logOptions` (lumberjack's): rotate the logFile past `max_size` MB, keep
    `max_backups` rotated files (0: all) no older than `max_age` days (0: any age),
    gzip them when `compress`. All 0/false (the default): no rotation."""

    max_size: int = 0
    max_age: int = 0
    max_backups: int = 0
    compress: bool = False

    @classmethod
    def from_netconf(cls, raw: Mapping[str, Any]) -> LogOptions:
        return cls(
            max_size=int(raw.get("maxSize", 0)),
            max_age=int(raw.get("maxAge", 0)),
            max_backups=int(raw.get("maxBackups", 0)),
            compress=bool(raw.get("compress", False)),
        )


# A logged value may hold what UTF-8 cannot encode (a lone surrogate: the bytes of a
# non-UTF-8 name from the netconf or the environment): escaped, never a logging error.
LOG_ERRORS = "backslashreplace"


def handlers(
    log_file: str, to_stderr: bool, prog: str, options: LogOptions | None = None
) -> list[logging.Handler]:
    """stderr and/or logFile handlers; a logFile that cannot be opened is reported, not fatal."""
    import logging

    out: list[logging.Handler] = []
    if to_stderr:
        out.append(logging.StreamHandler(sys.stderr))
    if log_file:
        try:
            if options is not None and options.max_size > 0:
                from multinet.config.logrotate import RotatingLog  # only rotation pays

                out.append(RotatingLog(log_file, options))
            else:
                out.append(logging.FileHandler(log_file, errors=LOG_ERRORS))
        except (OSError, ValueError) as e:  # ValueError: a NUL, UnicodeEncodeError: a surrogate
            print(f"{prog}: cannot open logFile {log_file!r}: {e}", file=sys.stderr)
    return out


def streams(log_file: str, to_stderr: bool, prog: str) -> list[TextIO]:
    """What `handlers` opens, for `multinet.log`'s writer: stderr and/or the logFile, opened
    as logging.FileHandler opens it; a logFile that cannot be opened is reported, not fatal."""
    out: list[TextIO] = []
    if to_stderr:
        out.append(sys.stderr)
    if log_file:
        try:
            out.append(open(os.path.abspath(log_file), "a", encoding="locale", errors=LOG_ERRORS))
        except (OSError, ValueError) as e:  # ValueError: a NUL, UnicodeEncodeError: a surrogate
            print(f"{prog}: cannot open logFile {log_file!r}: {e}", file=sys.stderr)
    return out


def configure(
    level: str,
    log_file: str,
    to_stderr: bool,
    context: str = "",
    options: LogOptions | None = None,
) -> None:
    rotates = log_file and options is not None and options.max_size > 0
    if "logging" not in sys.modules and not rotates:
        log.write_to(
            Writer(LEVELS.get(level, WARNING), context, streams(log_file, to_stderr, "multinet"))
        )
        return
    import logging

    log.write_to(None)
    logger = logging.getLogger("multinet")
    logger.handlers.clear()
    logger.setLevel(LEVELS.get(level, WARNING))
    logger.propagate = False
    fmt = logging.Formatter(
        "%(asctime)s %(levelname)s " + (context + " " if context else "") + "%(message)s"
    )
    for h in handlers(log_file, to_stderr, "multinet", options):
        h.setFormatter(fmt)
        logger.addHandler(h)
