"""Multus parity, end to end: the same NADs, pods and configs a Multus user has behave as
with Multus (or better, as docs/migrating-from-multus.md lists), through the real
`multinet` executable and Debian's reference plugins."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from tests.integration.networks.test_k8s_selection import cidr, default_routes, host

if TYPE_CHECKING:
    from tests.integration.conftest import K8s, LeakChecker, NetInfo, State

pytestmark = pytest.mark.root


def test_ips_and_mac_reach_a_nad_without_capabilities_through_cni_args(
    k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    """Multus also passes `ips`/`mac` as CNI_ARGS IP= and MAC=, which static IPAM and
    tuning read: a NAD that declares no capabilities still gets them."""
    subnet = k8s.confs.subnet()
    config = {
        "cniVersion": "1.0.0",
        "name": "fixed",
        "plugins": [
            k8s.macvlan_config(ipam={"type": "static"}),  # no "capabilities"
            k8s.confs.tuning(),
        ],
    }
    for plugin in config["plugins"]:
        plugin.pop("cniVersion", None)
    k8s.source.add_nad("default", "fixed", config)
    mac = "02:00:5e:10:20:31"
    pod = k8s.pod([{"name": "fixed", "ips": [cidr(subnet, 9)], "mac": mac}])
    cid = k8s.container_id()
    rc, out, _ = k8s.add(pod, netns, cid)
    assert rc == 0, out
    assert net.addresses(netns)["net1"] == [cidr(subnet, 9)]
    assert net.mac(netns, "net1") == mac
    assert k8s.delete(pod, netns, cid).rc == 0
    leaks.assert_clean()


def test_default_route_empty_list_means_this_network_adds_none(
    k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    """Multus #1011: `default-route: []` on a network whose IPAM adds a default route."""
    lab = k8s.bridge_nad("lab", routes=None)  # its IPAM adds a default route via .1
    pod = k8s.pod([{"name": "lab", "default-route": []}])
    cid = k8s.container_id()
    rc, out, _ = k8s.add(pod, netns, cid)
    assert rc == 0, out
    assert default_routes(net, netns) == [(k8s.cluster_gateway, "eth0")]
    status = k8s.source.network_status(pod.namespace, pod.name)
    assert status is not None and "gateway" not in status[1]
    assert net.addresses(netns)["net1"] == [cidr(lab, 2)]
    assert (
        k8s.cni("CHECK", k8s.netconf(), netns=netns, container_id=cid, args=pod.cni_args()).rc == 0
    )
    assert k8s.delete(pod, netns, cid).rc == 0
    leaks.assert_clean()


def ip_json(netns: str, *args: str) -> Any:
    out = subprocess.run(
        ["ip", "-n", netns.rsplit("/", 1)[-1], "-j", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out or "[]")


@pytest.mark.parametrize("where", ["element", "nad-annotation"])
def test_source_routing_puts_each_networks_replies_on_its_own_interface(
    where: str, k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    """Multus #1444/#664: replies leave by the interface the request came in on."""
    subnet = k8s.confs.subnet()
    config = k8s.confs.bridge_net("storage", k8s.bridge_factory(), subnet, routes=[])
    annotations = {"multinet.dev/source-routing": "true"} if where == "nad-annotation" else None
    k8s.source.add_nad("default", "storage", config, annotations)
    element: dict[str, Any] = {"name": "storage"}
    if where == "element":
        element["source-routing"] = True
    pod = k8s.pod([element])
    cid = k8s.container_id()
    rc, out, _ = k8s.add(pod, netns, cid)
    assert rc == 0, out
    address = host(subnet, 2)
    rules = ip_json(netns, "rule", "show")
    (rule,) = [r for r in rules if r.get("src") == address]
    assert rule["table"] == "101" and rule["priority"] == 101
    table = {
        (r["dst"], r.get("gateway"), r["dev"])
        for r in ip_json(netns, "route", "show", "table", "101")
    }
    assert table == {
        (str(ipaddress.ip_network(subnet)), None, "net1"),
        ("default", host(subnet, 1), "net1"),
    }
    # The main table is unchanged: the pod's default route is still the cluster network's.
    assert default_routes(net, netns) == [(k8s.cluster_gateway, "eth0")]
    assert k8s.delete(pod, netns, cid).rc == 0
    leaks.assert_clean()


def test_pod_may_skip_the_default_networks(
    k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    """Multus #1187: an opt-out of defaultNetworks by annotation."""
    k8s.bridge_nad("always", namespace="kube-system")
    lab = k8s.bridge_nad("lab")
    pod = k8s.pod("lab", annotations={"multinet.dev/skip-default-networks": "true"})
    cid = k8s.container_id()
    conf = k8s.netconf(defaultNetworks=["always"])
    rc, out, _ = k8s.add(pod, netns, cid, conf=conf)
    assert rc == 0, out
    assert set(net.addresses(netns)) == {"eth0", "net1"}
    assert net.addresses(netns)["net1"] == [cidr(lab, 2)]
    assert k8s.delete(pod, netns, cid, conf=conf).rc == 0
    leaks.assert_clean()


def test_netconf_without_cni_version_and_a_0_2_0_nad_work(
    k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    """Multus's own how-to has no cniVersion; old NADs say 0.2.0. The runtime gets the
    0.1.0 form of the result (ip4/ip6), as libcni reads a version-less config."""
    subnet = k8s.confs.subnet()
    old = k8s.confs.bridge_net("old", k8s.bridge_factory(), subnet, routes=[], version="0.2.0")
    k8s.source.add_nad("default", "old", old)
    pod = k8s.pod("old")
    cid = k8s.container_id()
    conf = {k: v for k, v in k8s.netconf().items() if k != "cniVersion"}
    rc, out, _ = k8s.add(pod, netns, cid, conf=conf)
    assert rc == 0, out
    assert out["cniVersion"] == "0.1.0"
    assert out["ip4"]["ip"] == cidr(k8s.cluster_subnet, 2)
    assert net.addresses(netns)["net1"] == [cidr(subnet, 2)]
    status = k8s.source.network_status(pod.namespace, pod.name)
    assert status is not None and status[1]["ips"] == [host(subnet, 2)]
    assert k8s.delete(pod, netns, cid, conf=conf).rc == 0
    leaks.assert_clean()


def test_add_waits_for_the_readiness_indicator_file(
    k8s: K8s, netns: str, state: State, leaks: LeakChecker
) -> None:
    """As Multus: ADD polls for the file (bounded), then asks to try again later."""
    indicator = state.root / "flannel-ready"
    conf = k8s.netconf(readinessindicatorfile=str(indicator), readinessTimeout=0.5)
    pod = k8s.pod()
    cid = k8s.container_id()
    started = time.monotonic()
    rc, out, _ = k8s.add(pod, netns, cid, conf=conf)
    assert rc == 1 and out["code"] == 11 and str(indicator) in out["msg"], out
    assert time.monotonic() - started >= 0.5
    leaks.assert_clean()

    conf["readinessTimeout"] = 20
    timer = threading.Timer(0.5, indicator.write_text, args=("",))
    timer.start()
    try:
        rc, out, _ = k8s.add(pod, netns, cid, conf=conf)
    finally:
        timer.cancel()
    assert rc == 0, out
    indicator.unlink()  # DEL never waits for it
    assert k8s.delete(pod, netns, cid, conf=conf).rc == 0
    leaks.assert_clean()
