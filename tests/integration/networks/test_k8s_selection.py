"""The networks annotation, in both forms and with every field, on real plugins.

Each scenario runs on both cluster sources (see conftest.py): the pod and its NADs
live in a manifests directory or on the Kubernetes API test server.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.integration.conftest import LeakChecker, NetInfo, State
    from tests.integration.networks.conftest import K8s, Recorded


def host(subnet: ipaddress.IPv4Network, n: int) -> str:
    return str(subnet.network_address + n)


def cidr(subnet: ipaddress.IPv4Network, n: int) -> str:
    return f"{host(subnet, n)}/{subnet.prefixlen}"


def default_routes(net: NetInfo, netns: str) -> list[tuple[str, str]]:
    return [(r.get("gateway", ""), r["dev"]) for r in net.routes(netns) if r["dst"] == "default"]


@pytest.mark.parametrize("form", ["comma", "json"])
def test_both_annotation_forms_attach_the_same_networks(
    form: str, k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    green = k8s.bridge_nad("green", namespace="team-x")
    blue = k8s.bridge_nad("blue")
    if form == "comma":
        networks: Any = " team-x/green@side0 , blue"
    else:
        networks = [
            {"name": "green", "namespace": "team-x", "interface": "side0"},
            {"name": "blue"},
        ]
    pod = k8s.pod(networks)
    cid = k8s.container_id()

    rc, out, _ = k8s.add(pod, netns, cid)
    assert rc == 0, out
    # The runtime gets the cluster network's result, nothing else.
    assert [i["name"] for i in out["interfaces"] if i.get("sandbox")] == ["eth0"]
    assert [ip["address"] for ip in out["ips"]] == [cidr(k8s.cluster_subnet, 2)]
    assert net.addresses(netns) == {
        "eth0": [cidr(k8s.cluster_subnet, 2)],
        "side0": [cidr(green, 2)],
        "net2": [cidr(blue, 2)],  # named by position: the third attachment
    }
    status = k8s.source.network_status(pod.namespace, pod.name)
    assert status is not None
    assert [(s["name"], s["interface"], s["ips"]) for s in status] == [
        (k8s.cluster_status_name, "eth0", [host(k8s.cluster_subnet, 2)]),
        ("team-x/green", "side0", [host(green, 2)]),
        ("default/blue", "net2", [host(blue, 2)]),
    ]

    assert k8s.delete(pod, netns, cid).rc == 0
    leaks.assert_clean()


def test_ips_reach_static_ipam_and_are_set(
    k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    subnet = k8s.confs.subnet()
    config = k8s.macvlan_config(ipam={"type": "static"}, capabilities={"ips": True})
    k8s.source.add_nad("default", "fixed", config)
    pod = k8s.pod([{"name": "fixed", "ips": [cidr(subnet, 9)]}])
    cid = k8s.container_id()

    rc, out, _ = k8s.add(pod, netns, cid)
    assert rc == 0, out
    assert net.addresses(netns)["net1"] == [cidr(subnet, 9)]
    assert net.kind(netns, "net1") == "macvlan"
    status = k8s.source.network_status(pod.namespace, pod.name)
    assert status is not None
    assert status[1]["ips"] == [host(subnet, 9)]

    assert k8s.delete(pod, netns, cid).rc == 0
    leaks.assert_clean()


def test_mac_reaches_tuning_and_is_set_on_the_link(
    k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    tuning = {**k8s.confs.tuning(), "capabilities": {"mac": True}}
    k8s.bridge_nad("lab", plugins=[tuning])
    mac = "02:00:5e:10:20:30"
    pod = k8s.pod([{"name": "lab", "mac": mac, "interface": "lab0"}])
    cid = k8s.container_id()

    rc, out, _ = k8s.add(pod, netns, cid)
    assert rc == 0, out
    assert net.mac(netns, "lab0") == mac
    status = k8s.source.network_status(pod.namespace, pod.name)
    assert status is not None
    assert (status[1]["interface"], status[1]["mac"]) == ("lab0", mac)

    assert k8s.delete(pod, netns, cid).rc == 0
    leaks.assert_clean()


def test_cni_args_reach_every_plugin_of_the_chain(
    k8s: K8s,
    netns: str,
    net: NetInfo,
    leaks: LeakChecker,
    recorder: Callable[[str], Recorded],
) -> None:
    rec = recorder("tuning")
    subnet = k8s.bridge_nad("lab", plugins=[{"type": rec.type}])
    # host-local reads args.cni.ips: the address really changes.
    cni_args = {"ips": [host(subnet, 77)], "team": "storage", "level": 3}
    pod = k8s.pod([{"name": "lab", "cni-args": cni_args}])
    cid = k8s.container_id()

    rc, out, _ = k8s.add(pod, netns, cid)
    assert rc == 0, out
    assert net.addresses(netns)["net1"] == [cidr(subnet, 77)]
    call = rec.only_add()
    assert call.conf["args"] == {"cni": cni_args}
    assert call.ifname == "net1"
    assert call.args == pod.cni_args()  # the runtime's CNI_ARGS reach the delegate too

    assert k8s.delete(pod, netns, cid).rc == 0
    assert [c.conf["args"] for c in rec.calls("DEL")] == [{"cni": cni_args}]
    leaks.assert_clean()


def test_port_mappings_and_bandwidth_reach_only_plugins_that_declare_them(
    k8s: K8s, netns: str, leaks: LeakChecker, recorder: Callable[[str], Recorded]
) -> None:
    main, meta = recorder("bridge"), recorder("tuning")
    subnet = k8s.confs.subnet()
    config = k8s.confs.bridge_net(
        "lab",
        k8s.bridge_factory(),
        subnet,
        routes=[],
        plugins=[{"type": meta.type, "capabilities": {"portMappings": True, "bandwidth": True}}],
    )
    config["plugins"][0]["type"] = main.type
    k8s.source.add_nad("default", "lab", config)
    ports = [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]
    bandwidth = {"ingressRate": 1000000, "ingressBurst": 200000}
    pod = k8s.pod([{"name": "lab", "portMappings": ports, "bandwidth": bandwidth}])
    cid = k8s.container_id()

    rc, out, _ = k8s.add(pod, netns, cid)
    assert rc == 0, out
    assert meta.only_add().conf["runtimeConfig"] == {
        "portMappings": ports,
        "bandwidth": bandwidth,
    }
    assert "runtimeConfig" not in main.only_add().conf

    assert k8s.delete(pod, netns, cid).rc == 0
    assert meta.calls("DEL")[0].conf["runtimeConfig"]["portMappings"] == ports
    leaks.assert_clean()


def test_infiniband_guid_and_device_id_reach_the_delegate(
    k8s: K8s, netns: str, leaks: LeakChecker, recorder: Callable[[str], Recorded]
) -> None:
    main, meta = recorder("bridge"), recorder("tuning")
    config = k8s.confs.bridge_net(
        "lab",
        k8s.bridge_factory(),
        k8s.confs.subnet(),
        routes=[],
        plugins=[{"type": meta.type, "capabilities": {"infinibandGUID": True, "deviceID": True}}],
    )
    config["plugins"][0]["type"] = main.type
    k8s.source.add_nad("default", "lab", config)
    guid, device = "c2:11:22:33:44:55:66:77", "0000:03:00.1"
    pod = k8s.pod([{"name": "lab", "infiniband-guid": guid, "deviceID": device}])
    cid = k8s.container_id()

    rc, out, _ = k8s.add(pod, netns, cid)
    assert rc == 0, out
    seen = meta.only_add().conf
    assert seen["runtimeConfig"] == {"infinibandGUID": guid, "deviceID": device}
    for call in (main.only_add(), meta.only_add()):
        assert (call.conf["deviceID"], call.conf["pciBusID"]) == (device, device)
    assert "runtimeConfig" not in main.only_add().conf
    status = k8s.source.network_status(pod.namespace, pod.name)
    assert status is not None
    # No resourceName, so no device-plugin device-info file: nothing is made up.
    assert "device-info" not in status[1]

    assert k8s.delete(pod, netns, cid).rc == 0
    leaks.assert_clean()


def test_default_route_moves_to_the_chosen_network(
    k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    subnet = k8s.bridge_nad("uplink")  # no route of its own
    gw = host(subnet, 1)
    pod = k8s.pod([{"name": "uplink", "default-route": [gw]}])
    cid = k8s.container_id()

    rc, out, _ = k8s.add(pod, netns, cid)
    assert rc == 0, out
    assert default_routes(net, netns) == [(gw, "net1")]
    # The runtime is not told about a default route the pod no longer has.
    assert [r for r in out.get("routes", []) if r["dst"] == "0.0.0.0/0"] == []
    status = k8s.source.network_status(pod.namespace, pod.name)
    assert status is not None
    assert status[0]["default"] is True and "gateway" not in status[0]
    assert status[1]["gateway"] == [gw]

    assert k8s.delete(pod, netns, cid).rc == 0
    leaks.assert_clean()


def test_cluster_default_route_stays_without_default_route_request(
    k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    k8s.bridge_nad("uplink")
    pod = k8s.pod("uplink")
    cid = k8s.container_id()

    rc, out, _ = k8s.add(pod, netns, cid)
    assert rc == 0, out
    assert default_routes(net, netns) == [(k8s.cluster_gateway, "eth0")]
    status = k8s.source.network_status(pod.namespace, pod.name)
    assert status is not None
    assert status[0]["gateway"] == [k8s.cluster_gateway]
    assert "gateway" not in status[1]

    assert k8s.delete(pod, netns, cid).rc == 0
    leaks.assert_clean()


def test_two_ipv4_default_routes_are_refused_before_anything_is_attached(
    k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker, state: State
) -> None:
    a, b = k8s.bridge_nad("up-a"), k8s.bridge_nad("up-b")
    pod = k8s.pod(
        [
            {"name": "up-a", "default-route": [host(a, 1)]},
            {"name": "up-b", "default-route": [host(b, 1)]},
        ]
    )
    cid = k8s.container_id()

    rc, out, _ = k8s.add(pod, netns, cid)
    assert rc != 0
    assert out["code"] == 7
    assert host(a, 1) in out["msg"] and host(b, 1) in out["msg"]
    assert "default/up-a" in out["msg"] and "default/up-b" in out["msg"]
    assert net.links(netns) == {}
    assert k8s.source.network_status(pod.namespace, pod.name) is None
    assert k8s.delete(pod, netns, cid).rc == 0  # the runtime's DEL after a failed ADD
    leaks.assert_clean()
