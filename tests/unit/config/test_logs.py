"""Logging set-up: a logFile that cannot be opened is reported on stderr, never fatal;
Multus's logOptions rotate it."""

from __future__ import annotations

import gzip
import logging
import os
import time
from pathlib import Path

import pytest

from multinet.config import logrotate, logs
from multinet.config.logs import handlers


@pytest.mark.parametrize("bad", ["a\x00b", "/tmp/\ud800.log", "/nonexistent/dir/x.log"])
def test_bad_log_file_is_reported_not_fatal(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    found = handlers(bad, to_stderr=True, prog="multinet")
    assert [type(h) for h in found] == [logging.StreamHandler]
    assert "multinet: cannot open logFile" in capsys.readouterr().err


def test_log_file_is_opened(tmp_path: Path) -> None:
    found = handlers(str(tmp_path / "x.log"), to_stderr=False, prog="multinet")
    assert [type(h) for h in found] == [logging.FileHandler]
    for h in found:
        h.close()


def test_log_options_rotate_compress_and_prune_as_multus(tmp_path: Path) -> None:
    """Multus's logOptions: maxSize (MB), maxBackups, maxAge (days), compress."""
    path = tmp_path / "multinet.log"
    options = logs.LogOptions(max_size=1, max_backups=2, compress=True)
    (handler,) = logs.handlers(str(path), False, "multinet", options)
    assert isinstance(handler, logrotate.RotatingLog)
    logger = logging.getLogger("multinet-rotation-test")
    logger.addHandler(handler)
    try:
        line = "x" * 1023
        for _ in range(4 * 1024):  # 4 MiB: three rotations at 1 MiB
            logger.error(line)
    finally:
        logger.removeHandler(handler)
        handler.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["multinet.log", "multinet.log.1.gz", "multinet.log.2.gz"]
    with gzip.open(tmp_path / "multinet.log.1.gz", "rt") as f:
        assert f.readline().rstrip("\n") == line
    assert path.stat().st_size <= 1 << 20


def test_log_options_prune_backups_older_than_max_age(tmp_path: Path) -> None:
    path = tmp_path / "m.log"
    old = tmp_path / "m.log.7"
    old.write_text("old\n")
    os.utime(old, (time.time() - 3 * 86400,) * 2)
    handler = logrotate.RotatingLog(str(path), logs.LogOptions(max_size=1, max_age=2))
    try:
        handler.doRollover()
    finally:
        handler.close()
    assert not old.exists()


def test_no_log_options_no_rotation(tmp_path: Path) -> None:
    (handler,) = logs.handlers(str(tmp_path / "m.log"), False, "multinet", logs.LogOptions())
    try:
        assert type(handler) is logging.FileHandler
    finally:
        handler.close()


def test_a_value_utf8_cannot_encode_is_escaped_in_the_log_file(tmp_path: Path) -> None:
    path = tmp_path / "multinet.log"
    for options in (None, logs.LogOptions(max_size=1)):
        (handler,) = logs.handlers(str(path), False, "multinet", options)
        record = logging.LogRecord(
            "multinet", logging.WARNING, "", 0, "network %s", ("\udcb7",), None
        )
        handler.emit(record)  # a logging error would print a traceback on stderr
        handler.close()
    assert path.read_bytes().count(b"network \\udcb7") == 2
