"""The change a running pod's new annotation asks (networks.dynamic.PodChanges), and a
Multus /delegate request's attachment, on a fake cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from multinet.cluster.base import NAD, Pod
from multinet.cni import chain
from multinet.cni.errors import InvalidConfig, NetworkNotFound
from multinet.engine.journal import ADDED, Entry, Journal
from multinet.engine.plan import DELEGATE
from multinet.networks.attachments import RESOURCE_ANNOTATION
from multinet.networks.dynamic import PodChanges, delegate_attachment
from multinet.networks.planner import PodPlanner
from tests.support.fakecluster import FakeCluster
from tests.unit.networks.test_planner import UID, conf_dir, nad, netconf, networks, pod, request

__all__ = ["conf_dir"]  # the fixture, imported for its use here


class Devices:
    def __init__(self, assigned: dict[str, list[str]]) -> None:
        self.assigned = assigned

    def for_pod(self, pod: Pod) -> dict[str, list[str]]:
        return self.assigned


def attached(planner: PodPlanner, conf_dir: Path, **netconf_keys: object) -> Journal:
    """The journal of the pod's sandbox as its ADD left it."""
    conf = netconf(conf_dir, **netconf_keys)
    plan = planner(conf, request())
    entries = [Entry.planned(a) for a in plan.attachments]
    for e in entries:
        e.state, e.result = ADDED, {"cniVersion": "1.0.0"}
    return Journal("c0ffee", "eth0", pod=dict(plan.pod), entries=entries, complete=True)


def cluster(annotation: str, *extra: NAD) -> FakeCluster:
    nads = (nad("pods", "a"), nad("pods", "b"), nad("pods", "c"), *extra)
    return FakeCluster(pods=(pod(**networks(annotation)),), nads=nads)


def repod(c: FakeCluster, annotation: str) -> None:
    c.add_pod(Pod("pods", "web", UID, networks(annotation)))


def test_the_change_of_a_new_annotation(conf_dir: Path) -> None:
    c = cluster("a, b@data0")
    planner = PodPlanner(c)
    journal = attached(planner, conf_dir, runtimeConfig={"portMappings": [{"hostPort": 80}]})
    repod(c, "b@data0, c, c@data1")
    change = PodChanges(planner)(
        netconf(conf_dir, runtimeConfig={"portMappings": [{"hostPort": 80}]}), request(), journal
    )
    assert change.remove == ("net1",)
    assert [(a.name, a.ifname) for a in change.add] == [("pods/c", "net1"), ("pods/c", "data1")]
    # The pod-wide runtime values reach the new networks as they reached the first ones.
    assert change.add[0].runtime_config == {"portMappings": [{"hostPort": 80}]}


def test_the_same_annotation_changes_nothing(conf_dir: Path) -> None:
    c = cluster("a, b@data0")
    planner = PodPlanner(c)
    journal = attached(planner, conf_dir)
    assert not PodChanges(planner)(netconf(conf_dir), request(), journal)


@pytest.mark.parametrize(
    "annotation, error, message",
    [
        ("a, nosuch", NetworkNotFound, "pods/nosuch not found"),
        ('[{"name": "c", "default-route": ["10.0.0.1"]}]', InvalidConfig, "default-route cannot"),
        ('[{"name": "c", "source-routing": true}]', InvalidConfig, "source-routing cannot"),
        ('[{"name": 5}]', InvalidConfig, "name"),
        ("other/c", InvalidConfig, "namespace isolation"),
    ],
)
def test_what_cannot_be_honoured_is_refused_whole(
    conf_dir: Path, annotation: str, error: type[Exception], message: str
) -> None:
    c = cluster("a", nad("other", "c"))
    planner = PodPlanner(c)
    journal = attached(planner, conf_dir)
    repod(c, annotation)
    with pytest.raises(error, match=message):
        PodChanges(planner)(netconf(conf_dir, namespaceIsolation=True), request(), journal)


def test_a_new_resource_backed_network_gets_a_device_no_staying_network_holds(
    conf_dir: Path,
) -> None:
    vf = NAD(
        "pods",
        "vf",
        json.dumps({"cniVersion": "1.0.0", "name": "vf", "type": "sriov"}),
        {RESOURCE_ANNOTATION: "intel.com/vf"},
    )
    c = cluster("vf", vf)
    devices = Devices({"intel.com/vf": ["0000:01:00.2", "0000:01:00.1"]})
    planner = PodPlanner(c, devices)
    journal = attached(planner, conf_dir)
    assert journal.entries[1].k8s.device_id == "0000:01:00.1"
    repod(c, "vf, vf")
    (new,) = PodChanges(planner)(netconf(conf_dir), request(), journal).add
    assert new.k8s.device_id == "0000:01:00.2" and new.runtime_config["deviceID"] == "0000:01:00.2"
    repod(c, "vf, vf, vf")
    with pytest.raises(InvalidConfig, match="need a device"):
        PodChanges(planner)(netconf(conf_dir), request(), journal)


def test_a_delegate_requests_attachment_takes_its_interface_attributes() -> None:
    net = chain.load({"cniVersion": "1.0.0", "name": "hot", "type": "bridge"})
    attributes = {"ips": ["10.1.0.5/24"], "mac": "02:00:00:00:00:05", "cni-args": {"k": "v"}}
    att = delegate_attachment(net, "hot1", "pods", attributes, {"bandwidth": {"rate": 1}})
    assert (att.name, att.ifname, att.k8s.origin) == ("hot", "hot1", DELEGATE)
    assert att.runtime_config == {
        "bandwidth": {"rate": 1},
        "ips": ["10.1.0.5/24"],
        "mac": "02:00:00:00:00:05",
    }
    assert ("IP", "10.1.0.5/24") in att.cni_args and ("MAC", "02:00:00:00:00:05") in att.cni_args
    assert att.network.plugins[0]["args"] == {"cni": {"k": "v"}}
    with pytest.raises(InvalidConfig, match="interfaceAttributes"):
        delegate_attachment(net, "hot1", "pods", {"mac": "a;IP=1"}, {})
