"""network-status entries (NPWG format) from journal entries, for results of every version."""

from __future__ import annotations

from typing import Any

import pytest

from multinet.cni.version import SUPPORTED, at_least
from multinet.engine.journal import ADDED, ADDING, Entry
from multinet.networks.status import entries_for, network_status

MAC = "0a:58:0a:01:00:05"
HOST_MAC = "ee:ee:ee:ee:ee:01"
DNS = {"nameservers": ["10.96.0.10"], "domain": "cluster.local", "search": ["svc.cluster.local"]}


def ip(
    version: str, address: str, interface: int | None = None, gateway: str | None = None
) -> dict[str, Any]:
    """An `ips[]` element as a plugin of `version` writes it (0.3.x/0.4.0 carry `version`)."""
    out: dict[str, Any] = {"address": address}
    if not at_least(version, "1.0.0"):
        out["version"] = "6" if ":" in address else "4"
    if interface is not None:
        out["interface"] = interface
    if gateway is not None:
        out["gateway"] = gateway
    return out


def iface(
    version: str, name: str, mac: str, sandbox: str | None = None, mtu: int = 0
) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "mac": mac}
    if sandbox:
        out["sandbox"] = sandbox
    if mtu and at_least(version, "1.1.0"):  # mtu is a 1.1.0 field
        out["mtu"] = mtu
    return out


