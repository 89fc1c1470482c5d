"""Thin mode pays for every module it imports on every CNI call: what its DEL and ADD
paths must not import (measured in docs/performance.md). In a bare interpreter (-I -S),
so that nothing site or an editable install's hook imports hides an import of ours.
(tests/integration/bench/test_thin_imports.py checks a real ADD and DEL of the bench's pod.)"""

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
    "multinet.cluster.podresources",  # the planner's device source, made for every call
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
# What the records, the logger and the type hints on the path once imported, with a
# third of a thin call's instructions: multinet.record, multinet.log, TYPE_CHECKING.
NEVER = [
    "dataclasses",
    "logging",
    "typing",
    "inspect",
    "traceback",
    "copy",
    "threading",  # engine.netns: a thread of _thread
    "urllib.parse",  # cluster.api quotes names itself
    "glob",  # only for a pod Multus attached (engine.multus_cache)
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
        (
            DEL_PATH,
            [
                *NEVER,
                *("socket", "ssl", "hashlib", "ipaddress", "ctypes", "multinet.cluster.rest"),
                *PLANNING,
            ],
        ),
        (ADD_PATH, NEVER),
    ],
    ids=["DEL", "ADD"],
)
def test_the_per_call_path_imports_only_what_it_uses(path: list[str], forbidden: list[str]) -> None:
    loaded = imported(path)
    assert sorted(m for m in forbidden if m in loaded) == []


def test_a_thin_del_imports_none_of_them(tmp_path: Path) -> None:
    """A real thin DEL, started as the launcher starts it (-IS), of a container nothing
    was attached to: no journal, so it plans (the kubeconfig is missing: nothing to plan)."""
    netconf = {
        "cniVersion": "1.0.0",
        "name": "thin-imports",
        "type": "multinet",
        "kubeconfig": str(tmp_path / "kubeconfig"),
        "clusterNetwork": "default",
        "cniDir": str(tmp_path / "cni"),
        "logFile": str(tmp_path / "multinet.log"),
        "logLevel": "debug",
    }
    env = {
        "CNI_COMMAND": "DEL",
        "CNI_CONTAINERID": "thin-imports-0",
        "CNI_NETNS": "",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": "/usr/lib/cni",
        "CNI_ARGS": "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=pod",
    }
    code = f"import sys; sys.path.insert(0, {ROOT!r})\nfrom multinet.thin.main import main\nmain()"
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-X", "importtime", "-c", code],
        input=json.dumps(netconf).encode(),
        capture_output=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout
    loaded = {
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.decode().splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "multinet.engine.sandbox" in loaded  # the test saw the DEL's imports
    found = sorted(m for m in NEVER if m in loaded)
    assert found == [], found
    # logged by the writer that stands for logging, in logging's format
    line = " WARNING container=thin-imports-0 ifname=eth0 DEL: pod ns/pod unavailable ("
    assert line in (tmp_path / "multinet.log").read_text()
