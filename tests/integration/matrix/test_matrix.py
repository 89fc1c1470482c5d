"""The end-to-end matrix: two pods per secondary network kind, checked by real TCP traffic.

Thin mode (the ``multinet`` executable) and thick mode (the native shim and a multinetd),
real namespaces, Debian's reference plugins, dnsmasq for DHCP, multinet-sriov on a fake
NIC whose VFs are veths. Each row adds two pods whose networks annotation names one NAD,
checks what the row is about (addresses, routes, MAC, sysctl, MTU, the VF), then runs a
TCP echo between the pods over net1, then deletes both and checks that nothing is left.
Last, all the kinds at once: two pods with four networks each, traffic over each.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from tests.integration.matrix.conftest import DhcpLan, Echo
from tests.support.sriov import ORIGINAL

if TYPE_CHECKING:
    from tests.integration.conftest import Confs, LeakChecker, NetInfo
    from tests.integration.networks.conftest import K8s
    from tests.integration.plugins.sriov.conftest import Sriov


@contextmanager
def pods(
    k8s: K8s,
    netns_factory: Callable[[], str],
    annotations: Sequence[str | Sequence[Mapping[str, Any]]],
) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Add one pod per annotation (each in its own netns); yields (netns, ADD result);
    DELs them all afterwards, asserting each DEL succeeds."""
    added = []
    out: list[tuple[str, dict[str, Any]]] = []
    try:
        for i, networks in enumerate(annotations):
            pod = k8s.pod(networks, name=f"pod{i}-{k8s.token}")
            ns, cid = netns_factory(), k8s.container_id()
            rc, result, err = k8s.add(pod, ns, cid)
            assert rc == 0, (result, err)
            added.append((pod, ns, cid))
            out.append((ns, result))
        yield out
    finally:
        for pod, ns, cid in added:
            rc, result, err = k8s.delete(pod, ns, cid)
            assert rc == 0, (result, err)


def address(net: NetInfo, ns: str, ifname: str = "net1") -> str:
    (cidr,) = net.addresses(ns)[ifname]
    return cidr


def ip_of(cidr: str) -> str:
    return cidr.split("/")[0]


def macvlan(master: str, ipam: Mapping[str, Any], **keys: Any) -> dict[str, Any]:
    return {
        "cniVersion": "1.0.0",
        "type": "macvlan",
        "master": master,
        "mode": "bridge",
        "ipam": dict(ipam),
        **keys,
    }


def static_nad(k8s: K8s, master: str, confs: Confs, mac_tag: int) -> list[tuple[str, str]]:
    """The NAD "st" (macvlan + static, ips and mac from the annotation) on `master`; two
    pods' (address, MAC) on a subnet of its own."""
    k8s.source.add_nad(
        "default",
        "st",
        macvlan(master, {"type": "static"}, capabilities={"ips": True, "mac": True}),
    )
    subnet = confs.subnet()
    return [
        (f"{subnet.network_address + n}/24", f"02:6d:6e:00:{mac_tag:02x}:{n:02x}") for n in (10, 11)
    ]


def tuned_nad(k8s: K8s, confs: Confs, ifname: str) -> ipaddress.IPv4Network:
    """The NAD "tuned" (bridge + host-local + tuning: an arp_notify sysctl of `ifname`
    and MTU 1400); its subnet. `assert_tuned` checks a pod's."""
    tuning = confs.tuning(sysctl={f"net.ipv4.conf.{ifname}.arp_notify": "1"})
    tuning["mtu"] = 1400
    return k8s.bridge_nad("tuned", plugins=[tuning])


def assert_tuned(net: NetInfo, ns: str, ifname: str) -> None:
    assert net.sysctl(ns, f"net.ipv4.conf.{ifname}.arp_notify") == "1"
    assert net.links(ns)[ifname]["mtu"] == 1400


