"""Planning: order, interface names, runtime values and selection fields per attachment."""

from __future__ import annotations

import json
from typing import Any

import pytest

from multinet.cni.chain import NetworkConfig, load
from multinet.cni.errors import INVALID_CONFIG, InvalidConfig
from multinet.cni.version import SUPPORTED
from multinet.engine.plan import (
    ANNOTATION,
    CLUSTER,
    DEFAULT_NETWORKS,
    Attachment,
    Passengers,
    Plan,
    static_plan,
)
from multinet.networks.attachments import (
    build,
    check_default_routes,
    runtime_values,
    with_selection,
)
from multinet.networks.resolve import Resolved
from multinet.networks.selection import NetworkSelection, parse_networks
from tests.unit.networks.shared import route_fields


def net(name: str, version: str = "1.0.0", **extra: Any) -> NetworkConfig:
    return load({"cniVersion": version, "name": name, "type": "bridge", **extra})


def conflist(name: str, version: str = "1.0.0") -> NetworkConfig:
    return load(
        {
            "cniVersion": version,
            "name": name,
            "plugins": [
                {"type": "macvlan", "master": "eth0", "args": {"cni": {"keep": 1}, "other": "x"}},
                {"type": "tuning", "capabilities": {"mac": True}},
            ],
        }
    )


def select(*elements: dict[str, Any], namespace: str = "pods") -> list[NetworkSelection]:
    return parse_networks(json.dumps(list(elements)), namespace)


def resolved(sel: NetworkSelection, version: str = "1.0.0") -> Resolved:
    return Resolved(f"{sel.namespace}/{sel.name}", net(sel.name, version))


def summary(plan: Plan) -> list[tuple[str, str, bool]]:
    return [(a.name, a.ifname, a.default) for a in plan.attachments]


# -- static_plan ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", SUPPORTED)
def test_static_plan_names_the_first_delegate_cni_ifname_and_the_rest_by_position(
    version: str,
) -> None:
    delegates = (net("cluster", version), net("a", version), conflist("b", version))
    rc = {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}
    plan = static_plan(delegates, "eth0", rc)
    assert plan.pod == {}
    assert plan.attachments == (
        Attachment(
            name="cluster",
            network=delegates[0],
            ifname="eth0",
            runtime_config=rc,
            default=True,
            k8s=Passengers(CLUSTER),
        ),
        # The runtime's values reach every network, as in Multus (capability-filtered).
        Attachment("a", delegates[1], "net1", rc, k8s=Passengers(DEFAULT_NETWORKS)),
        Attachment("b", delegates[2], "net2", rc, k8s=Passengers(DEFAULT_NETWORKS)),
    )
    assert route_fields(plan.attachments[2]) == {}


def test_static_plan_with_one_delegate() -> None:
    plan = static_plan((net("only"),), "net0", {})
    assert summary(plan) == [("only", "net0", True)]


def test_static_plan_rejects_cni_ifname_equal_to_a_positional_name() -> None:
    with pytest.raises(InvalidConfig) as e:
        static_plan((net("cluster"), net("a"), net("b")), "net2", {})
    assert e.value.code == INVALID_CONFIG
    assert e.value.msg == "interface name 'net2' is requested by both 'cluster' and 'b'"


# -- runtime_values ---------------------------------------------------------------------------


def test_runtime_values_maps_every_selection_field_to_its_runtime_config_key() -> None:
    (sel,) = select(
        {
            "name": "sriov",
            "interface": "data0",
            "ips": ["10.1.0.5/24", "fd00::5/64"],
            "mac": "0a:58:0a:01:00:05",
            "infiniband-guid": "c2:11:22:33:44:55:66:77",
            "default-route": ["10.1.0.1"],
            "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
            "bandwidth": {"ingressRate": 1000, "ingressBurst": 2000},
            "cni-args": {"foo": "bar"},
            "deviceID": "0000:03:02.1",
        }
    )
    assert runtime_values(sel) == {
        "ips": ["10.1.0.5/24", "fd00::5/64"],
        "mac": "0a:58:0a:01:00:05",
        "infinibandGUID": "c2:11:22:33:44:55:66:77",
        "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
        "bandwidth": {"ingressRate": 1000, "ingressBurst": 2000},
        "deviceID": "0000:03:02.1",
    }


