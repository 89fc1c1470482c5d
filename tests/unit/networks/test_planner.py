"""Planning from a pod (annotations, NADs) and reporting back to the cluster, on a fake cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from multinet.cluster.base import NAD, Pod
from multinet.cni.errors import (
    UNKNOWN_CONTAINER,
    ClusterError,
    DelegateError,
    InvalidConfig,
    NetworkNotFound,
    UnknownContainer,
)
from multinet.cni.request import Request, from_env
from multinet.cni.version import SUPPORTED
from multinet.config.netconf import NetConf, load
from multinet.engine.journal import ADDED, Entry, Journal
from multinet.engine.plan import Plan
from multinet.networks.planner import PodPlanner
from multinet.networks.reporter import PodReporter
from multinet.networks.selection import DEFAULT_NETWORK_ANNOTATION, NETWORKS_ANNOTATION
from tests.support.fakecluster import Event, FakeCluster
from tests.unit.networks.shared import route_fields

UID = "5f4a1c2e-0000-4000-8000-000000000001"


def bridge(name: str, version: str = "1.0.0", **extra: Any) -> dict[str, Any]:
    return {"cniVersion": version, "name": name, "type": "bridge", **extra}


def nad(namespace: str, name: str, config_name: str | None = None, version: str = "1.0.0") -> NAD:
    return NAD(namespace, name, json.dumps(bridge(config_name or f"{name}-net", version)))


def pod(namespace: str = "pods", name: str = "web", uid: str = UID, **annotations: str) -> Pod:
    return Pod(namespace, name, uid, annotations)


def networks(value: Any) -> dict[str, str]:
    return {NETWORKS_ANNOTATION: value if isinstance(value, str) else json.dumps(value)}


def request(
    command: str = "ADD",
    namespace: str | None = "pods",
    name: str | None = "web",
    uid: str | None = UID,
    version: str = "1.0.0",
    ifname: str = "eth0",
) -> Request:
    args = ["IgnoreUnknown=1"]
    for key, value in (
        ("K8S_POD_NAMESPACE", namespace),
        ("K8S_POD_NAME", name),
        ("K8S_POD_INFRA_CONTAINER_ID", "c0ffee"),
        ("K8S_POD_UID", uid),
    ):
        if value is not None:
            args.append(f"{key}={value}")
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": "c0ffee",
        "CNI_NETNS": "/var/run/netns/test",
        "CNI_IFNAME": ifname,
        "CNI_ARGS": ";".join(args),
        "CNI_PATH": "/opt/cni/bin",
    }
    return from_env(env, json.dumps({"cniVersion": version, "name": "multinet"}).encode())


@pytest.fixture
def conf_dir(tmp_path: Path) -> Path:
    d = tmp_path / "net.d"
    d.mkdir()
    (d / "10-cluster.conf").write_text(json.dumps(bridge("k8s-pod-network", bridge="cni0")))
    return d


def netconf(conf_dir: Path, version: str = "1.0.0", **extra: Any) -> NetConf:
    raw: dict[str, Any] = {
        "cniVersion": version,
        "name": "multinet",
        "type": "multinet",
        "confDir": str(conf_dir),
        "kubeconfig": "/etc/kubernetes/kubeconfig",
    }
    if "delegates" not in extra:
        raw["clusterNetwork"] = "k8s-pod-network"
    return load({**raw, **extra})


def summary(plan: Plan) -> list[tuple[str, str, str, bool]]:
    """(status name, ifname, config name, default) per attachment."""
    return [(a.name, a.ifname, a.network.name, a.default) for a in plan.attachments]


# -- which networks -------------------------------------------------------------------------


@pytest.mark.parametrize("version", SUPPORTED)
def test_cluster_network_then_annotation_networks(conf_dir: Path, version: str) -> None:
    cluster = FakeCluster(
        pods=(pod(**networks("blue, other/red@data0,blue")),),
        nads=(nad("pods", "blue", version=version), nad("other", "red", version=version)),
    )
    conf = netconf(conf_dir, version, runtimeConfig={"bandwidth": {"ingressRate": 1}})
    plan = PodPlanner(cluster)(conf, request(version=version))
    assert plan.pod == {"namespace": "pods", "name": "web", "uid": UID}
    assert summary(plan) == [
        ("k8s-pod-network", "eth0", "k8s-pod-network", True),
        ("pods/blue", "net1", "blue-net", False),
        ("other/red", "data0", "red-net", False),
        ("pods/blue", "net3", "blue-net", False),
    ]
    assert plan.attachments[0].runtime_config == {"bandwidth": {"ingressRate": 1}}
    assert plan.attachments[1].network.cni_version == version
    # The runtime's values reach every network, as in Multus (capability-filtered).
    assert plan.attachments[1].runtime_config == {"bandwidth": {"ingressRate": 1}}
    assert cluster.events == []


def test_json_annotation_fields_reach_the_attachment(conf_dir: Path) -> None:
    annotation = [
        {
            "name": "sriov",
            "interface": "vf0",
            "ips": ["10.56.217.61/24"],
            "mac": "0a:58:0a:01:00:05",
            "cni-args": {"vlan": 100},
            "deviceID": "0000:03:02.1",
            "default-route": ["10.56.217.1"],
        }
    ]
    cluster = FakeCluster(pods=(pod(**networks(annotation)),), nads=(nad("pods", "sriov"),))
    plan = PodPlanner(cluster)(netconf(conf_dir), request())
    att = plan.attachments[1]
    assert (att.name, att.ifname) == ("pods/sriov", "vf0")
    assert att.runtime_config == {
        "ips": ["10.56.217.61/24"],
        "mac": "0a:58:0a:01:00:05",
        "deviceID": "0000:03:02.1",
    }
    assert att.network.plugins == (
        {
            **bridge("sriov-net"),
            "args": {"cni": {"vlan": 100}},
            "deviceID": "0000:03:02.1",
            "pciBusID": "0000:03:02.1",
        },
    )
    assert route_fields(att) == {"default_route": ["10.56.217.1"]}
    assert route_fields(plan.attachments[0]) == {"replaced_default_routes": [4]}


def test_default_networks_come_before_the_annotation(conf_dir: Path) -> None:
    (conf_dir / "20-monitor.conf").write_text(json.dumps(bridge("monitor")))
    cluster = FakeCluster(
        pods=(pod(**networks("blue")),),
        nads=(nad("kube-system", "storage"), nad("pods", "blue")),
    )
    conf = netconf(conf_dir, defaultNetworks=["storage", "monitor"])
    assert summary(PodPlanner(cluster)(conf, request())) == [
        ("k8s-pod-network", "eth0", "k8s-pod-network", True),
        ("kube-system/storage", "net1", "storage-net", False),
        ("monitor", "net2", "monitor", False),
        ("pods/blue", "net3", "blue-net", False),
    ]


def test_cluster_network_from_a_nad_is_named_namespace_slash_name(conf_dir: Path) -> None:
    """As Multus writes it in network-status."""
    cluster = FakeCluster(
        pods=(pod(),), nads=(nad("multinet", "k8s-pod-network", config_name="calico"),)
    )
    conf = netconf(conf_dir, multusNamespace="multinet")
    assert summary(PodPlanner(cluster)(conf, request())) == [
        ("multinet/k8s-pod-network", "eth0", "calico", True)
    ]


def test_static_delegates_without_cluster_network(conf_dir: Path) -> None:
    cluster = FakeCluster(pods=(pod(**networks("blue")),), nads=(nad("pods", "blue"),))
    conf = netconf(conf_dir, delegates=[bridge("first"), bridge("second")])
    assert summary(PodPlanner(cluster)(conf, request())) == [
        ("first", "eth0", "first", True),
        ("second", "net1", "second", False),
        ("pods/blue", "net2", "blue-net", False),
    ]


def test_pod_without_annotation_gets_the_cluster_network(conf_dir: Path) -> None:
    cluster = FakeCluster(pods=(pod(),))
    plan = PodPlanner(cluster)(netconf(conf_dir), request(ifname="eth1"))
    assert summary(plan) == [("k8s-pod-network", "eth1", "k8s-pod-network", True)]


def test_request_without_pod_args_plans_without_a_pod(conf_dir: Path) -> None:
    cluster = FakeCluster()
    plan = PodPlanner(cluster)(netconf(conf_dir), request(namespace=None, name=None, uid=None))
    assert plan.pod == {}
    assert summary(plan) == [("k8s-pod-network", "eth0", "k8s-pod-network", True)]
    assert [k for k, *_ in cluster.lookups] == ["nad"]  # no pod was looked up


# -- system namespaces ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("namespace", "extra"),
    [("kube-system", {}), ("infra", {"systemNamespaces": ["infra", "monitoring"]})],
)
def test_system_namespace_gets_no_default_networks_but_its_annotations(
    conf_dir: Path, namespace: str, extra: dict[str, Any]
) -> None:
    """Multus's meaning: systemNamespaces only keeps defaultNetworks off their pods."""
    annotations = {
        **networks("blue"),
        DEFAULT_NETWORK_ANNOTATION: "other-default",
    }
    cluster = FakeCluster(
        pods=(pod(namespace, **annotations),),
        nads=(
            nad(namespace, "blue"),
            nad("kube-system", "other-default"),
            nad("kube-system", "storage"),
        ),
    )
    conf = netconf(conf_dir, defaultNetworks=["storage"], **extra)
    plan = PodPlanner(cluster)(conf, request(namespace=namespace))
    assert summary(plan) == [
        ("kube-system/other-default", "eth0", "other-default-net", True),
        (f"{namespace}/blue", "net1", "blue-net", False),
    ]
    assert plan.pod["namespace"] == namespace
    elsewhere = FakeCluster(pods=(pod("pods", **annotations),), nads=cluster.nads.values())
    elsewhere.add_nad(nad("pods", "blue"))
    assert [a.name for a in PodPlanner(elsewhere)(conf, request()).attachments] == [
        "kube-system/other-default",
        "kube-system/storage",
        "pods/blue",
    ]


