"""Fixtures for multinet-ipam: the real executable against the Kubernetes API test server
(tests/support/kubeapi), which keeps the IPPools with real resourceVersion conflicts.

``ipam`` -> Ipam: ``server`` (the KubeAPIServer), ``kubeconfig``, ``data_dir`` (the
plugin's dataDir), ``netconf(**ipam_keys)`` (a network whose ipam is multinet-ipam with
those keys), ``run(command, conf, cid, ifname="net1", args="", env=None)`` (the executable
as a delegate runs it: CniOutcome), ``start(...)`` (the same, not waited for: a Popen),
``pool(name)`` (the IPPool's allocations, offset -> owner), ``allocated()`` (every
allocation of every pool).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import TRACEBACK, CniOutcome
from tests.support.kubeapi import KubeAPIServer
from tests.support.scripts import installed

NAMESPACE = "kube-system"


class Ipam:
    def __init__(self, server: KubeAPIServer, root: Path) -> None:
        executable = installed("multinet-ipam")
        assert executable, "multinet-ipam is not installed (pip install -e .)"
        self.executable = executable
        self.server = server
        self.kubeconfig = server.write_kubeconfig(str(root / "kubeconfig"))
        self.data_dir = root / "ipam"

    def netconf(self, version: str = "1.0.0", name: str = "net-a", **keys: Any) -> dict[str, Any]:
        ipam = {
            "type": "multinet-ipam",
            "kubernetes": {"kubeconfig": self.kubeconfig},
            "dataDir": str(self.data_dir),
            **keys,
        }
        return {"cniVersion": version, "name": name, "type": "macvlan", "ipam": ipam}

    def _env(
        self, command: str, cid: str, ifname: str, args: str, env: Mapping[str, str] | None
    ) -> dict[str, str]:
        out = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
        out.update(
            CNI_COMMAND=command,
            CNI_CONTAINERID=cid,
            CNI_NETNS="/var/run/netns/unused",
            CNI_IFNAME=ifname,
            CNI_ARGS=args,
            CNI_PATH="/usr/lib/cni",
        )
        out.update(env or {})
        return out

    def start(
        self,
        command: str,
        conf: Any,
        cid: str,
        ifname: str = "net1",
        args: str = "",
        env: Mapping[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [self.executable],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self._env(command, cid, ifname, args, env),
        )
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(conf).encode())
        proc.stdin.close()
        return proc

    @staticmethod
    def outcome(proc: subprocess.Popen[bytes], timeout: float = 120) -> CniOutcome:
        assert proc.stdout is not None and proc.stderr is not None
        proc.wait(timeout)
        text = proc.stdout.read().decode()
        err = proc.stderr.read().decode()
        proc.stdout.close()
        proc.stderr.close()
        assert TRACEBACK not in text and TRACEBACK not in err, (text, err)
        return CniOutcome(proc.returncode, json.loads(text) if text.strip() else None, err)

    def run(
        self,
        command: str,
        conf: Any,
        cid: str,
        ifname: str = "net1",
        args: str = "",
        env: Mapping[str, str] | None = None,
    ) -> CniOutcome:
        return self.outcome(self.start(command, conf, cid, ifname, args, env))

    def pool(self, name: str) -> dict[str, Any] | None:
        for obj in self.server.ip_pools():
            if obj["metadata"]["name"] == name and obj["metadata"]["namespace"] == NAMESPACE:
                allocations: dict[str, Any] = obj["spec"].get("allocations") or {}
                return allocations
        return None

    def allocated(self) -> list[tuple[str, str, dict[str, Any]]]:
        return [
            (obj["metadata"]["name"], offset, owner)
            for obj in self.server.ip_pools()
            for offset, owner in (obj["spec"].get("allocations") or {}).items()
        ]

    def notes(self) -> list[str]:
        return sorted(p.name for p in self.data_dir.glob("*")) if self.data_dir.exists() else []


@pytest.fixture
def ipam(tmp_path: Path) -> Iterator[Ipam]:
    with KubeAPIServer(token="ipam-token") as server:
        yield Ipam(server, tmp_path)
