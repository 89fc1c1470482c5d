"""Property-based tests (hypothesis) of multinet's promise: no input crashes multinet, no
failed ADD leaks, nothing blocks a pod's deletion.

Profiles: ``ci`` (the default) runs the small number of examples each property asks for
(`harness.budget`), so the folder takes about a minute; ``fuzz`` is selected by
``MULTINET_FUZZ_EXAMPLES=N`` (``make fuzz EXAMPLES=N``) and runs N examples per
property, without the per-test timeout. ``MULTINET_FUZZ_SKIP_PINNED=1`` skips the
``@example`` pins (hypothesis generates nothing once a pin fails): for exploring.

The properties that touch no kernel object (API objects, the daemon's protocol decoder)
run without root; every other one is marked ``root`` and skipped, as the rest of
tests/integration, when not root or without the reference plugins.

Fixtures (imported below so that pytest sees them): ``capture_logs``, ``world`` and
``netconf`` from ``harness``; ``manifests`` and ``kube`` (a cluster of the manifests
source or the API test server) from ``cluster``.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, settings

from tests.integration.conftest import missing_requirement
from tests.integration.properties.cluster import kube, manifests
from tests.integration.properties.harness import capture_logs, fuzz_examples, netconf, world

__all__ = ["capture_logs", "kube", "manifests", "netconf", "world"]

_COMMON = {
    "deadline": None,  # a delegate run costs tens of ms, and the kernel is not steady
    "print_blob": True,
    "suppress_health_check": [
        HealthCheck.function_scoped_fixture,  # each example resets the world itself
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
}
if os.environ.get("MULTINET_FUZZ_SKIP_PINNED") == "1":  # explore past failing pins
    _COMMON["phases"] = [p for p in Phase if p is not Phase.explicit]
settings.register_profile("ci", **_COMMON)
settings.register_profile("fuzz", max_examples=fuzz_examples() or 10_000, **_COMMON)
settings.load_profile("fuzz" if fuzz_examples() else "ci")


@pytest.fixture(autouse=True)
def _requirements(request: pytest.FixtureRequest) -> None:
    """Overrides tests/integration's: only the `root` properties need root and plugins."""
    reason = missing_requirement()
    if reason and request.node.get_closest_marker("root") is not None:
        pytest.skip(reason)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if fuzz_examples():
        for item in items:
            if "properties" in str(item.path):
                item.add_marker(pytest.mark.timeout(0))