def test_runtime_values_of_a_bare_selection_is_empty() -> None:
    (sel,) = parse_networks("blue@data0", "pods")
    assert runtime_values(sel) == {}


def test_runtime_values_keeps_empty_port_mappings_and_bandwidth() -> None:
    # An explicit [] / {} is a value (e.g. "no port mappings"), unlike an absent key.
    (sel,) = select({"name": "a", "portMappings": [], "bandwidth": {}})
    assert runtime_values(sel) == {"portMappings": [], "bandwidth": {}}


def test_runtime_values_returns_a_copy_of_ips() -> None:
    (sel,) = select({"name": "a", "ips": ["10.0.0.1/24"]})
    rc = runtime_values(sel)
    rc["ips"].append("10.0.0.2/24")
    assert sel.ips == ["10.0.0.1/24"]


# -- with_selection ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", SUPPORTED)
def test_with_selection_merges_cni_args_into_every_plugin(version: str) -> None:
    original = conflist("m", version)
    before = original.to_dict()
    (sel,) = select({"name": "m", "cni-args": {"keep": 2, "new": "v"}})
    out = with_selection(original, sel)
    assert out.name == "m"
    assert out.cni_version == version
    assert out.plugins == (
        {
            "type": "macvlan",
            "master": "eth0",
            "args": {"cni": {"keep": 2, "new": "v"}, "other": "x"},
        },
        {"type": "tuning", "capabilities": {"mac": True}, "args": {"cni": {"keep": 2, "new": "v"}}},
    )
    assert original.to_dict() == before  # the resolved config is not modified


def test_with_selection_sets_device_id_and_pci_bus_id_on_every_plugin() -> None:
    original = conflist("sriov")
    (sel,) = select({"name": "sriov", "deviceID": "0000:03:02.1"})
    out = with_selection(original, sel)
    assert [(p["type"], p["deviceID"], p["pciBusID"]) for p in out.plugins] == [
        ("macvlan", "0000:03:02.1", "0000:03:02.1"),
        ("tuning", "0000:03:02.1", "0000:03:02.1"),
    ]
    assert out.plugins[0]["args"] == {"cni": {"keep": 1}, "other": "x"}  # untouched
    assert all("deviceID" not in p for p in original.plugins)


def test_with_selection_without_cni_args_or_device_is_the_same_config() -> None:
    original = net("a", ipam={"type": "static"})
    (sel,) = select({"name": "a", "ips": ["10.0.0.1/24"], "mac": "0a:58:0a:01:00:05"})
    assert with_selection(original, sel) is original


def test_with_selection_on_a_plugin_with_null_args() -> None:
    original = net("a", args=None)
    (sel,) = select({"name": "a", "cni-args": {"k": "v"}})
    assert with_selection(original, sel).plugins[0]["args"] == {"cni": {"k": "v"}}


# -- check_default_routes ---------------------------------------------------------------------


def test_one_gateway_per_family_across_networks() -> None:
    sels = select(
        {"name": "v4", "default-route": ["10.1.0.1"]},
        {"name": "plain"},
        {"name": "v6", "default-route": ["fd00::1"]},
    )
    assert check_default_routes([(s, None) for s in sels]) == {4: "10.1.0.1", 6: "fd00::1"}


def test_no_default_route_requested() -> None:
    assert check_default_routes([(s, None) for s in select({"name": "a"}, {"name": "b"})]) == {}


def test_one_network_may_carry_both_families() -> None:
    (sel,) = select({"name": "dual", "default-route": ["fd00::1", "10.1.0.1"]})
    assert check_default_routes([(sel, None)]) == {4: "10.1.0.1", 6: "fd00::1"}


