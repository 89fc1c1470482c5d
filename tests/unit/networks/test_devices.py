"""Device-plugin resources: the pod's device IDs -> attachments, and NPWG device-info."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from multinet.cluster.base import NAD, Pod
from multinet.cni.errors import INVALID_CONFIG, TRY_AGAIN_LATER, CNIError, TryAgainLater
from multinet.cni.request import Request, from_env
from multinet.config.netconf import NetConf, load
from multinet.engine.journal import ADDED, Entry, Journal
from multinet.networks import devices
from multinet.networks.planner import PodPlanner
from multinet.networks.reporter import PodReporter
from multinet.networks.selection import NETWORKS_ANNOTATION
from tests.support.fakecluster import FakeCluster

RESOURCE = "intel.com/sriov_netdevice"
UID = "uid-1"


class Devices:
    def __init__(self, assigned: dict[str, list[str]] | None = None, fail: bool = False) -> None:
        self.assigned = assigned or {}
        self.fail = fail
        self.asked: list[str] = []

    def for_pod(self, pod: Pod) -> dict[str, list[str]]:
        self.asked.append(pod.key)
        if self.fail:
            raise TryAgainLater("kubelet down")
        return self.assigned


def sriov_nad(name: str, resource: str | None = RESOURCE, plugins: int = 1) -> NAD:
    sriov = {"type": "multinet-sriov", "capabilities": {"CNIDeviceInfoFile": True}}
    config: dict[str, Any] = {"cniVersion": "1.0.0", "name": f"{name}-net"}
    config["plugins"] = [sriov] + [{"type": "tuning"}] * (plugins - 1)
    ann = {devices_annotation(): resource} if resource else {}
    return NAD("pods", name, json.dumps(config), ann)


def devices_annotation() -> str:
    return "k8s.v1.cni.cncf.io/resourceName"


def request(command: str = "ADD") -> Request:
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": "c0ffee",
        "CNI_NETNS": "/var/run/netns/test",
        "CNI_IFNAME": "eth0",
        "CNI_ARGS": f"K8S_POD_NAMESPACE=pods;K8S_POD_NAME=web;K8S_POD_UID={UID}",
        "CNI_PATH": "/opt/cni/bin",
    }
    return from_env(env, json.dumps({"cniVersion": "1.0.0", "name": "multinet"}).encode())


def netconf(tmp_path: Path) -> NetConf:
    d = tmp_path / "net.d"
    d.mkdir(exist_ok=True)
    (d / "cluster.conf").write_text(
        json.dumps({"cniVersion": "1.0.0", "name": "k8s", "type": "bridge"})
    )
    return load(
        {
            "cniVersion": "1.0.0",
            "name": "multinet",
            "type": "multinet",
            "confDir": str(d),
            "kubeconfig": "/k",
            "clusterNetwork": "k8s",
            "deviceInfoDir": str(tmp_path / "devinfo"),
        }
    )


def planner(nets: list[str], source: Devices, *nads: NAD) -> PodPlanner:
    pod = Pod("pods", "web", UID, {NETWORKS_ANNOTATION: ",".join(nets)})
    return PodPlanner(FakeCluster((pod,), nads), source)


def test_each_attachment_gets_its_own_device_sorted_in_plan_order(tmp_path: Path) -> None:
    source = Devices({RESOURCE: ["0000:03:02.2", "0000:03:02.1"]})
    p = planner(["a", "b"], source, sriov_nad("a", plugins=2), sriov_nad("b"))
    plan = p(netconf(tmp_path), request())
    a, b = plan.attachments[1:]
    assert (a.k8s.device_id, b.k8s.device_id) == ("0000:03:02.1", "0000:03:02.2")
    assert source.asked == ["pods/web"]  # once per ADD
    for plugin in a.network.plugins:  # every plugin of the conflist, as Multus
        assert (plugin["deviceID"], plugin["pciBusID"]) == ("0000:03:02.1", "0000:03:02.1")
    info = str(tmp_path / "devinfo" / "cni" / "a-net-c0ffee_net1-device.json")
    assert a.runtime_config == {"deviceID": "0000:03:02.1", "CNIDeviceInfoFile": info}
    assert a.k8s.device_info_file == info
    assert a.k8s.device_plugin_info_file == str(
        tmp_path / "devinfo" / "dp" / "intel.com-sriov_netdevice-0000:03:02.1-device.json"
    )
    assert plan.attachments[0].k8s.device_id == ""  # the cluster network names no resource
    entry = Entry.planned(a)
    assert (entry.k8s.resource_name, entry.k8s.device_id, entry.k8s.device_info_file) == (
        RESOURCE,
        "0000:03:02.1",
        info,
    )


def test_no_resource_no_kubelet_question(tmp_path: Path) -> None:
    source = Devices()
    plan = planner(["a"], source, sriov_nad("a", resource=None))(netconf(tmp_path), request())
    assert source.asked == []
    assert "deviceID" not in plan.attachments[1].network.plugins[0]


def test_more_attachments_than_devices_is_code_7_naming_resource_and_counts(
    tmp_path: Path,
) -> None:
    source = Devices({RESOURCE: ["0000:03:02.1"]})
    p = planner(["a", "b"], source, sriov_nad("a"), sriov_nad("b"))
    with pytest.raises(CNIError) as e:
        p(netconf(tmp_path), request())
    assert e.value.code == INVALID_CONFIG
    assert RESOURCE in e.value.msg
    assert "2 network(s)" in e.value.msg and "assigned 1" in e.value.msg


def test_an_unreachable_kubelet_fails_add_but_not_del(tmp_path: Path) -> None:
    p = planner(["a"], Devices(fail=True), sriov_nad("a"))
    with pytest.raises(CNIError) as e:
        p(netconf(tmp_path), request())
    assert e.value.code == TRY_AGAIN_LATER
    plan = p(netconf(tmp_path), request("DEL"))
    assert plan.attachments[1].k8s.device_id == ""


def test_device_info_the_cni_plugins_file_wins_over_the_device_plugins(tmp_path: Path) -> None:
    dp, cni = tmp_path / "dp.json", tmp_path / "cni.json"
    assert devices.read_device_info(str(cni), str(dp)) is None
    dp.write_text(json.dumps({"type": "pci", "version": "1.1.0", "pci": {"pci-address": "x"}}))
    assert devices.read_device_info(str(cni), str(dp))["pci"] == {"pci-address": "x"}  # type: ignore[index]
    cni.write_text(json.dumps({"type": "pci", "version": "1.1.0", "pci": {"pci-address": "y"}}))
    assert devices.read_device_info(str(cni), str(dp))["pci"] == {"pci-address": "y"}  # type: ignore[index]
    cni.write_text("[]")  # not an object: ignored
    assert devices.read_device_info(str(cni), str(dp))["pci"] == {"pci-address": "x"}  # type: ignore[index]


def test_the_reporter_puts_device_info_in_network_status_and_del_removes_the_file(
    tmp_path: Path,
) -> None:
    source = Devices({RESOURCE: ["0000:03:02.1"]})
    nad = sriov_nad("a")
    cluster = FakeCluster((Pod("pods", "web", UID, {NETWORKS_ANNOTATION: "a"}),), (nad,))
    conf = netconf(tmp_path)
    plan = PodPlanner(cluster, source)(conf, request())
    att = plan.attachments[1]
    info = {"type": "pci", "version": "1.1.0", "pci": {"pci-address": "0000:03:02.1"}}
    Path(att.k8s.device_plugin_info_file).parent.mkdir(parents=True)
    Path(att.k8s.device_plugin_info_file).write_text(json.dumps(info))
    Path(att.k8s.device_info_file).parent.mkdir(parents=True)
    written = {**info, "extra": {"from": "cni"}}
    Path(att.k8s.device_info_file).write_text(json.dumps(written))
    entries = [Entry.planned(a) for a in plan.attachments]
    result = {"cniVersion": "1.0.0", "interfaces": [{"name": "x", "sandbox": "/ns"}]}
    for e in entries:
        e.state, e.result = ADDED, result
    journal = Journal("c0ffee", "eth0", entries=entries)
    reporter = PodReporter(cluster, events=False)
    reporter.added(conf, request(), plan, journal)
    status = cluster.status_of("pods", "web")
    assert status is not None
    assert "device-info" not in status[0]
    assert status[1]["device-info"] == written
    assert journal.entries[1].device_info == written  # journaled for later readers
    reporter.deleted(conf, request("DEL"), journal)
    assert not Path(att.k8s.device_info_file).exists()
    assert Path(att.k8s.device_plugin_info_file).exists()  # the device plugin's own
