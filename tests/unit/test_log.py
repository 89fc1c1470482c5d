"""multinet.log: thin mode's writer writes the lines `logging` writes, configured alike."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import multinet

ROOT = str(Path(multinet.__file__).resolve().parent.parent)
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ", re.M)

SCRIPT = """
import sys
sys.path.insert(0, {root!r})
if {with_logging}:
    import logging
from multinet.config import logs
from multinet.log import log

log.warning("before: %s", "configure")  # logging's last resort: the message alone
logs.configure({level!r}, {log_file!r}, True, context="container=c1 ifname=eth0")
log.debug("debug %d", 1)
log.info("info %s %r", "x", "y")
log.warning("a surrogate \\udcff and 100%% literal")
log.error("no args: %s")
try:
    raise ValueError("boom")
except ValueError:
    log.exception("failed %s", "here")
print("logging" in sys.modules)
"""


def run(tmp_path: Path, with_logging: bool, level: str) -> tuple[str, str, str]:
    log_file = tmp_path / f"{with_logging}-{level}.log"
    code = SCRIPT.format(root=ROOT, with_logging=with_logging, level=level, log_file=str(log_file))
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True
    )
    return proc.stdout, STAMP.sub("<T> ", proc.stderr), STAMP.sub("<T> ", log_file.read_text())


@pytest.mark.parametrize("level", ["debug", "warning", "error"])
def test_the_writer_writes_what_logging_writes(tmp_path: Path, level: str) -> None:
    loaded, stderr, file = run(tmp_path, with_logging=False, level=level)
    assert loaded.strip() == "True"  # imported by the last resort before configure
    expected = run(tmp_path, with_logging=True, level=level)
    assert (stderr, file) == expected[1:]
    assert "<T> ERROR container=c1 ifname=eth0 failed here\nTraceback" in file
    assert "ValueError: boom\n" in file


def test_a_configured_process_never_imports_logging(tmp_path: Path) -> None:
    code = SCRIPT.format(
        root=ROOT, with_logging=False, level="debug", log_file=str(tmp_path / "m.log")
    ).replace('log.warning("before: %s", "configure")', "")
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True
    )
    assert proc.stdout.strip() == "False"
    lines = STAMP.sub("<T> ", (tmp_path / "m.log").read_text()).splitlines()
    assert lines[:4] == [
        "<T> DEBUG container=c1 ifname=eth0 debug 1",
        "<T> INFO container=c1 ifname=eth0 info x 'y'",
        "<T> WARNING container=c1 ifname=eth0 a surrogate \\udcff and 100%% literal",  # no args
        "<T> ERROR container=c1 ifname=eth0 no args: %s",
    ]
    assert STAMP.sub("<T> ", proc.stderr).splitlines()[:4] == lines[:4]