def test_two_ipv4_gateways_are_rejected_naming_both_networks() -> None:
    sels = select(
        {"name": "a", "default-route": ["10.1.0.1"]},
        {"name": "b", "namespace": "other", "default-route": ["fd00::1", "10.2.0.1"]},
    )
    with pytest.raises(InvalidConfig) as e:
        check_default_routes([(s, None) for s in sels])
    assert e.value.msg == (
        "default-route: IPv4 gateway 10.2.0.1 of network other/b conflicts with 10.1.0.1 of "
        "pods/a: only one IPv4 default route is possible"
    )


def test_two_ipv6_gateways_in_one_network_are_rejected() -> None:
    (sel,) = select({"name": "a", "default-route": ["fd00::1", "fd01::1"]})
    with pytest.raises(InvalidConfig, match="only one IPv6 default route"):
        check_default_routes([(sel, None)])


# -- build ------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", SUPPORTED)
def test_build_orders_cluster_defaults_then_requested(version: str) -> None:
    cluster = Resolved("k8s-pod-network", net("k8s-pod-network", version))
    defaults = [
        Resolved("kube-system/d1", net("d1", version)),
        Resolved("kube-system/d2", net("d2", version)),
    ]
    sels = select(
        {"name": "a"},
        {"name": "b", "interface": "data0", "mac": "0a:58:0a:01:00:05"},
        {"name": "c", "namespace": "other", "cni-args": {"x": "y"}},
    )
    requested = [(s, resolved(s, version)) for s in sels]
    rc = {"portMappings": [{"hostPort": 80, "containerPort": 8080, "protocol": "tcp"}]}
    pod = {"namespace": "pods", "name": "web", "uid": "u-1"}
    plan = build(cluster, defaults, requested, ifname="eth0", runtime_config=rc, pod=pod)

    assert plan.pod == pod
    assert summary(plan) == [
        ("k8s-pod-network", "eth0", True),
        ("kube-system/d1", "net1", False),
        ("kube-system/d2", "net2", False),
        ("pods/a", "net3", False),
        ("pods/b", "data0", False),
        ("other/c", "net5", False),  # positional: the named interface still takes a slot
    ]
    atts = plan.attachments
    assert atts[0] == Attachment(
        "k8s-pod-network", cluster.network, "eth0", rc, default=True, k8s=Passengers(CLUSTER)
    )
    assert atts[1] == Attachment(
        "kube-system/d1", defaults[0].network, "net1", rc, k8s=Passengers(DEFAULT_NETWORKS)
    )
    assert atts[3] == Attachment(
        "pods/a", requested[0][1].network, "net3", rc, k8s=Passengers(ANNOTATION)
    )
    assert atts[4].runtime_config == {**rc, "mac": "0a:58:0a:01:00:05"}
    assert atts[4].network is requested[1][1].network
    assert atts[5].network.plugins == (
        {"cniVersion": version, "name": "c", "type": "bridge", "args": {"cni": {"x": "y"}}},
    )
    assert all(route_fields(a) == {} for a in atts)


def test_build_without_pod_or_secondaries() -> None:
    plan = build(Resolved("c", net("c")), [], [], ifname="eth1", runtime_config={})
    assert plan == Plan(
        (Attachment("c", net("c"), "eth1", {}, default=True, k8s=Passengers(CLUSTER)),), {}
    )


def test_build_records_default_route_moves() -> None:
    sels = select(
        {"name": "a", "default-route": ["10.1.0.1"]},
        {"name": "b"},
        {"name": "c", "default-route": ["fd00::1"]},
    )
    plan = build(
        Resolved("c", net("c")),
        [],
        [(s, resolved(s)) for s in sels],
        ifname="eth0",
        runtime_config={},
    )
    assert [route_fields(a) for a in plan.attachments] == [
        {"replaced_default_routes": [4, 6]},
        {"default_route": ["10.1.0.1"]},
        {},
        {"default_route": ["fd00::1"]},
    ]


