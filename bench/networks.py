"""Issue 4's pod: its networks (as conflists, also served as NADs) and its identity.

| ifname | network | delegates |
|---|---|---|
| eth0 | the cluster network (NAD in kube-system) | bridge + host-local, default route |
| net1 | NAD mnb-macvlan | macvlan on the cluster bridge + host-local |
| net2 | NAD mnb-bridge2 | a second bridge + host-local |
| net3 | NAD mnb-static | macvlan on the cluster bridge + static |

Plain data: `scenario.Scenario.networks` creates the bridges, writes the files and
adds the NADs.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CNI_VERSION = "1.0.0"
SYSTEM_NAMESPACE = "kube-system"
NAD_NAMESPACE = "mnb-nets"
CLUSTER = "mnb-cluster"
PREFIX = 22  # 1,021 addresses per network: the burst bench's hundreds of pods at once


@dataclass(frozen=True)
class Network:
    """One network of the pod: a conflist, the NAD (or file) of the same name."""

    name: str
    ifname: str
    conflist: dict[str, Any]
    host_local: bool  # its IPAM keeps allocations in the shared dataDir


@dataclass(frozen=True)
class PodNetworks:
    cluster: Network
    secondaries: tuple[Network, ...]

    @property
    def all(self) -> tuple[Network, ...]:
        return (self.cluster, *self.secondaries)

    @property
    def ifnames(self) -> list[str]:
        return sorted(n.ifname for n in self.all)

    def annotation(self) -> str:
        """The pod's networks annotation (interfaces net1.. come from the order)."""
        return ",".join(f"{NAD_NAMESPACE}/{n.name}" for n in self.secondaries)


@dataclass(frozen=True)
class PodRef:
    namespace: str
    name: str
    uid: str

    @property
    def cni_args(self) -> str:
        return (
            f"IgnoreUnknown=1;K8S_POD_NAMESPACE={self.namespace};"
            f"K8S_POD_NAME={self.name};K8S_POD_UID={self.uid}"
        )


def conflist(name: str, plugin: dict[str, Any]) -> dict[str, Any]:
    return {"cniVersion": CNI_VERSION, "name": name, "plugins": [plugin]}


def host_local(data_dir: Path, subnet: ipaddress.IPv4Network, default: bool) -> dict[str, Any]:
    gw = str(subnet.network_address + 1)
    ipam: dict[str, Any] = {
        "type": "host-local",
        "dataDir": str(data_dir),
        "ranges": [[{"subnet": str(subnet), "gateway": gw}]],
    }
    if default:  # the bridge has no address: the gateway is only a name in the pod
        ipam["routes"] = [{"dst": "0.0.0.0/0", "gw": gw}]
    return ipam


def pod_networks(ipam: Path, cluster_br: str, second_br: str) -> PodNetworks:
    """The four networks, on random 10.x.y.0/22 subnets (the bridges carry no
    address, so these never reach the host's routing table)."""
    a, b = secrets.randbelow(200) + 20, secrets.randbelow(250)
    cluster_net, macvlan_net, bridge_net, static_net = (
        ipaddress.IPv4Network(f"10.{a + i}.{b}.0/{PREFIX}", strict=False) for i in range(4)
    )
    macvlan = {"type": "macvlan", "master": cluster_br, "mode": "bridge"}
    return PodNetworks(
        Network(
            CLUSTER,
            "eth0",
            conflist(
                CLUSTER,
                {
                    "type": "bridge",
                    "bridge": cluster_br,
                    "ipam": host_local(ipam, cluster_net, default=True),
                },
            ),
            host_local=True,
        ),
        (
            Network(
                "mnb-macvlan",
                "net1",
                conflist(
                    "mnb-macvlan",
                    {**macvlan, "ipam": host_local(ipam, macvlan_net, default=False)},
                ),
                host_local=True,
            ),
            Network(
                "mnb-bridge2",
                "net2",
                conflist(
                    "mnb-bridge2",
                    {
                        "type": "bridge",
                        "bridge": second_br,
                        "ipam": host_local(ipam, bridge_net, default=False),
                    },
                ),
                host_local=True,
            ),
            Network(
                "mnb-static",
                "net3",
                conflist(
                    "mnb-static",
                    {
                        **macvlan,
                        "ipam": {
                            "type": "static",
                            "addresses": [
                                {"address": f"{static_net.network_address + 5}/{PREFIX}"}
                            ],
                        },
                    },
                ),
                host_local=False,
            ),
        ),
    )
