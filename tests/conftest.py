"""Suite-wide policy: with MULTINET_FORBID_SKIPS=1 (as .ci/run sets it) a skipped test fails
the run. CI runs as root with every package installed, so a skip there means missing setup,
not a machine that cannot run the test."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

# Skips that no setup can cure here, each with why.
ALLOWED_SKIPS = (
    # No registry reachable from these machines serves upstream cnitool's source; the
    # libcni driver with cnitool's command line runs the same walk-through (docs/cnitool.md).
    "cannot build upstream cnitool",
)
_skipped: list[tuple[str, str]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skipped.append((report.nodeid, str(reason)))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("MULTINET_FORBID_SKIPS") != "1":
        return
    forbidden = [(n, r) for n, r in _skipped if not any(a in r for a in ALLOWED_SKIPS)]
    if forbidden:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
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
