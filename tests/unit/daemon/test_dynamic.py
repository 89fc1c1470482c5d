"""The dynamic-networks controller's queue: what it is told, what it reconciles, how often."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import pytest

from multinet.cluster.base import Pod
from multinet.cni.errors import InvalidConfig, IOFailure, TryAgainLater
from multinet.daemon import config
from multinet.daemon.dynamic import EVERY_POD, DynamicNetworks
from multinet.daemon.lifecycle import Daemon
from multinet.daemon.metrics import DaemonMetrics
from multinet.engine.dynamic import Outcome
from multinet.engine.journal import FileJournalStore, Journal

NETWORKS = "k8s.v1.cni.cncf.io/networks"


def controller(tmp_path: Path, interval: float = 0.2) -> DynamicNetworks:
    return DynamicNetworks(FileJournalStore(str(tmp_path)), None, None, DaemonMetrics(), interval)  # type: ignore[arg-type]


def pod(networks: str | None, **annotations: str) -> Pod:
    if networks is not None:
        annotations[NETWORKS] = networks
    return Pod("ns", "p", "u1", annotations)


def test_only_a_change_of_the_networks_annotation_of_a_running_pod_is_queued(
    tmp_path: Path,
) -> None:
    c = controller(tmp_path)
    c.on_change(None, pod("a"))  # new pod: its ADD reads the annotation
    c.on_change(pod("a"), None)  # deleted: its DEL removes everything
    c.on_change(pod("a"), pod("a", other="x"))  # another annotation
    assert c._due == {}
    c.on_change(pod("a"), pod("a, b"))
    c.on_change(pod(None), pod(""))
    assert list(c._due) == [("ns", "p")]
    c.on_list()
    assert EVERY_POD in c._due


def test_a_pod_is_reconciled_at_most_once_per_interval(tmp_path: Path) -> None:
    c = controller(tmp_path, interval=0.2)
    stop = threading.Event()
    taken: list[float] = []
    started = time.monotonic()
    deadline = started + 1.0
    while time.monotonic() < deadline:
        c.queue(("ns", "p"))  # flapping: queued again and again
        c.queue(("ns", "p"))
        key = c._next(stop)
        assert key == ("ns", "p")
        taken.append(time.monotonic() - started)
    gaps = [b - a for a, b in itertools.pairwise(taken)]
    assert len(taken) <= 7 and all(g >= 0.19 for g in gaps), taken


def test_dynamic_networks_needs_the_api_server() -> None:
    conf = config.load({"dynamicNetworks": True, "generateConfig": False}, {})
    with pytest.raises(InvalidConfig, match="dynamicNetworks needs the API server"):
        Daemon(conf, cluster=None)


# -- reconcile, with a fake of the per-sandbox work ------------------------------------------


class FakeCluster:
    def __init__(self, annotation: str) -> None:
        self.annotation = annotation
        self.events: list[tuple[str, str, bool]] = []

    def get_pod(self, namespace: str, name: str, uid: str = "") -> Pod:
        return pod(self.annotation)

    def emit_event(self, p: Pod, reason: str, message: str, warning: bool = False) -> None:
        self.events.append((reason, message, warning))


def journaled(tmp_path: Path, *pods: tuple[str, str]) -> None:
    store = FileJournalStore(str(tmp_path))
    for i, (namespace, name) in enumerate(pods):
        store.save(
            Journal(f"c{i}", "eth0", pod={"namespace": namespace, "name": name}, complete=True)
        )


def test_reconcile_backs_off_rejects_once_per_value_and_fans_out_after_a_list(
    tmp_path: Path,
) -> None:
    journaled(tmp_path, ("ns", "p"), ("ns", "q"))
    results: list[object] = [TryAgainLater("API away"), TryAgainLater("API away")]
    seen: list[str] = []

    def apply(journal: Journal) -> Outcome | None:
        seen.append(journal.container_id)
        result = results.pop(0) if results else Outcome()
        if isinstance(result, Exception):
            raise result
        assert isinstance(result, Outcome)
        return result

    cluster = FakeCluster("nosuch")
    c = DynamicNetworks(FileJournalStore(str(tmp_path)), None, cluster, DaemonMetrics(), 0.2, apply)  # type: ignore[arg-type]
    for failures in (1, 2):  # doubling from the interval: 0.4 s, then 0.8 s
        c._due.clear()
        started = time.monotonic()
        c.reconcile("ns", "p")
        assert c._failures == {("ns", "p"): failures}
        assert c._due[("ns", "p")] - started >= 0.2 * 2**failures
    c.reconcile("ns", "p")  # succeeds: the back-off is forgotten
    assert c._failures == {} and seen == ["c0", "c0", "c0"]

    results[:] = [InvalidConfig("NetworkAttachmentDefinition ns/nosuch not found")] * 2
    c.reconcile("ns", "p")
    c.reconcile("ns", "p")  # the same value again: one warning only
    assert [(r, w) for r, _, w in cluster.events] == [("NetworkChangeRejected", True)]
    assert "ns/nosuch not found" in cluster.events[0][1]
    c._due.clear()
    c.on_nad(None, None)  # a NAD came: the rejected pod is tried again
    assert list(c._due) == [("ns", "p")]

    c._due.clear()
    c.reconcile(*EVERY_POD)  # after a list: every pod with a journal
    assert sorted(c._due) == [("ns", "p"), ("ns", "q")]
    c.on_change(pod("a"), None)  # deleted: forgotten
    assert ("ns", "p") not in c._rejected and ("ns", "p") not in c._last


def test_a_successful_add_queues_its_pod(tmp_path: Path) -> None:
    c = controller(tmp_path)
    c.added({"CNI_COMMAND": "DEL", "CNI_ARGS": "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p"})
    assert c._due == {}
    c.added(
        {"CNI_COMMAND": "ADD", "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p"}
    )
    assert list(c._due) == [("ns", "p")]


def test_a_disk_error_is_retried_and_a_pod_without_journal_is_forgotten(tmp_path: Path) -> None:
    journaled(tmp_path, ("ns", "p"))
    seen: list[str] = []

    def apply(journal: Journal) -> Outcome | None:
        seen.append(journal.container_id)
        raise IOFailure("cannot write journal", "No space left on device")

    cluster = FakeCluster("a")
    c = DynamicNetworks(FileJournalStore(str(tmp_path)), None, cluster, DaemonMetrics(), 0.2, apply)  # type: ignore[arg-type]
    c.reconcile("ns", "p")
    assert c._failures == {("ns", "p"): 1} and cluster.events == []  # retried, not rejected
    c._failures[("ns", "other")] = 3
    c.reconcile("ns", "other")  # no sandbox of it here
    assert ("ns", "other") not in c._failures
    # After a CNI ADD the named sandbox is loaded directly (no scan).
    c.added(
        {
            "CNI_COMMAND": "ADD",
            "CNI_CONTAINERID": "c0",
            "CNI_IFNAME": "eth0",
            "CNI_ARGS": "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p",
        }
    )
    assert c._hints == {("ns", "p"): ("c0", "eth0")}
    c.reconcile("ns", "p")
    assert c._hints == {} and seen == ["c0", "c0"]


class OwnNetconf:
    def own_netconf(self, cni_version: str) -> dict[str, object]:
        return {"cniVersion": "1.0.0", "name": "multinet", "type": "multinet"}


@pytest.mark.parametrize(
    "netconf",
    [
        {"cniVersion": "1.0.0", "name": "x"},  # no longer loads: no type
        {"cniVersion": "1.0.0", "name": "x", "type": "multinet", "delegates": [{"type": "b"}]},
    ],
    ids=["unloadable", "static delegates"],
)
def test_a_sandbox_whose_netconf_cannot_name_its_pods_networks_is_left_alone(
    tmp_path: Path, netconf: dict[str, object]
) -> None:
    c = DynamicNetworks(FileJournalStore(str(tmp_path)), OwnNetconf(), None, DaemonMetrics())  # type: ignore[arg-type]
    journal = Journal("c0", "eth0", pod={"namespace": "ns", "name": "p"}, netconf=netconf)
    assert c._reconcile_one(journal) is None  # nothing to do, no engine built
