"""multinet-ipam end to end: the `multinet` executable (thin mode) adds Debian's macvlan,
whose `ipam` is multinet-ipam, to pods in real namespaces; the pools are in the API test
server. Two pods (as on two nodes: NODE_NAME) get distinct addresses and reach each other;
DEL leaves nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.integration.ipam.conftest import Ipam
from tests.integration.matrix.conftest import Echo

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.integration.conftest import CniRunner, Confs, LeakChecker, NetInfo, State

pytestmark = pytest.mark.root


def test_two_pods_on_a_macvlan_network_get_distinct_addresses_and_talk(
    ipam: Ipam,
    cni: CniRunner,
    confs: Confs,
    state: State,
    netns_factory: Callable[[], str],
    bridge: str,
    net: NetInfo,
    leaks: LeakChecker,
) -> None:
    (state.bin_dir / "multinet-ipam").symlink_to(ipam.executable)
    lab: dict[str, Any] = {
        **ipam.netconf(name="lab", range="10.30.0.0/29", gateway="10.30.0.1"),
        "master": bridge,
        "mode": "bridge",
    }
    conf = confs.multinet([confs.bridge_net("cluster", bridge, confs.subnet()), lab])
    pods = [(netns_factory(), f"pod{i}") for i in range(2)]
    addresses = []
    for i, (netns, cid) in enumerate(pods):  # as on two nodes: the pool is cluster-wide
        rc, out, err = cni(
            "ADD", conf, netns=netns, container_id=cid, extra_env={"NODE_NAME": f"node-{i}"}
        )
        assert rc == 0, (out, err)
        (cidr,) = net.addresses(netns)["net1"]
        addresses.append(cidr.split("/")[0])
        assert net.kind(netns, "net1") == "macvlan"
    assert addresses == ["10.30.0.2", "10.30.0.3"]  # .1 is the gateway
    pool = ipam.pool("10.30.0.0-29") or {}
    assert {k: (o["containerID"], o["node"]) for k, o in pool.items()} == {
        "2": ("pod0", "node-0"),
        "3": ("pod1", "node-1"),
    }
    Echo().check(pods[1][0], addresses[1], pods[0][0])  # a TCP round trip on net1

    for netns, cid in pods:
        assert cni("CHECK", conf, netns=netns, container_id=cid).rc == 0
        assert cni("DEL", conf, netns=netns, container_id=cid).rc == 0
    assert ipam.allocated() == [] and ipam.notes() == []
    leaks.assert_clean()
