"""The `multinet` logger every module on a CNI call's path writes to: `log.warning(...)`.

In multinetd and wherever `logging` is loaded, its records go to `logging.getLogger("multinet")`
as they always did. A thin-mode process does not import `logging` (~26 million instructions,
with `traceback`, `string` and `weakref`, on every call: docs/performance.md): there
`config.logs.configure` hands it a `Writer`, which writes the lines `logging` would have
written with the same format ("<asctime> <LEVEL> <context> <message>") to stderr and/or the
logFile. Before that, or when it is not handed one, a record goes to `logging` (imported then).
"""

from __future__ import annotations

import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

DEBUG = 10
INFO = 20
WARNING = 30
ERROR = 40
CRITICAL = 50
NAMES = {DEBUG: "DEBUG", INFO: "INFO", WARNING: "WARNING", ERROR: "ERROR", CRITICAL: "CRITICAL"}


class Writer:
    """`logging`'s lines for the `multinet` logger as config.logs configures it, without it:
    records at `level` and above, each on every stream, flushed."""

    def __init__(self, level: int, context: str, streams: list[TextIO]) -> None:
        self.level = level
        self.prefix = context + " " if context else ""
        self.streams = streams

    def line(self, level: int, msg: str, args: tuple[object, ...], exc: bool) -> str:
        now = time.time()  # as logging.Formatter's asctime: local time, milliseconds cut
        msecs = int((now - int(now)) * 1000)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
        text = f"{stamp},{msecs:03d} {NAMES[level]} {self.prefix}{msg % args if args else msg}"
        if exc:
            import traceback  # only with a traceback to format

            trace = "".join(traceback.format_exception(*sys.exc_info())).rstrip("\n")
            text += "\n" + trace
        return text

    def write(self, level: int, msg: str, args: tuple[object, ...], exc: bool) -> None:
        if level < self.level:
            return
        text = self.line(level, msg, args, exc) + "\n"
        for stream in self.streams:
            try:
                stream.write(text)
                stream.flush()
            except (OSError, ValueError):  # a full disk, a closed stderr: never the call's
                pass


class Log:
    def __init__(self) -> None:
        self.writer: Writer | None = None

    def write_to(self, writer: Writer | None) -> None:
        """Write with `writer` from now on; None: through `logging`."""
        self.writer = writer

    def _log(self, level: int, msg: str, args: tuple[object, ...], exc: bool = False) -> None:
        if self.writer is not None:
            self.writer.write(level, msg, args, exc)
            return
        import logging

        # stacklevel: the record names the caller of log.warning, not this module
        logging.getLogger("multinet").log(
            level, msg, *args, exc_info=True if exc else None, stacklevel=3
        )

    def debug(self, msg: str, *args: object) -> None:
        self._log(DEBUG, msg, args)

    def info(self, msg: str, *args: object) -> None:
        self._log(INFO, msg, args)

    def warning(self, msg: str, *args: object) -> None:
        self._log(WARNING, msg, args)

    def error(self, msg: str, *args: object) -> None:
        self._log(ERROR, msg, args)

    def exception(self, msg: str, *args: object) -> None:
        """An error with the traceback of the exception being handled."""
        self._log(ERROR, msg, args, exc=True)


log = Log()