@pytest.mark.parametrize(
    ("skip", "allowed", "expected"),
    [
        ("true", True, []),
        ("storage", True, ["kube-system/monitor"]),
        ("monitor, other", True, ["kube-system/storage"]),
        ("true", False, ["kube-system/storage", "kube-system/monitor"]),
        ("", True, ["kube-system/storage", "kube-system/monitor"]),
    ],
)
def test_a_pod_may_skip_default_networks_by_annotation(
    conf_dir: Path, skip: str, allowed: bool, expected: list[str]
) -> None:
    """Multus #1187: an opt-out of defaultNetworks, unless the netconf makes them mandatory."""
    annotations = {"multinet.dev/skip-default-networks": skip} if skip else {}
    cluster = FakeCluster(
        pods=(pod(**annotations),),
        nads=(nad("kube-system", "storage"), nad("kube-system", "monitor")),
    )
    conf = netconf(conf_dir, defaultNetworks=["storage", "monitor"], defaultNetworksOptOut=allowed)
    plan = PodPlanner(cluster)(conf, request())
    assert [a.name for a in plan.attachments[1:]] == expected


def test_a_pod_named_like_a_system_namespace_gets_its_networks(conf_dir: Path) -> None:
    # Multus checks the pod *name* against systemNamespaces; multinet checks the namespace.
    cluster = FakeCluster(
        pods=(pod(name="kube-system", **networks("blue")),), nads=(nad("pods", "blue"),)
    )
    plan = PodPlanner(cluster)(netconf(conf_dir), request(name="kube-system"))
    assert [a.name for a in plan.attachments] == ["k8s-pod-network", "pods/blue"]


