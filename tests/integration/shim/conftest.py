"""Fixtures for the native ``multinet-shim`` (shim/): the installed binary, fake
daemons on unix sockets, a recording stand-in for the thin ``multinet``, and a
real ``multinetd``.

Self-contained: nothing here imports other test folders. Everything a test makes
lives in a fresh ``/tmp/mnshim-*`` directory (short, since unix socket paths are
limited to 108 bytes) that is removed afterwards, with the daemons stopped first.

Fixtures:

``shim_bin`` (session) -> Path
    The native ``multinet-shim`` that pip installed into the scripts directory
    (an ELF file; the test fails if it is a Python script).
``workdir`` -> Path
    The test's short temporary directory.
``fake_daemon`` -> Callable[..., FakeDaemon]
    ``fake_daemon(answer, accept=True)``: serves ``workdir/fake.sock`` in a thread.
    ``answer(conn, request)`` writes whatever it wants on the socket.
``recorder`` -> Recorder
    ``workdir/bin/multinet``: records its argv, env and stdin, prints
    ``RECORDED_STDOUT`` and exits ``RECORDED_CODE``.
``multinetd`` -> Callable[[], Daemon]
    Starts the real daemon (the ``multinetd`` console script) on ``workdir/d.sock``.
"""

from __future__ import annotations

import shutil
import sysconfig
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.shim.shimkit import Answer, Daemon, FakeDaemon, Recorder


@pytest.fixture(scope="session")
def shim_bin() -> Path:
    path = Path(sysconfig.get_path("scripts")) / "multinet-shim"
    assert path.is_file(), f"{path} missing: pip install -e '.[dev]' builds it"
    with open(path, "rb") as f:
        magic = f.read(4)
    assert magic == b"\x7fELF", f"{path} is not the native shim (pip install -e '.[dev]')"
    return path


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="mnshim-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def fake_daemon(workdir: Path) -> Iterator[Callable[..., FakeDaemon]]:
    made: list[FakeDaemon] = []

    def make(answer: Answer, accept: bool = True) -> FakeDaemon:
        d = FakeDaemon(workdir / "fake.sock", answer, accept)
        made.append(d)
        return d

    try:
        yield make
    finally:
        for d in made:
            d.stop()


@pytest.fixture
def recorder(workdir: Path) -> Recorder:
    (workdir / "bin").mkdir()
    return Recorder(workdir / "bin" / "multinet")


@pytest.fixture
def multinetd(workdir: Path) -> Iterator[Callable[[], Daemon]]:
    made: list[Daemon] = []

    def start() -> Daemon:
        d = Daemon(workdir)
        made.append(d)
        return d

    try:
        yield start
    finally:
        for d in made:
            d.stop()
