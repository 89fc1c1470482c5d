"""A size-rotated logFile (Multus's `logOptions`): imported only when rotation is asked
for, so that a CNI call that does not rotate does not import `logging.handlers` (and with
it `socket`, `pickle` and `queue`), `gzip` or `glob` (~4 ms of thin mode's start)."""

from __future__ import annotations

import contextlib
import glob
import gzip
import logging.handlers
import os
import shutil
import time

from multinet.config.logs import LogOptions

MAX_BACKUPS = 1000  # lumberjack's "0: keep them all", bounded


class RotatingLog(logging.handlers.RotatingFileHandler):
    """A size-rotated logFile with lumberjack's retention: backups pruned by count and age,
    optionally gzipped. Rotation is per process, as with Multus: thin-mode processes that
    rotate at once may each keep a few extra lines in the new file."""

    def __init__(self, path: str, options: LogOptions) -> None:
        keep = options.max_backups or MAX_BACKUPS
        super().__init__(
            path,
            maxBytes=options.max_size << 20,
            backupCount=keep,
            delay=False,
            errors="backslashreplace",  # as logs.LOG_ERRORS: a surrogate is escaped
        )
        self.options = options
        if options.compress:
            self.namer = lambda name: name + ".gz"
            self.rotator = _gzip

    def doRollover(self) -> None:
        super().doRollover()
        if self.options.max_age:
            cutoff = time.time() - self.options.max_age * 86400
            for backup in glob.glob(glob.escape(self.baseFilename) + ".*"):
                with contextlib.suppress(OSError):
                    if os.path.getmtime(backup) < cutoff:
                        os.unlink(backup)


def _gzip(source: str, dest: str) -> None:
    with open(source, "rb") as src, gzip.open(dest, "wb") as out:
        shutil.copyfileobj(src, out)
    os.unlink(source)
