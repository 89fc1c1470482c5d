"""Fixtures for multinet-sriov through the meta-plugin (thin mode, the `multinet` executable).

The NIC is fake but the kernel work is real: a sysfs tree shaped like the kernel's
(tests/support/sriov.FakeNic) whose VF netdevs are veths (`mnsv<hex>v<i>`), each with its
peer (`mnsv<hex>p<i>`) on a bridge (`mnsv<hex>br`) that stands in for the NIC's embedded
switch; the PF-side VF settings go to the file backend's table. The kubelet is a real
grpcio server of the PodResources API on a unix socket (tests/support/kubelet).
Namespaces are `mns-<hex><n>`. Everything is removed afterwards, even on failure.

``sriov`` -> Sriov: ``nic``, ``kubelet``, ``devinfo``, ``netns()``, ``vf(i)`` (the
VF's PCI address), ``nad(name, **keys)``, ``pod(networks, devices)``, ``run(command,
pod, netns, cid)``, ``netconf()``, ``host_link(name)`` (``ip -j link`` entry or None).
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.integration.networks import conftest as networks
from tests.integration.networks.conftest import K8s, PodRef
from tests.support.kubelet import FakeKubelet
from tests.support.scripts import installed
from tests.support.sriov import FakeNic

if TYPE_CHECKING:
    from tests.integration.conftest import CniOutcome, State

# The Kubernetes scenarios' fixtures (a cluster source, its cluster network), shared.
source = networks.source
kubeapi = networks.kubeapi
k8s = networks.k8s

RESOURCE = "intel.com/sriov_netdevice"
NETNS_DIR = Path("/var/run/netns")
VFS = 3


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


class Sriov:
    def __init__(self, k8s: K8s, state: State, hexid: str) -> None:
        self.k8s = k8s
        self.state = state
        self.hexid = hexid
        self.prefix = f"mnsv{hexid}"
        self.bridge = f"{self.prefix}br"
        self.namespaces: list[str] = []
        self.nic = FakeNic(state.root / "nic", pf=f"{self.prefix}pf")
        self.devinfo = state.root / "devinfo"
        self.plugin_dir = state.root / "sriov-cache"
        self.kubelet = FakeKubelet(str(state.root / "kubelet.sock"))
        self.checkpoint = state.root / "kubelet_internal_checkpoint"
        self.vf_netdevs: list[str] = []
        plugin = installed("multinet-sriov")
        assert plugin, "multinet-sriov is not installed (pip install -e .)"
        (state.bin_dir / "multinet-sriov").symlink_to(plugin)

    # -- the NIC -----------------------------------------------------------------

    def build(self, vfs: int = VFS) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("link", "set", self.bridge, "up")
        for i in range(vfs):
            vf, peer = f"{self.prefix}v{i}", f"{self.prefix}p{i}"
            _ip("link", "add", vf, "type", "veth", "peer", "name", peer)
            _ip("link", "set", peer, "master", self.bridge, "up")
            self.nic.add_vf(vf)
            self.vf_netdevs.append(vf)

    def remake_vf(self, index: int) -> None:
        """The VF netdev back in the host, as the kernel returns a real one when its netns
        goes (a veth dies with it instead)."""
        vf, peer = f"{self.prefix}v{index}", f"{self.prefix}p{index}"
        _ip("link", "add", vf, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "master", self.bridge, "up")

    def add_dpdk_vf(self) -> str:
        return self.nic.add_vf("", driver="vfio-pci")

    def vf(self, index: int) -> str:
        return self.nic.vfs[index]

    def host_link(self, name: str) -> dict[str, Any] | None:
        out = _ip("-j", "link", "show", "dev", name, check=False)
        if out.returncode != 0:
            return None
        link: dict[str, Any] = json.loads(out.stdout)[0]
        return link

    def netns(self) -> str:
        name = f"mns-{self.hexid}{len(self.namespaces)}"
        _ip("netns", "add", name)
        _ip("-n", name, "link", "set", "lo", "up")
        self.namespaces.append(name)
        return str(NETNS_DIR / name)

    def cleanup(self) -> None:
        self.kubelet.stop()
        for name in self.namespaces:
            _ip("netns", "del", name, check=False)
        out = _ip("-j", "link", "show", check=False)
        for link in json.loads(out.stdout or "[]"):
            if link["ifname"].startswith(self.prefix):  # ours: the hex is this test's
                _ip("link", "del", link["ifname"], check=False)

    # -- the cluster -------------------------------------------------------------

    def nad(
        self, name: str, *, resource: str = RESOURCE, ipam: Mapping[str, Any] | None = None,
        **keys: Any,
    ) -> None:  # fmt: skip
        config = {
            "cniVersion": "1.0.0",
            "type": "multinet-sriov",
            "cniDir": str(self.plugin_dir),
            "capabilities": {"ips": True, "CNIDeviceInfoFile": True},
            "ipam": dict(ipam) if ipam is not None else {"type": "static"},
            **keys,
        }
        annotations = {"k8s.v1.cni.cncf.io/resourceName": resource}
        self.k8s.source.add_nad("default", name, config, annotations)

    def pod(
        self, networks: Sequence[Mapping[str, Any]], devices: Sequence[str], name: str = ""
    ) -> PodRef:
        pod = self.k8s.pod(list(networks), name=name or f"pod-{secrets.token_hex(3)}")
        if devices:
            self.kubelet.assign(pod.namespace, pod.name, RESOURCE, list(devices))
        return pod

    def netconf(self, **keys: Any) -> dict[str, Any]:
        return self.k8s.netconf(
            podResourcesSocket=self.kubelet.socket_path,
            deviceCheckpointFile=str(self.checkpoint),
            deviceInfoDir=str(self.devinfo),
            **keys,
        )

    def run(self, command: str, pod: PodRef, netns: str, cid: str) -> CniOutcome:
        return self.k8s.cni(
            command,
            self.netconf(),
            netns=netns,
            container_id=cid,
            args=pod.cni_args(),
            extra_env=self.nic.env(),
        )

    def cache_files(self) -> list[str]:
        if not self.plugin_dir.exists():
            return []
        return sorted(
            str(p.relative_to(self.plugin_dir))
            for p in self.plugin_dir.rglob("*")
            if p.is_file() and p.name != ".lock"
        )


@pytest.fixture
def sriov(k8s: K8s, state: State) -> Iterator[Sriov]:
    s = Sriov(k8s, state, secrets.token_hex(2))
    try:
        s.build()
        s.kubelet.start()
        yield s
    finally:
        s.cleanup()