def test_macvlan_dhcp_with_the_default_route_to_the_dhcp_gateway(
    k8s: K8s,
    dhcp_lan: DhcpLan,
    netns_factory: Callable[[], str],
    net: NetInfo,
    echo: Echo,
    leaks: LeakChecker,
) -> None:
    k8s.source.add_nad("default", "dhcp", macvlan(dhcp_lan.master, dhcp_lan.ipam()))
    sel = [{"name": "dhcp", "default-route": [dhcp_lan.gateway]}]
    with pods(k8s, netns_factory, [sel, sel]) as added:
        (a, _), (b, _) = added
        subnet = dhcp_lan.subnet
        for ns in (a, b):
            assert ipaddress.ip_interface(address(net, ns)) in ipaddress.ip_network(subnet)
            defaults = [r for r in net.routes(ns) if r["dst"] == "default"]
            assert [(r["dev"], r.get("gateway")) for r in defaults] == [
                ("net1", dhcp_lan.gateway)
            ], defaults
        leased = set(dhcp_lan.leases().values())
        assert {ip_of(address(net, a)), ip_of(address(net, b))} <= leased
        echo.check(a, ip_of(address(net, a)), b)
    leaks.assert_clean(keep_links=dhcp_lan.keep())


def test_bridge_host_local(
    k8s: K8s, netns_factory: Callable[[], str], net: NetInfo, echo: Echo, leaks: LeakChecker
) -> None:
    subnet = k8s.bridge_nad("lan")
    with pods(k8s, netns_factory, ["lan", "lan"]) as added:
        (a, _), (b, _) = added
        for ns in (a, b):
            assert ipaddress.ip_interface(address(net, ns)) in subnet
            assert net.kind(ns, "net1") == "veth"
        echo.check(b, ip_of(address(net, b)), a)
    leaks.assert_clean()


def test_macvlan_static_ips_and_mac_from_the_annotation(
    k8s: K8s,
    netns_factory: Callable[[], str],
    lan_master: tuple[str, str],
    confs: Confs,
    net: NetInfo,
    echo: Echo,
    leaks: LeakChecker,
) -> None:
    peer_ns, master = lan_master  # a bridge without ports has no carrier: its macvlans none
    want = static_nad(k8s, master, confs, 0)
    annotations = [[{"name": "st", "ips": [ip], "mac": mac}] for ip, mac in want]
    with pods(k8s, netns_factory, annotations) as added:
        (a, _), (b, _) = added
        for (ns, _), (ip, mac) in zip(added, want, strict=True):
            assert address(net, ns) == ip
            assert net.mac(ns, "net1") == mac
            assert net.kind(ns, "net1") == "macvlan"
        echo.check(a, ip_of(want[0][0]), b)
    leaks.assert_clean(keep_links={peer_ns: {"srv"}})


def test_bridge_host_local_with_tuning_chained(
    k8s: K8s,
    netns_factory: Callable[[], str],
    confs: Confs,
    net: NetInfo,
    echo: Echo,
    leaks: LeakChecker,
) -> None:
    tuned_nad(k8s, confs, "net1")
    with pods(k8s, netns_factory, ["tuned", "tuned"]) as added:
        (a, _), (b, _) = added
        for ns in (a, b):
            assert_tuned(net, ns, "net1")
        echo.check(a, ip_of(address(net, a)), b)
    leaks.assert_clean()


def test_sriov_vf(
    sriov: Sriov,
    netns_factory: Callable[[], str],
    confs: Confs,
    net: NetInfo,
    echo: Echo,
    leaks: LeakChecker,
) -> None:
    """Each pod gets a VF of the resource (the fake kubelet assigns one per pod): its
    netdev leaves the host for the pod's net1, with the annotation's address; DEL gives
    it back to the host with its PF-side settings restored."""
    sriov.nad("vf", vlan=42)
    subnet = confs.subnet()
    want = [f"{subnet.network_address + 10}/24", f"{subnet.network_address + 11}/24"]
    pods = [
        sriov.pod([{"name": "vf", "ips": [ip]}], [sriov.vf(i)], name=f"pod{i}-{sriov.hexid}")
        for i, ip in enumerate(want)
    ]
    added: list[tuple[int, str, str]] = []
    try:
        for i, pod in enumerate(pods):
            ns, cid = netns_factory(), sriov.k8s.container_id()
            rc, out, err = sriov.run("ADD", pod, ns, cid)
            assert rc == 0, (out, err)
            added.append((i, ns, cid))
        for i, ns, _ in added:
            assert address(net, ns) == want[i]
            assert sriov.host_link(sriov.vf_netdevs[i]) is None, "the VF is still in the host"
            assert sriov.nic.vf_state(i)["vlan"] == 42
        echo.check(added[0][1], ip_of(want[0]), added[1][1])
    finally:
        for i, ns, cid in added:
            rc, out, err = sriov.run("DEL", pods[i], ns, cid)
            assert rc == 0, (out, err)
    for i in range(len(pods)):
        assert sriov.nic.vf_state(i) == ORIGINAL
        assert sriov.host_link(sriov.vf_netdevs[i]) is not None, "the VF is not back"
    assert sriov.cache_files() == []
    leaks.assert_clean()


