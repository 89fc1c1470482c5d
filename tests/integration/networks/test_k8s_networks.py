"""NetworkAttachmentDefinitions (inline config, conflist, confDir fallback), namespaces
(isolation, system namespaces, default-network override) and network-status content.

Each scenario runs on both cluster sources (see conftest.py).
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from typing import TYPE_CHECKING

import pytest

from tests.support.scripts import installed

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.integration.conftest import K8s, LeakChecker, NetInfo, State

DEFAULT_NETWORK_ANNOTATION = "v1.multus-cni.io/default-network"


def host(subnet: ipaddress.IPv4Network, n: int) -> str:
    return str(subnet.network_address + n)


def cidr(subnet: ipaddress.IPv4Network, n: int) -> str:
    return f"{host(subnet, n)}/{subnet.prefixlen}"


def multinetctl() -> str:
    found = installed("multinetctl")
    if found is None:
        pytest.skip("the multinetctl console script is not installed (pip install -e .)")
    return found


# -- NAD forms ---------------------------------------------------------------------


def test_nad_with_a_single_config_and_no_name_gets_the_nad_name(
    k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    subnet = k8s.confs.subnet()
    config = {
        "cniVersion": "1.0.0",
        "type": "bridge",
        "bridge": k8s.bridge_factory(),
        "ipam": {
            "type": "host-local",
            "dataDir": str(k8s.state.ipam_dir),
            "ranges": [[{"subnet": str(subnet)}]],
        },
    }
    k8s.source.add_nad("default", "plain", config)
    pod = k8s.pod("plain")
    cid = k8s.container_id()

    rc, out, _ = k8s.add(pod, netns, cid)
    assert rc == 0, out
    assert net.addresses(netns)["net1"] == [cidr(subnet, 2)]
    assert net.kind(netns, "net1") == "veth"
    # host-local keeps its allocations under the network's name: the NAD's.
    assert leaks.allocations() == {
        k8s.cluster_config_name: [host(k8s.cluster_subnet, 2)],
        "plain": [host(subnet, 2)],
    }

    assert k8s.delete(pod, netns, cid).rc == 0
    leaks.assert_clean()


def test_nad_with_a_conflist_runs_the_whole_chain(
    k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    tuning = k8s.confs.tuning(sysctl={"net.ipv4.conf.net1.arp_notify": "1"})
    subnet = k8s.bridge_nad("chained", plugins=[tuning], config_name="chained-config")
    pod = k8s.pod("chained")
    cid = k8s.container_id()

    rc, out, _ = k8s.add(pod, netns, cid)
    assert rc == 0, out
    assert net.addresses(netns)["net1"] == [cidr(subnet, 2)]
    assert net.sysctl(netns, "net.ipv4.conf.net1.arp_notify") == "1"
    # The config's own name is kept (host-local directory); status names the NAD.
    assert leaks.allocations()["chained-config"] == [host(subnet, 2)]
    status = k8s.source.network_status(pod.namespace, pod.name)
    assert status is not None
    assert status[1]["name"] == "default/chained"

    assert k8s.delete(pod, netns, cid).rc == 0
    leaks.assert_clean()


def test_nad_with_an_empty_spec_uses_the_confdir_file_of_its_name(
    k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    decoy, wanted = k8s.confs.subnet(), k8s.confs.subnet()
    files = {
        "10-decoy.conflist": k8s.confs.bridge_net("decoy", k8s.bridge_factory(), decoy, routes=[]),
        "20-fromfile.conflist": k8s.confs.bridge_net(
            "fromfile", k8s.bridge_factory(), wanted, routes=[]
        ),
    }
    for name, config in files.items():
        (k8s.conf_dir / name).write_text(json.dumps(config))
    k8s.source.add_nad("default", "fromfile", None)
    pod = k8s.pod("fromfile")
    cid = k8s.container_id()

    rc, out, _ = k8s.add(pod, netns, cid)
    assert rc == 0, out
    assert net.addresses(netns)["net1"] == [cidr(wanted, 2)]
    status = k8s.source.network_status(pod.namespace, pod.name)
    assert status is not None
    assert (status[1]["name"], status[1]["ips"]) == ("default/fromfile", [host(wanted, 2)])

    assert k8s.delete(pod, netns, cid).rc == 0
    leaks.assert_clean()


def test_nad_with_an_empty_spec_and_no_confdir_file_is_an_error(
    k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    k8s.source.add_nad("default", "nofile", None)
    pod = k8s.pod("nofile")
    cid = k8s.container_id()

    rc, out, _ = k8s.add(pod, netns, cid)
    assert rc != 0
    assert out["code"] == 7
    assert "default/nofile" in out["msg"] and str(k8s.conf_dir) in out["msg"]
    assert net.links(netns) == {}
    assert [(e.reason, e.pod) for e in k8s.source.events()] == [
        ("NoNetworkFound", pod.name),
        ("FailedAttach", pod.name),
    ]
    leaks.assert_clean()


# -- namespaces ----------------------------------------------------------------------


def test_namespace_isolation_refuses_a_network_of_another_namespace(
    k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    k8s.bridge_nad("mine", namespace="tenant-a")
    k8s.bridge_nad("secret", namespace="tenant-b")
    pod = k8s.pod("mine, tenant-b/secret", namespace="tenant-a")
    cid = k8s.container_id()

    rc, out, _ = k8s.add(pod, netns, cid, conf=k8s.netconf(namespaceIsolation=True))
    assert rc != 0
    assert out["code"] == 7
    assert "namespace isolation" in out["msg"]
    assert "tenant-b/secret" in out["msg"] and pod.key in out["msg"]
    assert net.links(netns) == {}
    assert k8s.source.network_status(pod.namespace, pod.name) is None
    leaks.assert_clean()


@pytest.mark.parametrize(
    ("global_namespaces", "allowed", "refused"),
    [
        pytest.param(None, "default", "shared", id="default-allowed"),
        pytest.param("shared", "shared", "default", id="globalNamespaces"),
    ],
)
def test_namespace_isolation_allows_own_and_global_namespaces(
    global_namespaces: str | None,
    allowed: str,
    refused: str,
    k8s: K8s,
    netns_factory: Callable[[], str],
    net: NetInfo,
    leaks: LeakChecker,
) -> None:
    own = k8s.bridge_nad("mine", namespace="tenant-a")
    other = k8s.bridge_nad("common", namespace=allowed)
    k8s.bridge_nad("common", namespace=refused)
    keys = {"namespaceIsolation": True}
    if global_namespaces is not None:
        keys["globalNamespaces"] = global_namespaces
    conf = k8s.netconf(**keys)
    ok = k8s.pod(f"mine, {allowed}/common", namespace="tenant-a", name="pod-ok")
    bad = k8s.pod(f"{refused}/common", namespace="tenant-a", name="pod-bad")
    ns_ok, ns_bad = netns_factory(), netns_factory()
    cid_ok, cid_bad = k8s.container_id(), k8s.container_id()

    rc, out, _ = k8s.add(ok, ns_ok, cid_ok, conf=conf)
    assert rc == 0, out
    assert net.addresses(ns_ok) == {
        "eth0": [cidr(k8s.cluster_subnet, 2)],
        "net1": [cidr(own, 2)],
        "net2": [cidr(other, 2)],
    }
    rc, out, _ = k8s.add(bad, ns_bad, cid_bad, conf=conf)
    assert rc != 0
    assert (out["code"], f"{refused}/common" in out["msg"]) == (7, True)
    assert net.links(ns_bad) == {}

    assert k8s.delete(ok, ns_ok, cid_ok, conf=conf).rc == 0
    leaks.assert_clean()


def test_default_network_annotation_replaces_the_cluster_network(
    k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    alt = k8s.bridge_nad(
        "alt",
        namespace="kube-system",
        config_name="alt-config",
        routes=None,  # bridge_net's default: a default route via .1
    )
    k8s.bridge_nad("side")
    pod = k8s.pod("side", annotations={DEFAULT_NETWORK_ANNOTATION: "alt"})
    cid = k8s.container_id()

    rc, out, _ = k8s.add(pod, netns, cid)
    assert rc == 0, out
    assert [ip["address"] for ip in out["ips"]] == [cidr(alt, 2)]
    assert net.addresses(netns)["eth0"] == [cidr(alt, 2)]
    status = k8s.source.network_status(pod.namespace, pod.name)
    assert status is not None
    assert [(s["name"], s["interface"], s.get("default")) for s in status] == [
        ("kube-system/alt", "eth0", True),
        ("default/side", "net1", None),
    ]
    assert status[0]["gateway"] == [host(alt, 1)]
    assert leaks.allocations().get(k8s.cluster_config_name) is None

    assert k8s.delete(pod, netns, cid).rc == 0
    leaks.assert_clean()


def test_system_namespace_pod_gets_its_networks_and_status_but_no_default_networks(
    k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker, state: State
) -> None:
    """Multus's meaning of systemNamespaces: no defaultNetworks there, nothing else."""
    extra = k8s.bridge_nad("extra", namespace="kube-system")
    alt = k8s.bridge_nad("alt", namespace="kube-system", config_name="alt-config")
    k8s.bridge_nad("always", namespace="kube-system")
    pod = k8s.pod(
        "extra",
        namespace="kube-system",
        name="coredns-x",
        annotations={DEFAULT_NETWORK_ANNOTATION: "alt"},
    )
    cid = k8s.container_id()

    rc, out, _ = k8s.add(pod, netns, cid, conf=k8s.netconf(defaultNetworks=["always"]))
    assert rc == 0, out
    assert net.addresses(netns) == {"eth0": [cidr(alt, 2)], "net1": [cidr(extra, 2)]}
    status = k8s.source.network_status(pod.namespace, pod.name)
    assert [s["name"] for s in status or []] == ["kube-system/alt", "kube-system/extra"]
    assert [e.reason for e in k8s.source.events()] == ["AddedInterface", "AddedInterface"]
    assert k8s.delete(pod, netns, cid).rc == 0
    leaks.assert_clean()


