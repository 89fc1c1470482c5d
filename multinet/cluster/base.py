"""The one interface between the engine and wherever pods and NADs live.

Implementations: `rest.RestCluster` and `kube.KubeCluster` (the API server, through
the standard library or the kubernetes client; both `api.ApiCluster`),
`manifests.ManifestCluster` (a directory of YAML), and the daemon's watch-backed cache.
Failures are CNIErrors: TryAgainLater (code 11) for transient ones (connection
refused, timeout, 5xx, 429), ClusterError for permanent ones (403, malformed objects).
"""

from __future__ import annotations

from collections.abc import Mapping

from multinet.record import field, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Protocol
else:
    Protocol = object  # the protocols are mypy's: at run time, plain classes

# The annotation a Cluster's set_network_status writes (the NPWG network-status).
STATUS_ANNOTATION = "k8s.v1.cni.cncf.io/network-status"


@record(frozen=True)
class Pod:
    namespace: str
    name: str
    uid: str
    annotations: Mapping[str, str] = field(default_factory=dict)
    node_name: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@record(frozen=True)
class NAD:
    """A NetworkAttachmentDefinition; `config` is spec.config ('' when the spec is empty)."""

    namespace: str
    name: str
    config: str = ""
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


class Cluster(Protocol):
    def get_pod(self, namespace: str, name: str, uid: str = "") -> Pod | None:
        """The pod, or None when it does not exist. `uid` is the UID the caller expects:
        a source that may hold a stale copy (the daemon's cache) reads the pod afresh
        when its copy has another one (a pod deleted and recreated under the same name,
        as a StatefulSet does, before the watch told the cache)."""
        ...

    def get_nad(self, namespace: str, name: str) -> NAD | None:
        """The NAD, or None when it does not exist."""
        ...

    def set_network_status(self, pod: Pod, status: list[dict[str, Any]]) -> None:
        """Write the network-status annotation; fails if the pod's UID changed."""
        ...

    def emit_event(self, pod: Pod, reason: str, message: str, warning: bool = False) -> None:
        """Best effort: an event on the pod (failures are logged, never raised)."""
        ...


class DeviceSource(Protocol):
    """The kubelet's device assignments (cluster.podresources.KubeletDevices)."""

    def for_pod(self, pod: Pod) -> dict[str, list[str]]:
        """{resource name: device IDs} assigned to the pod's containers."""
        ...