# -- default-network annotation --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "nad_namespace"),
    [
        ("alt", "kube-system"),
        ("team/alt", "team"),
        ('[{"name": "alt", "namespace": "team"}]', "team"),
    ],
)
def test_default_network_annotation_replaces_the_cluster_network(
    conf_dir: Path, value: str, nad_namespace: str
) -> None:
    cluster = FakeCluster(
        pods=(pod(**{DEFAULT_NETWORK_ANNOTATION: value, **networks("blue")}),),
        nads=(nad(nad_namespace, "alt", config_name="alt-cni"), nad("pods", "blue")),
    )
    plan = PodPlanner(cluster)(netconf(conf_dir), request())
    assert summary(plan) == [
        (f"{nad_namespace}/alt", "eth0", "alt-cni", True),
        ("pods/blue", "net1", "blue-net", False),
    ]
    assert plan.attachments[0].network.plugins == (bridge("alt-cni"),)


def test_default_network_annotation_in_multus_namespace(conf_dir: Path) -> None:
    cluster = FakeCluster(
        pods=(pod(**{DEFAULT_NETWORK_ANNOTATION: "alt"}),),
        nads=(nad("kube-system", "alt", "wrong"), nad("multinet", "alt", "right")),
    )
    conf = netconf(conf_dir, multusNamespace="multinet")
    assert summary(PodPlanner(cluster)(conf, request()))[0] == (
        "multinet/alt",
        "eth0",
        "right",
        True,
    )


