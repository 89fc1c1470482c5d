"""The engine calls nothing above it: the verbs (meta) run its steps in order.

The import contract "The engine imports nothing above it" (pyproject.toml, `make lint`)
holds the imports; this holds the calls that imports cannot show: nothing of the layers
above is handed to the engine to call back, neither to its constructor nor to a step.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import multinet.engine
from multinet.engine.engine import Engine
from multinet.engine.sandbox import Sandbox

# The host's seams (engine.ports; the DHCP probe, engine.dhcp) and the engine's settings.
SEAMS = {"conf", "store", "pod_netns", "executor", "observer", "legacy", "probe"}
SEAMS |= {"releases", "gate"}  # engine.releases, engine.gate
ABOVE = ("multinet.networks", "multinet.meta", "multinet.cluster", "multinet.thin")
ABOVE += ("multinet.daemon", "multinet.cli", "multinet.authoring", "multinet.webhook")


def test_the_engine_is_built_from_the_hosts_seams_only() -> None:
    params = set(inspect.signature(Engine.__init__).parameters) - {"self"}
    assert params == SEAMS  # no planner, reporter, status networks or preflight


def test_no_step_takes_a_callable() -> None:
    """A step gets data (a request, a plan, a journal, an outcome), never a function to
    call: the caller runs what comes before and after it."""
    for cls in (Engine, Sandbox):
        for name, method in inspect.getmembers(cls, inspect.isfunction):
            if name.startswith("_"):
                continue
            hints = inspect.get_annotations(method)
            assert not any("Callable" in str(h) for h in hints.values()), (cls, name, hints)


def test_no_engine_module_imports_above_the_engine() -> None:
    """Lazy imports too (inside functions), which a reader of the module head misses."""
    root = Path(multinet.engine.__file__).parent
    found = []
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            found += [(path.name, n) for n in names if n.startswith(ABOVE)]
    assert found == []