# -- network-status ----------------------------------------------------------------------


def test_network_status_is_exact_field_by_field(
    k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker, state: State
) -> None:
    storage = k8s.confs.subnet()
    dns = {
        "nameservers": [host(storage, 53)],
        "domain": "storage.test",
        "search": ["storage.test", "test"],
    }
    k8s.source.add_nad(
        "default",
        "storage",
        # macvlan reports its top-level `dns` (and drops what IPAM returned).
        k8s.macvlan_config(address=cidr(storage, 10), dns=dns),
    )
    tuning = {**k8s.confs.tuning(), "capabilities": {"mac": True}}
    lab = k8s.bridge_nad("lab", plugins=[tuning])
    mac = "02:00:5e:aa:bb:cc"
    pod = k8s.pod([{"name": "storage", "interface": "storage0"}, {"name": "lab", "mac": mac}])
    cid = k8s.container_id()

    rc, out, _ = k8s.add(pod, netns, cid)
    assert rc == 0, out
    expected = [
        {
            "name": k8s.cluster_status_name,
            "interface": "eth0",
            "ips": [host(k8s.cluster_subnet, 2)],
            "mac": net.mac(netns, "eth0"),
            "default": True,
            "dns": {},
            "gateway": [k8s.cluster_gateway],
        },
        {
            "name": "default/storage",
            "interface": "storage0",
            "ips": [host(storage, 10)],
            "mac": net.mac(netns, "storage0"),
            "dns": dns,
        },
        {
            "name": "default/lab",
            "interface": "net2",
            "ips": [host(lab, 2)],
            "mac": mac,
            "dns": {},
        },
    ]
    assert net.mac(netns, "net2") == mac
    assert k8s.source.network_status(pod.namespace, pod.name) == expected
    # multinetctl shows the same (from the local record, or the API with --kubeconfig).
    cmd = [multinetctl(), "--cni-dir", str(state.cni_dir), "status", pod.key]
    kubeconfig = k8s.source.netconf_keys().get("kubeconfig")
    if kubeconfig:
        cmd += ["--kubeconfig", kubeconfig]
    shown = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(shown.stdout) == expected
    # One AddedInterface event per interface, the cluster network's included (as Multus).
    added = [e for e in k8s.source.events() if e.reason == "AddedInterface"]
    assert [(e.namespace, e.pod, e.type) for e in added] == [
        (pod.namespace, pod.name, "Normal")
    ] * 3
    for event, st in zip(added, expected, strict=True):
        assert st["interface"] in event.message and st["name"] in event.message
        assert st["ips"][0] in event.message

    assert k8s.delete(pod, netns, cid).rc == 0
    leaks.assert_clean()