def test_blank_default_network_annotation_is_ignored(conf_dir: Path) -> None:
    cluster = FakeCluster(pods=(pod(**{DEFAULT_NETWORK_ANNOTATION: "  "}),))
    plan = PodPlanner(cluster)(netconf(conf_dir), request())
    assert summary(plan) == [("k8s-pod-network", "eth0", "k8s-pod-network", True)]


def test_default_network_annotation_with_two_networks_is_rejected(conf_dir: Path) -> None:
    cluster = FakeCluster(pods=(pod(**{DEFAULT_NETWORK_ANNOTATION: "a,b"}),))
    with pytest.raises(InvalidConfig, match="expected exactly one network, found 2"):
        PodPlanner(cluster)(netconf(conf_dir), request())


# -- the pod: found, missing, replaced --------------------------------------------------------


def test_missing_pod_fails_add(conf_dir: Path) -> None:
    with pytest.raises(UnknownContainer) as e:
        PodPlanner(FakeCluster())(netconf(conf_dir), request())
    assert e.value.code == UNKNOWN_CONTAINER
    assert e.value.msg == "pod pods/web not found"


def test_missing_pod_is_tolerated_on_del(conf_dir: Path) -> None:
    plan = PodPlanner(FakeCluster())(netconf(conf_dir), request("DEL"))
    assert plan.pod == {}
    assert summary(plan) == [("k8s-pod-network", "eth0", "k8s-pod-network", True)]


def test_uid_mismatch_fails_add(conf_dir: Path) -> None:
    cluster = FakeCluster(pods=(pod(uid="new-uid", **networks("blue")),))
    with pytest.raises(UnknownContainer) as e:
        PodPlanner(cluster)(netconf(conf_dir), request(uid="old-uid"))
    assert e.value.msg == (
        "pod pods/web has UID new-uid but CNI_ARGS K8S_POD_UID is old-uid: "
        "the pod was deleted and recreated"
    )


@pytest.mark.parametrize(
    "marker",
    [
        {"kubernetes.io/config.mirror": "3d8e5f0c9a1b"},
        {"kubernetes.io/config.source": "file"},
    ],
)
def test_a_static_pods_mirror_is_its_pod_whatever_its_uid(
    conf_dir: Path, marker: dict[str, str]
) -> None:
    """The kubelet's K8S_POD_UID of a static pod is not its mirror pod's UID (Multus
    accepts it)."""
    cluster = FakeCluster(
        pods=(pod(uid="mirror-uid", **marker, **networks("blue")),), nads=(nad("pods", "blue"),)
    )
    plan = PodPlanner(cluster)(netconf(conf_dir), request(uid="kubelet-uid"))
    assert plan.pod == {"namespace": "pods", "name": "web", "uid": "mirror-uid"}
    assert [a.name for a in plan.attachments] == ["k8s-pod-network", "pods/blue"]


def test_an_api_pod_of_another_uid_is_not_a_mirror(conf_dir: Path) -> None:
    cluster = FakeCluster(pods=(pod(uid="new", **{"kubernetes.io/config.source": "api"}),))
    with pytest.raises(UnknownContainer):
        PodPlanner(cluster)(netconf(conf_dir), request(uid="old"))


def test_uid_mismatch_on_del_does_not_plan_from_the_new_pod(conf_dir: Path) -> None:
    cluster = FakeCluster(
        pods=(pod(uid="new-uid", **networks("blue")),), nads=(nad("pods", "blue"),)
    )
    plan = PodPlanner(cluster)(netconf(conf_dir), request("DEL", uid="old-uid"))
    assert plan.pod == {}
    assert [a.name for a in plan.attachments] == ["k8s-pod-network"]


@pytest.mark.parametrize(("pod_uid", "arg_uid"), [("", UID), (UID, None), (UID, "")])
def test_uid_is_compared_only_when_both_are_known(
    conf_dir: Path, pod_uid: str, arg_uid: str | None
) -> None:
    cluster = FakeCluster(pods=(pod(uid=pod_uid),))
    plan = PodPlanner(cluster)(netconf(conf_dir), request(uid=arg_uid))
    assert plan.pod == {"namespace": "pods", "name": "web", "uid": pod_uid}