def bridge_result(version: str, dns: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the bridge plugin returns: bridge, host veth, pod interface (index 2)."""
    raw: dict[str, Any] = {
        "cniVersion": version,
        "interfaces": [
            iface(version, "cni0", "ee:ee:ee:ee:ee:00"),
            iface(version, "veth1234", HOST_MAC),
            iface(version, "eth0", MAC, sandbox="/var/run/netns/pod", mtu=1450),
        ],
        "ips": [
            ip(version, "10.1.0.5/16", 2, "10.1.0.1"),
            ip(version, "fd00::5/64", 2, "fd00::1"),
        ],
        "routes": [
            {"dst": "0.0.0.0/0", "gw": "10.1.0.1"},
            {"dst": "10.2.0.0/16", "gw": "10.1.0.254"},
            {"dst": "::/0", "gw": "fd00::1"},
        ],
    }
    if dns is not None:
        raw["dns"] = dns
    return raw


def added(
    name: str,
    ifname: str,
    result: dict[str, Any],
    *,
    meta: dict[str, Any] | None = None,
    runtime_config: dict[str, Any] | None = None,
) -> Entry:
    return Entry(
        name=name,
        ifname=ifname,
        config={"cniVersion": result["cniVersion"], "name": name, "plugins": [{"type": "x"}]},
        runtime_config=runtime_config or {},
        state=ADDED,
        result=result,
        default=bool((meta or {}).get("default")),
        default_route=tuple((meta or {}).get("default_route", ())),
        replaced_default_routes=tuple((meta or {}).get("replaced_default_routes", ())),
    )


def mtu(version: str, value: int) -> dict[str, int]:
    return {"mtu": value} if at_least(version, "1.1.0") else {}


# -- the cluster network ----------------------------------------------------------------------


@pytest.mark.parametrize("version", SUPPORTED)
def test_cluster_network_entry(version: str) -> None:
    entry = added("k8s-pod-network", "eth0", bridge_result(version, DNS), meta={"default": True})
    assert entries_for(entry) == [
        {
            "name": "k8s-pod-network",
            "interface": "eth0",
            "ips": ["10.1.0.5", "fd00::5"],
            "mac": MAC,
            **mtu(version, 1450),
            "default": True,
            "dns": DNS,
            "gateway": ["10.1.0.1", "fd00::1"],
        }
    ]


@pytest.mark.parametrize("version", SUPPORTED)
@pytest.mark.parametrize(
    ("moved", "gateway"),
    [([4], ["fd00::1"]), ([6], ["10.1.0.1"]), ([4, 6], None), ([], ["10.1.0.1", "fd00::1"])],
)
def test_cluster_network_loses_the_gateways_moved_elsewhere(
    version: str, moved: list[int], gateway: list[str] | None
) -> None:
    meta = {"default": True, "replaced_default_routes": moved}
    (st,) = entries_for(added("c", "eth0", bridge_result(version), meta=meta))
    assert st.get("gateway") == gateway
    assert st["default"] is True


@pytest.mark.parametrize("version", SUPPORTED)
def test_cluster_network_gateways_are_not_repeated(version: str) -> None:
    raw = bridge_result(version)
    raw["routes"] = [
        {"dst": "0.0.0.0/0", "gw": "10.1.0.1"},
        {"dst": "0.0.0.0/0", "gw": "10.1.0.1"},
        {"dst": "0.0.0.0/0"},  # no gateway: nothing to report
        {"dst": "0.0.0.0/1", "gw": "10.1.0.9"},  # not a default route
    ]
    (st,) = entries_for(added("c", "eth0", raw, meta={"default": True}))
    assert st["gateway"] == ["10.1.0.1"]


# -- secondary networks -----------------------------------------------------------------------


@pytest.mark.parametrize("version", SUPPORTED)
def test_secondary_network_entry(version: str) -> None:
    raw = {
        "cniVersion": version,
        "interfaces": [iface(version, "net1", MAC, sandbox="/var/run/netns/pod", mtu=9000)],
        "ips": [ip(version, "192.168.1.20/24", 0, "192.168.1.1")],
        "routes": [{"dst": "0.0.0.0/0", "gw": "192.168.1.1"}],
    }
    entry = added("pods/macvlan", "net1", raw, meta={"default": False})
    # Its own default route's gateway is reported, as the NPWG library does for every
    # network (a secondary's default route stays in the pod's table, metric aside).
    assert entries_for(entry) == [
        {
            "name": "pods/macvlan",
            "interface": "net1",
            "ips": ["192.168.1.20"],
            "mac": MAC,
            **mtu(version, 9000),
            "dns": {},
            "gateway": ["192.168.1.1"],
        }
    ]


@pytest.mark.parametrize("version", SUPPORTED)
def test_secondary_network_with_default_route(version: str) -> None:
    meta = {"default": False, "default_route": ["10.1.0.1", "fd00::1"]}
    (st,) = entries_for(added("pods/blue", "net1", bridge_result(version), meta=meta))
    assert st == {
        "name": "pods/blue",
        "interface": "eth0",
        "ips": ["10.1.0.5", "fd00::5"],
        "mac": MAC,
        **mtu(version, 1450),
        "dns": {},
        "gateway": ["10.1.0.1", "fd00::1"],
    }


@pytest.mark.parametrize("version", SUPPORTED)
def test_ipam_only_result_reports_the_requested_interface(version: str) -> None:
    raw = {
        "cniVersion": version,
        "ips": [ip(version, "10.9.0.7/24", gateway="10.9.0.1"), ip(version, "fd09::7/64")],
        "dns": {"nameservers": ["10.9.0.2"]},
    }
    assert entries_for(added("pods/ipam", "data0", raw)) == [
        {
            "name": "pods/ipam",
            "interface": "data0",
            "ips": ["10.9.0.7", "fd09::7"],
            "dns": {"nameservers": ["10.9.0.2"]},
        }
    ]


@pytest.mark.parametrize("version", SUPPORTED)
def test_result_with_only_host_interfaces_reports_the_requested_interface(version: str) -> None:
    raw = {
        "cniVersion": version,
        "interfaces": [iface(version, "cali1234", HOST_MAC)],
        "ips": [ip(version, "10.244.1.5/32", 0)],
    }
    assert entries_for(added("k8s-pod-network", "eth0", raw, meta={"default": True})) == [
        {
            "name": "k8s-pod-network",
            "interface": "eth0",
            "ips": ["10.244.1.5"],
            "default": True,
            "dns": {},
        }
    ]


@pytest.mark.parametrize("version", SUPPORTED)
def test_one_entry_per_sandboxed_interface_with_its_own_ips(version: str) -> None:
    raw = {
        "cniVersion": version,
        "interfaces": [
            iface(version, "host0", HOST_MAC),
            iface(version, "net1", "0a:00:00:00:00:01", sandbox="/ns"),
            iface(version, "net1b", "0a:00:00:00:00:02", sandbox="/ns"),
        ],
        "ips": [
            ip(version, "10.0.0.2/24", 2),
            ip(version, "10.0.0.1/24", 1),
            ip(version, "169.254.0.1/16", 0),  # the host side: reported nowhere
            ip(version, "fd00::1/64", 1),
        ],
    }
    assert entries_for(added("pods/multi", "net1", raw)) == [
        {
            "name": "pods/multi",
            "interface": "net1",
            "ips": ["10.0.0.1", "fd00::1"],
            "mac": "0a:00:00:00:00:01",
            "dns": {},
        },
        {
            "name": "pods/multi",
            "interface": "net1b",
            "ips": ["10.0.0.2"],
            "mac": "0a:00:00:00:00:02",
            "dns": {},
        },
    ]


@pytest.mark.parametrize("version", SUPPORTED)
def test_ips_without_interface_index_go_to_the_last_pod_interface(version: str) -> None:
    # As the NPWG client library does: an IP that names no interface is not lost.
    raw = {
        "cniVersion": version,
        "interfaces": [
            iface(version, "host0", HOST_MAC),
            iface(version, "net1", MAC, sandbox="/ns"),
        ],
        "ips": [ip(version, "10.0.0.1/24"), ip(version, "fd00::1/64", 0)],
    }
    assert entries_for(added("pods/a", "net1", raw)) == [
        {"name": "pods/a", "interface": "net1", "ips": ["10.0.0.1"], "mac": MAC, "dns": {}}
    ]


@pytest.mark.parametrize("version", SUPPORTED)
def test_device_info_is_the_journaled_npwg_object_unchanged(version: str) -> None:
    raw = {
        "cniVersion": version,
        "interfaces": [iface(version, "net1", MAC, sandbox="/ns")],
        "ips": [ip(version, "10.56.217.61/24", 0)],
    }
    info = {"type": "pci", "version": "1.1.0", "pci": {"pci-address": "0000:03:02.1"}, "x": 1}
    entry = added("pods/sriov", "net1", raw, runtime_config={"deviceID": "0000:03:02.1"})
    entry.device_info = info
    assert entries_for(entry) == [
        {
            "name": "pods/sriov",
            "interface": "net1",
            "ips": ["10.56.217.61"],
            "mac": MAC,
            "dns": {},
            "device-info": info,
        }
    ]


def test_a_device_id_without_device_info_files_reports_no_device_info() -> None:
    raw = {"cniVersion": "1.0.0", "interfaces": [iface("1.0.0", "net1", MAC, sandbox="/ns")]}
    entry = added("pods/sriov", "net1", raw, runtime_config={"deviceID": "0000:03:02.1"})
    assert "device-info" not in entries_for(entry)[0]


# -- what gets no entry -----------------------------------------------------------------------


def test_entries_still_adding_or_without_result_get_no_status() -> None:
    raw = bridge_result("1.0.0")
    adding = added("pods/a", "net1", raw)
    adding.state = ADDING
    no_result = added("pods/b", "net2", raw)
    no_result.result = None
    assert entries_for(adding) == []
    assert entries_for(no_result) == []


@pytest.mark.parametrize("version", SUPPORTED)
def test_network_status_in_attachment_order(version: str) -> None:
    cluster = added(
        "k8s-pod-network",
        "eth0",
        bridge_result(version, DNS),
        meta={"default": True, "replaced_default_routes": [4]},
    )
    second = {
        "cniVersion": version,
        "interfaces": [iface(version, "net1", MAC, sandbox="/ns")],
        "ips": [ip(version, "192.168.1.20/24", 0)],
    }
    failed = added("pods/failed", "net2", second)
    failed.state = ADDING
    third = {"cniVersion": version, "ips": [ip(version, "10.3.0.3/24")]}
    entries = [
        cluster,
        added("pods/blue", "net1", second, meta={"default_route": ["192.168.1.1"]}),
        failed,
        added("other/green", "green0", third),
    ]
    assert network_status(entries) == [
        {
            "name": "k8s-pod-network",
            "interface": "eth0",
            "ips": ["10.1.0.5", "fd00::5"],
            "mac": MAC,
            **mtu(version, 1450),
            "default": True,
            "dns": DNS,
            "gateway": ["fd00::1"],
        },
        {
            "name": "pods/blue",
            "interface": "net1",
            "ips": ["192.168.1.20"],
            "mac": MAC,
            "dns": {},
            "gateway": ["192.168.1.1"],
        },
        {"name": "other/green", "interface": "green0", "ips": ["10.3.0.3"], "dns": {}},
    ]
    assert network_status([]) == []
