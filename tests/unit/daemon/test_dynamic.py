"""The dynamic-networks controller's queue: what it is told, what it reconciles, how often."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import pytest

from multinet.cluster.base import Pod
from multinet.cni.errors import InvalidConfig
from multinet.daemon import config
from multinet.daemon.dynamic import EVERY_POD, DynamicNetworks
from multinet.daemon.lifecycle import Daemon
from multinet.daemon.metrics import DaemonMetrics

NETWORKS = "k8s.v1.cni.cncf.io/networks"


def controller(tmp_path: Path, interval: float = 0.2) -> DynamicNetworks:
    return DynamicNetworks(str(tmp_path), None, None, DaemonMetrics(), interval)  # type: ignore[arg-type]


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