# -- missing NADs -----------------------------------------------------------------------------


def test_missing_nad_fails_with_a_no_network_found_event(conf_dir: Path) -> None:
    cluster = FakeCluster(pods=(pod(**networks("blue,ghost")),), nads=(nad("pods", "blue"),))
    with pytest.raises(NetworkNotFound) as e:
        PodPlanner(cluster)(netconf(conf_dir), request())
    assert e.value.msg == "NetworkAttachmentDefinition pods/ghost not found"
    assert cluster.events == [
        Event(
            "pods/web", "NoNetworkFound", "NetworkAttachmentDefinition pods/ghost not found", True
        )
    ]


def test_an_unknown_annotation_key_is_a_warning_event_and_the_add_goes_on(
    conf_dir: Path,
) -> None:
    value = [{"name": "blue", "interfce": "blue0"}]
    cluster = FakeCluster(
        pods=(pod(**networks(value), **{DEFAULT_NETWORK_ANNOTATION: '[{"name": "red", "x": 1}]'}),),
        nads=(nad("pods", "blue"), nad("kube-system", "red")),
    )
    plan = PodPlanner(cluster)(netconf(conf_dir), request())
    assert [a.ifname for a in plan.attachments] == ["eth0", "net1"]  # interfce: ignored
    assert cluster.events == [
        Event(
            "pods/web",
            "UnknownNetworkKey",
            'default-network annotation element 1 {"name": "red", "x": 1}: unknown key "x": '
            "ADD ignores it",
            True,
        ),
        Event(
            "pods/web",
            "UnknownNetworkKey",
            'networks annotation element 1 {"name": "blue", "interfce": "blue0"}: unknown key '
            '"interfce" (did you mean "interface"?): ADD ignores it',
            True,
        ),
    ]
    cluster.events.clear()
    PodPlanner(cluster)(netconf(conf_dir), request("DEL"))
    assert cluster.events == []  # told once, at ADD


def test_missing_default_network_nad_emits_the_event_too(conf_dir: Path) -> None:
    cluster = FakeCluster(pods=(pod(**{DEFAULT_NETWORK_ANNOTATION: "ghost"}),))
    with pytest.raises(NetworkNotFound):
        PodPlanner(cluster)(netconf(conf_dir), request())
    assert [(e.reason, e.message) for e in cluster.events] == [
        ("NoNetworkFound", "NetworkAttachmentDefinition kube-system/ghost not found")
    ]


def test_missing_cluster_network_without_pod_emits_nothing(conf_dir: Path) -> None:
    cluster = FakeCluster()
    conf = netconf(conf_dir, clusterNetwork="nowhere")
    with pytest.raises(NetworkNotFound, match="network 'nowhere' not found"):
        PodPlanner(cluster)(conf, request(namespace=None, name=None, uid=None))
    assert cluster.events == []


def test_invalid_nad_config_is_not_a_missing_network(conf_dir: Path) -> None:
    cluster = FakeCluster(pods=(pod(**networks("bad")),), nads=(NAD("pods", "bad", "{"),))
    with pytest.raises(InvalidConfig) as e:
        PodPlanner(cluster)(netconf(conf_dir), request())
    assert e.value.msg == "NetworkAttachmentDefinition pods/bad spec.config is not valid JSON"
    assert cluster.events == []


# -- namespace isolation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("global_namespaces", "allowed", "denied"),
    [
        (None, ["team-a", "default"], ["team-b", "kube-system"]),
        ("shared, tools", ["team-a", "shared", "tools"], ["default", "team-b"]),
        (["shared"], ["team-a", "shared"], ["default"]),
    ],
)
def test_namespace_isolation(
    conf_dir: Path, global_namespaces: Any, allowed: list[str], denied: list[str]
) -> None:
    extra: dict[str, Any] = {"namespaceIsolation": True}
    if global_namespaces is not None:
        extra["globalNamespaces"] = global_namespaces
    conf = netconf(conf_dir, **extra)
    nads = tuple(nad(ns, "net") for ns in [*allowed, *denied])
    for ns in allowed:
        cluster = FakeCluster(pods=(pod("team-a", **networks(f"{ns}/net")),), nads=nads)
        plan = PodPlanner(cluster)(conf, request(namespace="team-a"))
        assert [a.name for a in plan.attachments] == ["k8s-pod-network", f"{ns}/net"]
    for ns in denied:
        cluster = FakeCluster(pods=(pod("team-a", **networks(f"{ns}/net")),), nads=nads)
        with pytest.raises(InvalidConfig) as e:
            PodPlanner(cluster)(conf, request(namespace="team-a"))
        assert e.value.msg.startswith(
            f"namespace isolation: pod team-a/web may not use network {ns}/net; "
        )
        assert cluster.events == []


