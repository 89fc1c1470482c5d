"""Suite-wide policy: with MULTINET_FORBID_SKIPS=1 (as .ci/run sets it) a skipped test fails
the run. CI runs as root with every package installed, so a skip there means missing setup,
not a machine that cannot run the test.

No test writes in the host's default CNI directories (tests/support/hostdirs.py): a test
that did fails in its teardown, naming what it wrote (one marked `host_dirs`, which uses a
default on purpose, only for what it left); whatever was created or removed there between
the start and the end of the session (between tests too) fails the run."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from tests.support import hostdirs

# Skips that no setup can cure here, each with why.
ALLOWED_SKIPS = (
    # No registry reachable from these machines serves upstream cnitool's source; the
    # libcni driver with cnitool's command line runs the same walk-through (docs/cnitool.md).
    "cannot build upstream cnitool",
)
_skipped: list[tuple[str, str]] = []
_host_dirs_at_start: hostdirs.Snapshot = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "host_dirs(reason): the test uses a default CNI directory of the host on purpose and "
        "restores it; only what it leaves there fails it (tests/support/hostdirs.py)",
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    _host_dirs_at_start.update(hostdirs.snapshot())


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skipped.append((report.nodeid, str(reason)))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    written = hostdirs.changes(_host_dirs_at_start, hostdirs.snapshot(), modified=False)
    if written:
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_line(hostdirs.report("This test session", written), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if os.environ.get("MULTINET_FORBID_SKIPS") != "1":
        return
    forbidden = [(n, r) for n, r in _skipped if not any(a in r for a in ALLOWED_SKIPS)]
    if forbidden:
        if reporter is not None:
            reporter.write_line(f"{len(forbidden)} test(s) skipped (MULTINET_FORBID_SKIPS=1):")
            for nodeid, reason in forbidden:
                reporter.write_line(f"  {nodeid}: {reason}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def _multinet_logger_as_found() -> Iterator[None]:
    """In-process runs configure the "multinet" logger as thin mode does (its own
    handlers, no propagation); put it back as it was, or a later test's caplog sees
    nothing (the order of tests decides which)."""
    logger = logging.getLogger("multinet")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


@pytest.fixture(autouse=True)
def _host_dirs_untouched(request: pytest.FixtureRequest) -> Iterator[None]:
    """The test (its fixtures' teardowns included: this one is torn down last) wrote
    nothing in the host's default CNI directories."""
    on_purpose = request.node.get_closest_marker("host_dirs") is not None
    before = hostdirs.snapshot()
    yield
    written = hostdirs.changes(before, hostdirs.snapshot(), modified=not on_purpose)
    if written:
        pytest.fail(hostdirs.report(request.node.nodeid, written), pytrace=False)
