"""One GC pass (daemon.gc.RuntimeGC.collect) over real journals on disk, the runtime's
answer given: shutdown stops a pass between two sandboxes, and a runtime that does not
list multinetd's own pod is not taken."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from multinet.cluster.runtime import RuntimeSandbox
from multinet.daemon import config
from multinet.daemon.admission import Admission
from multinet.daemon.gc import RuntimeGC
from multinet.daemon.metrics import DaemonMetrics
from multinet.daemon.service import CNIService
from multinet.engine.journal import FileJournalStore, Journal

OWN = RuntimeSandbox("self", "kube-system", "multinet-x", "uid-self", True)


class Listed:
    """The container runtime's answer, as cluster.runtime.RuntimeProcess gives it."""

    socket_path = "/run/containerd/containerd.sock"

    def __init__(self, *sandboxes: RuntimeSandbox) -> None:
        self.listed = list(sandboxes)

    def sandboxes(self) -> list[RuntimeSandbox]:
        return self.listed

    def host_networks(self, sandbox_ids: list[str]) -> dict[str, bool | None]:
        return dict.fromkeys(sandbox_ids, True)

    def close(self) -> None:
        pass


def _gc(
    tmp_path: Path, runtime: Listed, environ: dict[str, str]
) -> tuple[RuntimeGC, FileJournalStore]:
    conf = config.load(
        {"cniDir": str(tmp_path / "state"), "cniConfigDir": str(tmp_path), "gc": True}, environ
    )
    metrics = DaemonMetrics()
    service = CNIService(conf.overrides, metrics)
    store = FileJournalStore(conf.cni_dir)
    gc = RuntimeGC(conf, service, store, metrics, Admission(1, 1, 1.0), runtime=runtime)
    return gc, store


def _gone(store: FileJournalStore, *ids: str) -> None:
    """Journals of pods' sandboxes the runtime no longer has (nothing attached: their DEL
    has no delegate to run), written two hours ago."""
    old = time.time() - 7200
    for cid in ids:
        args = f"K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=pod-{cid}"
        store.save(Journal(cid, "eth0", cni_version="1.0.0", args=args, complete=True))
        os.utime(os.path.join(store.dir, f"{cid}@eth0.json"), (old, old))


POD = {"POD_NAMESPACE": "kube-system", "POD_NAME": "multinet-x"}


def test_shutdown_stops_a_pass_before_its_next_sandbox(tmp_path: Path) -> None:
    gc, store = _gc(tmp_path, Listed(OWN), POD)
    _gone(store, "a", "b")
    stopping = threading.Event()
    stopping.set()  # SIGTERM came as the pass started
    done = gc.collect(stopping)
    assert done.deleted == [] and len(store.keys()) == 2
    done = gc.collect(threading.Event())
    assert sorted(done.deleted) == ["a/eth0", "b/eth0"] and store.keys() == []


def test_a_runtime_without_multinetds_own_pod_is_not_taken(tmp_path: Path) -> None:
    other = RuntimeSandbox("other", "ns9", "pod-other", "uid-other", True)
    gc, store = _gc(tmp_path, Listed(other), POD)
    _gone(store, "a")
    done = gc.collect()
    assert "does not list multinetd's own pod kube-system/multinet-x" in done.skipped
    assert store.keys() == [("a", "eth0")]
    # Not in a pod (no downward API): no own sandbox to look for.
    gc, store = _gc(tmp_path, Listed(other), {})
    assert gc.collect().deleted == ["a/eth0"] and store.keys() == []


def test_one_sandbox_that_fails_oddly_never_stops_the_pass(tmp_path: Path) -> None:
    """A journal whose `pod` is not an object (AttributeError, not a CNIError) is
    counted failed; the next sandbox is still collected."""
    gc, store = _gc(tmp_path, Listed(OWN), POD)
    _gone(store, "a", "b")
    path = os.path.join(store.dir, "a@eth0.json")
    with open(path) as f:
        raw = json.load(f)
    with open(path, "w") as f:
        json.dump({**raw, "pod": ["not", "an", "object"]}, f)
    old = time.time() - 7200
    os.utime(path, (old, old))
    done = gc.collect()
    assert (done.skipped, done.failed, done.deleted) == ("", ["a/eth0"], ["b/eth0"])
    assert gc.metrics.gc_actions.value("sandbox-del", "failed") == 1
