"""Build the engine for a configuration: its seams, and static delegates or a cluster source."""

from __future__ import annotations

from multinet.cluster.base import Cluster, DeviceSource
from multinet.cni.exec import Observer
from multinet.config.netconf import NetConf
from multinet.engine.delegates import ChainExecutor
from multinet.engine.engine import Engine, Planner, Reporter, StatusNetworks, default_planner
from multinet.engine.journal import FileJournalStore
from multinet.engine.netns import HostNetns


def cluster_for(conf: NetConf) -> Cluster | None:
    """The source the netconf names: the API server (kubeconfig), manifests, or none."""
    if conf.manifests:
        from multinet.cluster.manifests import ManifestCluster

        return ManifestCluster(conf.manifests, conf.cni_dir)
    if conf.kubeconfig or conf.cluster_network:
        from multinet.cluster.kube import KubeCluster

        return KubeCluster(conf.kubeconfig, state_dir=conf.cni_dir)
    return None


def devices_for(conf: NetConf) -> DeviceSource:
    """The kubelet's device assignments at the netconf's paths. Nothing is read until a
    NAD names a resource; thin mode makes one per ADD (one gRPC channel, one call)."""
    from multinet.cluster.podresources import KubeletDevices

    return KubeletDevices(conf.pod_resources_socket, conf.device_checkpoint)


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
        executor=ChainExecutor(),
        planner=planner,
        reporter=reporter,
        observer=observer,
        status_networks=status_networks,
    )
