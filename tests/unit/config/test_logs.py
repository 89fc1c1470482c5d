"""Logging set-up: a logFile that cannot be opened is reported on stderr, never fatal."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

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