def test_four_networks_on_one_pod(
    k8s: K8s,
    dhcp_lan: DhcpLan,
    lan_master: tuple[str, str],
    netns_factory: Callable[[], str],
    confs: Confs,
    net: NetInfo,
    echo: Echo,
    leaks: LeakChecker,
) -> None:
    """macvlan + dhcp (net1), bridge + host-local (net2), macvlan + static with the
    annotation's ips and mac (net3), bridge + host-local + tuning (net4), on each of two
    pods; a TCP echo over each interface; nothing left after DEL."""
    peer_ns, master = lan_master
    k8s.source.add_nad("default", "dhcp", macvlan(dhcp_lan.master, dhcp_lan.ipam()))
    bridged = k8s.bridge_nad("lan")
    want = static_nad(k8s, master, confs, 1)
    tuned = tuned_nad(k8s, confs, "net4")
    annotations = [
        [
            {"name": "dhcp", "default-route": []},  # no default route via net1
            {"name": "lan"},
            {"name": "st", "ips": [ip], "mac": mac},
            {"name": "tuned"},
        ]
        for ip, mac in want
    ]
    with pods(k8s, netns_factory, annotations) as added:
        (a, _), (b, _) = added
        for (ns, _), (ip, mac) in zip(added, want, strict=True):
            kinds = {i: net.kind(ns, i) for i in ("net1", "net2", "net3", "net4")}
            assert kinds == {"net1": "macvlan", "net2": "veth", "net3": "macvlan", "net4": "veth"}
            assert ipaddress.ip_interface(address(net, ns, "net1")) in dhcp_lan.subnet
            assert ipaddress.ip_interface(address(net, ns, "net2")) in bridged
            assert (address(net, ns, "net3"), net.mac(ns, "net3")) == (ip, mac)
            assert ipaddress.ip_interface(address(net, ns, "net4")) in tuned
            assert_tuned(net, ns, "net4")
            # The DHCP server's router option is a default route via net1 (the cluster
            # network's is via eth0): `default-route: []` dropped it.
            defaults = [r for r in net.routes(ns) if r["dst"] == "default"]
            assert [r["dev"] for r in defaults] == ["eth0"], defaults
        macs = {net.mac(ns, "net1").lower() for ns in (a, b)}
        assert macs <= set(dhcp_lan.leases()), dhcp_lan.leases()
        for ifname in ("net1", "net2", "net3", "net4"):
            echo.check(a, ip_of(address(net, a, ifname)), b)
    assert not macs & set(dhcp_lan.wait_forgotten(macs)), "a lease was not released"
    leaks.assert_clean(keep_links={**dhcp_lan.keep(), peer_ns: {"srv"}})


def test_network_status_names_the_dhcp_address(
    k8s: K8s, dhcp_lan: DhcpLan, netns_factory: Callable[[], str], net: NetInfo
) -> None:
    k8s.source.add_nad("default", "dhcp", macvlan(dhcp_lan.master, dhcp_lan.ipam()))
    with pods(k8s, netns_factory, ["dhcp"]) as added:
        ((ns, _),) = added
        status = k8s.source.network_status("default", f"pod0-{k8s.token}") or []
        by_if = {s.get("interface"): s for s in status}
        assert by_if["net1"]["ips"] == [ip_of(address(net, ns))], json.dumps(status)