def test_without_isolation_any_namespace_is_allowed(conf_dir: Path) -> None:
    cluster = FakeCluster(pods=(pod(**networks("team-b/net")),), nads=(nad("team-b", "net"),))
    plan = PodPlanner(cluster)(netconf(conf_dir), request())
    assert [a.name for a in plan.attachments] == ["k8s-pod-network", "team-b/net"]


def test_isolation_does_not_apply_to_cluster_and_default_networks(conf_dir: Path) -> None:
    cluster = FakeCluster(
        pods=(pod("team-a", **{DEFAULT_NETWORK_ANNOTATION: "alt"}),),
        nads=(nad("kube-system", "alt"), nad("kube-system", "storage")),
    )
    conf = netconf(conf_dir, namespaceIsolation=True, defaultNetworks=["storage"])
    plan = PodPlanner(cluster)(conf, request(namespace="team-a"))
    assert [a.name for a in plan.attachments] == ["kube-system/alt", "kube-system/storage"]


# -- the reporter -----------------------------------------------------------------------------


def journal_for(plan: Plan) -> Journal:
    """A journal as ADD leaves it: every attachment added with a one-interface result."""
    journal = Journal("c0ffee", "eth0", pod=dict(plan.pod))
    for i, att in enumerate(plan.attachments):
        journal.entries.append(
            Entry(
                att.name,
                att.ifname,
                att.network.to_dict(),
                dict(att.runtime_config),
                state=ADDED,
                result={
                    "cniVersion": "1.0.0",
                    "interfaces": [
                        {
                            "name": att.ifname,
                            "mac": f"0a:00:00:00:00:0{i}",
                            "sandbox": "/var/run/netns/test",
                        }
                    ],
                    "ips": [{"address": f"10.{i}.0.5/24", "interface": 0}],
                },
                default=att.default,
                default_route=att.default_route,
                replaced_default_routes=att.replaced_default_routes,
            )
        )
    return journal


def test_reporter_writes_network_status_and_events(conf_dir: Path) -> None:
    cluster = FakeCluster(
        pods=(pod(**networks("blue,red@data0")),), nads=(nad("pods", "blue"), nad("pods", "red"))
    )
    conf = netconf(conf_dir)
    req = request()
    plan = PodPlanner(cluster)(conf, req)
    PodReporter(cluster).added(conf, req, plan, journal_for(plan))
    assert cluster.statuses == [
        (
            "pods/web",
            [
                {
                    "name": "k8s-pod-network",
                    "interface": "eth0",
                    "ips": ["10.0.0.5"],
                    "mac": "0a:00:00:00:00:00",
                    "default": True,
                    "dns": {},
                },
                {
                    "name": "pods/blue",
                    "interface": "net1",
                    "ips": ["10.1.0.5"],
                    "mac": "0a:00:00:00:00:01",
                    "dns": {},
                },
                {
                    "name": "pods/red",
                    "interface": "data0",
                    "ips": ["10.2.0.5"],
                    "mac": "0a:00:00:00:00:02",
                    "dns": {},
                },
            ],
        )
    ]
    assert cluster.events == [
        Event("pods/web", "AddedInterface", "Add eth0 [10.0.0.5/24] from k8s-pod-network", False),
        Event("pods/web", "AddedInterface", "Add net1 [10.1.0.5/24] from pods/blue", False),
        Event("pods/web", "AddedInterface", "Add data0 [10.2.0.5/24] from pods/red", False),
    ]


