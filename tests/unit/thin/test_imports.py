"""Thin mode pays for every module it imports on every CNI call: what its DEL and ADD
paths must not import (measured in docs/performance.md). In a bare interpreter (-I -S),
so that nothing site or an editable install's hook imports hides an import of ours."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import multinet

ROOT = str(Path(multinet.__file__).resolve().parent.parent)

# What a DEL answered by the journal imports: the executable, its wiring, and the planner
# and reporter the wiring builds for a netconf with a cluster (the reporter's DEL drops
# local records; the planner does not plan).
DEL_PATH = [
    "multinet.thin.main",
    "multinet.meta.wiring",
    "multinet.config.logs",
    "multinet.networks.planner",
    "multinet.networks.reporter",
]
# An ADD also talks to the API server, plans from the pod and reports back.
ADD_PATH = [
    *DEL_PATH,
    "multinet.cluster.rest",
    "multinet.cluster.http11",
    "multinet.networks.resolve",
    "multinet.networks.attachments",
    "multinet.networks.selection",
]
# What only planning needs (a DEL answered by the journal does not plan).
PLANNING = [
    "multinet.cluster.base",
    "multinet.networks.resolve",
    "multinet.networks.attachments",
    "multinet.networks.selection",
]
NEVER = [
    "kubernetes",
    "urllib3",
    "yaml",
    "jsonschema",
    "pyroute2",
    "grpc",
    "http.client",  # and with it the email package: cluster.http11 speaks HTTP/1.1
    "email",
    "subprocess",  # delegates are spawned with os.posix_spawn
    "logging.handlers",  # only a rotated logFile (config.logrotate)
    "datetime",
    "encodings.idna",
    "importlib.resources",  # schemas are read beside their module
    "importlib.util",  # what an editable install's finder imports: the launcher runs -IS
    "multinet.meta.dynamic",  # dynamic networks: the daemon's alone
    "multinet.engine.dynamic",
    "multinet.networks.dynamic",
]


def imported(modules: list[str]) -> set[str]:
    code = (
        f"import sys, json; sys.path.insert(0, {ROOT!r})\n"
        f"for m in {modules!r}: __import__(m)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out))


@pytest.mark.parametrize(
    ("path", "forbidden"),
    [
        (DEL_PATH, [*NEVER, "socket", "ssl", "hashlib", "multinet.cluster.rest", *PLANNING]),
        (ADD_PATH, NEVER),
    ],
    ids=["DEL", "ADD"],
)
def test_the_per_call_path_imports_only_what_it_uses(path: list[str], forbidden: list[str]) -> None:
    loaded = imported(path)
    assert sorted(m for m in forbidden if m in loaded) == []
