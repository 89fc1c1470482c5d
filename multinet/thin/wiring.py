"""Build the engine for a configuration: its seams, and static delegates or a cluster source."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from multinet.cluster.base import NAD, Cluster, DeviceSource, Pod
from multinet.cni.exec import Observer
from multinet.config.netconf import NetConf
from multinet.engine.delegates import ChainExecutor
from multinet.engine.engine import Engine, Planner, Reporter, StatusNetworks, default_planner
from multinet.engine.journal import FileJournalStore
from multinet.engine.multus_cache import MULTUS_CNI_DIR, MultusCache
from multinet.engine.netns import HostNetns
from multinet.networks import dhcp

if TYPE_CHECKING:
    from multinet.cluster.api import ApiCluster
    from multinet.engine.hotplug import Hotplug


def cluster_for(conf: NetConf) -> Cluster | None:
    """The source the netconf names: the API server (kubeconfig), manifests, or none."""
    if conf.manifests:
        from multinet.cluster.manifests import ManifestCluster

        return ManifestCluster(conf.manifests, conf.cni_dir)
    if conf.kubeconfig or conf.cluster_network:
        return ApiServer(conf.kubeconfig, conf.cni_dir)
    return None


def devices_for(conf: NetConf) -> DeviceSource:
    """The kubelet's device assignments at the netconf's paths. Nothing is read until a
    NAD names a resource; thin mode makes one per ADD (one gRPC channel, one call)."""
    from multinet.cluster.podresources import KubeletDevices

    return KubeletDevices(conf.pod_resources_socket, conf.device_checkpoint)


class ApiServer:
    """The API server as a Cluster, its client picked and built on first use: a DEL the
    journal answers reads no kubeconfig (nor PyYAML for one) and imports no client."""

    def __init__(self, kubeconfig: str, state_dir: str) -> None:
        self.kubeconfig, self.state_dir = kubeconfig, state_dir
        self._client: ApiCluster | None = None

    @property
    def client(self) -> ApiCluster:
        if self._client is None:
            self._client = api_cluster(self.kubeconfig, self.state_dir)
        return self._client

    def get_pod(self, namespace: str, name: str, uid: str = "") -> Pod | None:
        return self.client.get_pod(namespace, name, uid)

    def get_nad(self, namespace: str, name: str) -> NAD | None:
        return self.client.get_nad(namespace, name)

    def set_network_status(self, pod: Pod, status: list[dict[str, Any]]) -> None:
        self.client.set_network_status(pod, status)

    def emit_event(self, pod: Pod, reason: str, message: str, warning: bool = False) -> None:
        self.client.emit_event(pod, reason, message, warning)

    def close(self) -> None:
        """Close the client's connection, if a client was built."""
        if self._client is not None:
            self._client.close()


def api_cluster(kubeconfig: str, state_dir: str) -> ApiCluster:
    """The API server through the standard-library client (`cluster.rest`, ~20 ms of
    imports), or through the official client (~600 ms) for the kubeconfig forms only it
    implements: exec plugins, auth-provider, basic auth, proxy-url, tls-server-name."""
    from multinet.cluster.kubeconfig import needs_full_client

    if needs_full_client(kubeconfig):
        from multinet.cluster.kube import KubeCluster  # the fallback: lazily, see pyproject

        return KubeCluster(kubeconfig, state_dir=state_dir)
    from multinet.cluster.rest import RestCluster

    return RestCluster(kubeconfig, state_dir=state_dir)


def engine_for(
    conf: NetConf,
    cluster: Cluster | None = None,
    observer: Observer | None = None,
    devices: DeviceSource | None = None,
) -> Engine:
    """The engine on this host: the journal under cniDir, the kernel, the real plugins.
    `devices` is the daemon's long-lived PodResources client; thin mode gets its own."""
    if cluster is None:
        cluster = cluster_for(conf)
    planner: Planner = default_planner
    reporter: Reporter | None = None
    status_networks: StatusNetworks | None = None
    if cluster is not None:
        from multinet.networks.planner import PodPlanner
        from multinet.networks.reporter import PodReporter

        pod_planner = PodPlanner(cluster, devices or devices_for(conf))
        planner, reporter = pod_planner, PodReporter(cluster)
        status_networks = pod_planner.status_networks
    return Engine(
        conf,
        store=FileJournalStore(conf.cni_dir),
        pod_netns=HostNetns(),
        executor=ChainExecutor(root=conf.raw.get("hostRoot", "")),
        planner=planner,
        reporter=reporter,
        observer=observer,
        status_networks=status_networks,
        # Pods Multus attached before the switch: its cache under our cniDir (a Multus
        # user's cniDir kept as is) or under Multus's default.
        legacy=MultusCache((conf.cni_dir, MULTUS_CNI_DIR)),
        # A plan with dhcp IPAM needs its client daemon: refused at once without it.
        preflight=functools.partial(dhcp.check, root=conf.raw.get("hostRoot", "")),
        # ...and a server: its ADD waits dhcpTimeout for the lease, then "try again later".
        add_bound=dhcp.bound,
    )


def hotplug_for(engine: Engine) -> Hotplug:
    """Changes of running pods' networks with this engine, its planner and its reporter:
    the pod's annotation is read from the engine's cluster source (none: nothing to read)."""
    from multinet.engine.hotplug import Hotplug  # the daemon's only: not on thin's path
    from multinet.networks.dynamic import PodChanges
    from multinet.networks.planner import PodPlanner
    from multinet.networks.reporter import PodReporter

    planner = engine.planner if isinstance(engine.planner, PodPlanner) else None
    reporter = engine.reporter if isinstance(engine.reporter, PodReporter) else None
    return Hotplug(engine, PodChanges(planner) if planner is not None else None, reporter)
