"""The dynamic-networks controller: what it queues, what it reconciles, how it retries
(the queue's own limits: test_workqueue)."""

from __future__ import annotations

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
    assert c.queue.pending() == []
    c.on_change(pod("a"), pod("a, b"))
    c.on_change(pod(None), pod(""))
    assert c.queue.pending() == [("ns", "p")]
    c.on_list()
    assert EVERY_POD in c.queue.pending()


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


def next_key(c: DynamicNetworks) -> object:
    """What the worker takes next (waiting for it), marked done."""
    key = c.queue.get()
    assert key is not None
    c.queue.done(key)
    return key


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
    store = FileJournalStore(str(tmp_path))
    c = DynamicNetworks(store, None, cluster, DaemonMetrics(), 0.05, apply)  # type: ignore[arg-type]
    for failures in (1, 2):  # doubling from the interval: 0.1 s, then 0.2 s
        started = time.monotonic()
        c.reconcile("ns", "p")
        assert c.queue.num_requeues(("ns", "p")) == failures
        due = c.queue.when(("ns", "p"))
        assert due is not None and due - started >= 0.05 * 2**failures
        assert next_key(c) == ("ns", "p")  # when the worker takes it
    c.reconcile("ns", "p")  # succeeds: the back-off is forgotten
    assert c.queue.num_requeues(("ns", "p")) == 0 and seen == ["c0", "c0", "c0"]

    results[:] = [InvalidConfig("NetworkAttachmentDefinition ns/nosuch not found")] * 2
    c.reconcile("ns", "p")
    c.reconcile("ns", "p")  # the same value again: one warning only
    assert [(r, w) for r, _, w in cluster.events] == [("NetworkChangeRejected", True)]
    assert "ns/nosuch not found" in cluster.events[0][1]
    assert c.queue.pending() == []
    c.on_nad(None, None)  # a NAD came: the rejected pod is tried again
    assert c.queue.pending() == [("ns", "p")]
    assert next_key(c) == ("ns", "p")

    c.reconcile(*EVERY_POD)  # after a list: every pod with a journal
    assert sorted(c.queue.pending()) == [("ns", "p"), ("ns", "q")]
    c.queue.add_rate_limited(("ns", "p"))
    c.on_change(pod("a"), None)  # deleted: forgotten (its back-off, its rejection)
    assert c.queue.num_requeues(("ns", "p")) == 0
    assert {next_key(c), next_key(c)} == {("ns", "p"), ("ns", "q")}
    c.on_nad(None, None)
    assert c.queue.pending() == []  # no longer a rejected pod to try again


def test_a_successful_add_queues_its_pod(tmp_path: Path) -> None:
    c = controller(tmp_path)
    c.added({"CNI_COMMAND": "DEL", "CNI_ARGS": "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p"})
    assert c.queue.pending() == []
    c.added(
        {"CNI_COMMAND": "ADD", "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p"}
    )
    assert c.queue.pending() == [("ns", "p")]


def test_a_disk_error_is_retried_and_a_pod_without_journal_is_forgotten(tmp_path: Path) -> None:
    journaled(tmp_path, ("ns", "p"), ("ns", "p"))  # two sandboxes of one pod: c0, c1
    seen: list[str] = []

    def apply(journal: Journal) -> Outcome | None:
        seen.append(journal.container_id)
        raise IOFailure("cannot write journal", "No space left on device")

    cluster = FakeCluster("a")
    c = DynamicNetworks(FileJournalStore(str(tmp_path)), None, cluster, DaemonMetrics(), 0.2, apply)  # type: ignore[arg-type]
    c.reconcile("ns", "p")
    assert c.queue.num_requeues(("ns", "p")) == 1 and cluster.events == []  # retried
    assert seen == ["c0", "c1"]
    for _ in range(3):
        c.queue.add_rate_limited(("ns", "other"))
    c.reconcile("ns", "other")  # no sandbox of it here
    assert c.queue.num_requeues(("ns", "other")) == 0
    # After a CNI ADD the sandbox it named is loaded directly (no scan), once.
    c.added(
        {
            "CNI_COMMAND": "ADD",
            "CNI_CONTAINERID": "c1",
            "CNI_IFNAME": "eth0",
            "CNI_ARGS": "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p",
        }
    )
    c.reconcile("ns", "p")
    assert seen == ["c0", "c1", "c1"]
    c.reconcile("ns", "p")
    assert seen == ["c0", "c1", "c1", "c0", "c1"]


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
    # OwnNetconf cannot build an engine: a reconcile that tried would raise.
    store = FileJournalStore(str(tmp_path))
    c = DynamicNetworks(store, OwnNetconf(), None, DaemonMetrics())  # type: ignore[arg-type]
    store.save(Journal("c0", "eth0", pod={"namespace": "ns", "name": "p"}, netconf=netconf))
    c.reconcile("ns", "p")
    assert c.queue.pending() == [] and c.queue.num_requeues(("ns", "p")) == 0
