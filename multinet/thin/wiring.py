"""Build the engine for a configuration: its seams, and static delegates or a cluster source."""

from __future__ import annotations

from multinet.cluster.base import Cluster
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


def engine_for(
    conf: NetConf, cluster: Cluster | None = None, observer: Observer | None = None
) -> Engine:
    """The engine on this host: the journal under cniDir, the kernel, the real plugins."""
    if cluster is None:
        cluster = cluster_for(conf)
    planner: Planner = default_planner
    reporter: Reporter | None = None
    status_networks: StatusNetworks | None = None
    if cluster is not None:
        from multinet.networks.planner import PodPlanner
        from multinet.networks.reporter import PodReporter

        pod_planner = PodPlanner(cluster)
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
    )
