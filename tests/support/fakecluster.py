"""An in-memory `Cluster` (multinet.cluster.base) for unit tests.

Holds pods and NADs in dicts and records every network-status write and every event,
so tests can assert on exactly what the engine told the cluster. Like the real
sources, `set_network_status` fails when the pod is gone or its UID changed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from multinet.cluster.base import NAD, Pod
from multinet.cni.errors import ClusterError, CNIError


@dataclass(frozen=True)
class Event:
    pod: str  # "namespace/name"
    reason: str
    message: str
    warning: bool


class FakeCluster:
    def __init__(self, pods: tuple[Pod, ...] = (), nads: tuple[NAD, ...] = ()) -> None:
        self.pods: dict[tuple[str, str], Pod] = {}
        self.nads: dict[tuple[str, str], NAD] = {}
        self.statuses: list[tuple[str, list[dict[str, Any]]]] = []  # (pod key, status)
        self.events: list[Event] = []
        self.lookups: list[tuple[str, str, str]] = []  # ("pod"|"nad", namespace, name)
        self.status_error: CNIError | None = None  # raised by the next status writes
        for pod in pods:
            self.add_pod(pod)
        for nad in nads:
            self.add_nad(nad)

    def add_pod(self, pod: Pod) -> Pod:
        self.pods[(pod.namespace, pod.name)] = pod
        return pod

    def add_nad(self, nad: NAD) -> NAD:
        self.nads[(nad.namespace, nad.name)] = nad
        return nad

    # -- the Cluster protocol ---------------------------------------------------------------

    def get_pod(self, namespace: str, name: str, uid: str = "") -> Pod | None:
        self.lookups.append(("pod", namespace, name))
        return self.pods.get((namespace, name))

    def get_nad(self, namespace: str, name: str) -> NAD | None:
        self.lookups.append(("nad", namespace, name))
        return self.nads.get((namespace, name))

    def set_network_status(self, pod: Pod, status: list[dict[str, Any]]) -> None:
        if self.status_error is not None:
            raise self.status_error
        current = self.pods.get((pod.namespace, pod.name))
        if current is None:
            raise ClusterError(f"pod {pod.key} not found")
        if pod.uid and current.uid and pod.uid != current.uid:
            raise ClusterError(f"pod {pod.key} has UID {current.uid}, not {pod.uid}")
        self.statuses.append((pod.key, copy.deepcopy(status)))

    def emit_event(self, pod: Pod, reason: str, message: str, warning: bool = False) -> None:
        self.events.append(Event(pod.key, reason, message, warning))

    # -- conveniences for assertions ----------------------------------------------------------

    def status_of(self, namespace: str, name: str) -> list[dict[str, Any]] | None:
        """The last network-status written for the pod, or None."""
        written = [status for key, status in self.statuses if key == f"{namespace}/{name}"]
        return written[-1] if written else None