# -- clusterNetwork and defaultNetworks references -----------------------------------------


@pytest.mark.parametrize("reference", ["config-name", "file-path", "directory-path"])
def test_cluster_network_by_confdir_name_or_path(
    reference: str, k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    subnet = k8s.confs.subnet()
    config = k8s.confs.bridge_net("node-net", k8s.bridge_factory(), subnet)
    path = k8s.conf_dir / "10-node-net.conflist"
    path.write_text(json.dumps(config))
    ref = {"config-name": "node-net", "file-path": str(path), "directory-path": str(k8s.conf_dir)}
    k8s.bridge_nad("lab")
    pod = k8s.pod("lab")
    cid = k8s.container_id()
    conf = k8s.netconf(clusterNetwork=ref[reference])

    rc, out, _ = k8s.add(pod, netns, cid, conf=conf)
    assert rc == 0, out
    assert net.addresses(netns)["eth0"] == [cidr(subnet, 2)]
    status = k8s.source.network_status(pod.namespace, pod.name)
    assert status is not None
    assert [(s["name"], s["interface"]) for s in status] == [
        ("node-net", "eth0"),
        ("default/lab", "net1"),
    ]

    assert k8s.delete(pod, netns, cid, conf=conf).rc == 0
    leaks.assert_clean()


def test_default_networks_come_before_the_pods_networks(
    k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    always = k8s.bridge_nad("always", namespace="kube-system", config_name="always-config")
    lab = k8s.bridge_nad("lab")
    pod = k8s.pod("lab")
    cid = k8s.container_id()
    conf = k8s.netconf(defaultNetworks=["always"])

    rc, out, _ = k8s.add(pod, netns, cid, conf=conf)
    assert rc == 0, out
    assert net.addresses(netns) == {
        "eth0": [cidr(k8s.cluster_subnet, 2)],
        "net1": [cidr(always, 2)],
        "net2": [cidr(lab, 2)],
    }
    status = k8s.source.network_status(pod.namespace, pod.name)
    assert status is not None
    assert [(s["name"], s["interface"], s.get("default", False)) for s in status] == [
        (k8s.cluster_status_name, "eth0", True),
        ("kube-system/always", "net1", False),
        ("default/lab", "net2", False),
    ]

    assert k8s.delete(pod, netns, cid, conf=conf).rc == 0
    leaks.assert_clean()