def test_reporter_without_events(conf_dir: Path) -> None:
    cluster = FakeCluster(pods=(pod(**networks("blue")),), nads=(nad("pods", "blue"),))
    conf, req = netconf(conf_dir), request()
    plan = PodPlanner(cluster)(conf, req)
    PodReporter(cluster, events=False).added(conf, req, plan, journal_for(plan))
    assert [st["name"] for st in cluster.status_of("pods", "web") or []] == [
        "k8s-pod-network",
        "pods/blue",
    ]
    assert cluster.events == []


@pytest.mark.parametrize("namespace", ["kube-system", "infra"])
def test_reporter_writes_status_in_system_namespaces_too(conf_dir: Path, namespace: str) -> None:
    """As Multus: systemNamespaces is about defaultNetworks only."""
    cluster = FakeCluster(pods=(pod(namespace),))
    conf = netconf(conf_dir, systemNamespaces=["kube-system", "infra"])
    req = request(namespace=namespace)
    plan = PodPlanner(cluster)(conf, req)
    PodReporter(cluster).added(conf, req, plan, journal_for(plan))
    assert [key for key, _ in cluster.statuses] == [f"{namespace}/web"]
    assert [e.reason for e in cluster.events] == ["AddedInterface"]


def test_reporter_writes_status_for_a_pod_named_like_a_system_namespace(conf_dir: Path) -> None:
    cluster = FakeCluster(pods=(pod(name="kube-system"),))
    conf, req = netconf(conf_dir), request(name="kube-system")
    plan = PodPlanner(cluster)(conf, req)
    PodReporter(cluster).added(conf, req, plan, journal_for(plan))
    assert [key for key, _ in cluster.statuses] == ["pods/kube-system"]


def test_reporter_without_pod_does_nothing(conf_dir: Path) -> None:
    cluster = FakeCluster()
    conf, req = netconf(conf_dir), request(namespace=None, name=None, uid=None)
    plan = PodPlanner(cluster)(conf, req)
    PodReporter(cluster).added(conf, req, plan, journal_for(plan))
    PodReporter(cluster).failed(conf, req, plan, DelegateError("boom"))
    assert cluster.statuses == []
    assert cluster.events == []


def test_reporter_status_failure_propagates(conf_dir: Path) -> None:
    cluster = FakeCluster(pods=(pod(),))
    conf, req = netconf(conf_dir), request()
    plan = PodPlanner(cluster)(conf, req)
    cluster.pods[("pods", "web")] = pod(uid="recreated")
    with pytest.raises(ClusterError, match="has UID recreated"):
        PodReporter(cluster).added(conf, req, plan, journal_for(plan))
    assert cluster.events == []  # no AddedInterface for an ADD that will be rolled back


def test_reporter_failed_emits_failed_attach(conf_dir: Path) -> None:
    cluster = FakeCluster(pods=(pod(),))
    conf, req = netconf(conf_dir), request()
    plan = PodPlanner(cluster)(conf, req)
    reporter = PodReporter(cluster)
    reporter.failed(conf, req, plan, DelegateError("network 'pods/blue' (net1): no IP", "pool"))
    # Planning failed (no plan): the pod from CNI_ARGS still hears about it...
    reporter.failed(conf, req, None, InvalidConfig("networks annotation element 1: bad"))
    # ...unless the pod itself is the problem.
    reporter.failed(conf, req, None, UnknownContainer("pod pods/web not found"))
    assert cluster.events == [
        Event(
            "pods/web", "FailedAttach", "ADD failed: network 'pods/blue' (net1): no IP: pool", True
        ),
        Event("pods/web", "FailedAttach", "ADD failed: networks annotation element 1: bad", True),
    ]
    assert cluster.statuses == []


def test_reporter_deleted_removes_the_local_record_only(conf_dir: Path, tmp_path: Path) -> None:
    from multinet.cluster.records import StatusRecords

    cluster = FakeCluster(pods=(pod(),))
    conf = netconf(conf_dir, cniDir=str(tmp_path / "state"))
    req = request()
    plan = PodPlanner(cluster)(conf, req)
    records = StatusRecords(conf.cni_dir)
    records.write_status("pods", "web", [{"name": "x"}])
    records.write_status("pods", "other", [{"name": "y"}])
    PodReporter(cluster).deleted(conf, req, journal_for(plan))
    assert records.read_status("pods", "web") is None
    assert records.read_status("pods", "other") == [{"name": "y"}]
    assert cluster.events == [] and cluster.statuses == []  # DEL asks nothing of the cluster