def test_build_only_ipv6_default_route_replaces_only_ipv6() -> None:
    (sel,) = select({"name": "a", "default-route": ["fd00::1"]})
    plan = build(
        Resolved("c", net("c")), [], [(sel, resolved(sel))], ifname="eth0", runtime_config={}
    )
    assert route_fields(plan.attachments[0]) == {"replaced_default_routes": [6]}


def test_build_rejects_conflicting_default_routes() -> None:
    sels = select(
        {"name": "a", "default-route": ["10.1.0.1"]},
        {"name": "b", "default-route": ["10.2.0.1"]},
    )
    with pytest.raises(InvalidConfig, match="only one IPv4 default route"):
        build(
            Resolved("c", net("c")),
            [],
            [(s, resolved(s)) for s in sels],
            ifname="eth0",
            runtime_config={},
        )


@pytest.mark.parametrize(
    ("elements", "message"),
    [
        (
            [{"name": "a", "interface": "eth0"}],
            "interface name 'eth0' is requested by both 'cluster' and 'pods/a'",
        ),
        (
            [{"name": "a", "interface": "net2"}, {"name": "b"}],
            "interface name 'net2' is requested by both 'pods/a' and 'pods/b'",
        ),
        (
            [{"name": "a", "interface": "x"}, {"name": "b", "interface": "x"}],
            "interface name 'x' is requested by both 'pods/a' and 'pods/b'",
        ),
        (
            [{"name": "a"}, {"name": "a", "interface": "net1"}],
            "interface name 'net1' is requested by both 'pods/a' and 'pods/a'",
        ),
    ],
)
def test_build_rejects_duplicate_interface_names(
    elements: list[dict[str, Any]], message: str
) -> None:
    sels = select(*elements)
    with pytest.raises(InvalidConfig) as e:
        build(
            Resolved("cluster", net("cluster")),
            [],
            [(s, resolved(s)) for s in sels],
            ifname="eth0",
            runtime_config={},
        )
    assert e.value.msg == message


def test_build_same_network_twice_gets_two_interfaces() -> None:
    sels = parse_networks("a,a", "pods")
    plan = build(
        Resolved("c", net("c")),
        [],
        [(s, resolved(s)) for s in sels],
        ifname="eth0",
        runtime_config={},
    )
    assert summary(plan) == [
        ("c", "eth0", True),
        ("pods/a", "net1", False),
        ("pods/a", "net2", False),
    ]


def test_default_network_named_like_cni_ifname_is_rejected() -> None:
    with pytest.raises(InvalidConfig, match="'net1' is requested by both 'c' and 'd'"):
        build(
            Resolved("c", net("c")), [Resolved("d", net("d"))], [], ifname="net1", runtime_config={}
        )


def test_default_network_element_gives_the_cluster_network_its_runtime_values() -> None:
    # v1.multus-cni.io/default-network: its ips/mac/cni-args apply to the cluster network.
    (sel,) = select(
        {"name": "alt", "ips": ["10.9.0.5/24"], "mac": "02:00:00:00:00:09", "cni-args": {"k": 1}}
    )
    plan = build(
        Resolved("alt", conflist("alt")),
        [],
        [],
        ifname="eth0",
        runtime_config={"portMappings": [{"hostPort": 80}]},
        cluster_selection=sel,
    )
    (cluster,) = plan.attachments
    assert cluster.default and cluster.ifname == "eth0"
    assert cluster.runtime_config == {
        "portMappings": [{"hostPort": 80}],
        "ips": ["10.9.0.5/24"],
        "mac": "02:00:00:00:00:09",
    }
    assert cluster.network.plugins[0]["args"]["cni"] == {"keep": 1, "k": 1}  # merged, not replaced
    assert cluster.network.plugins[1]["args"]["cni"] == {"k": 1}
