"""Build the engine for a configuration: static delegates, or a cluster source."""

from __future__ import annotations

from multinet.attach import Engine
from multinet.cluster.base import Cluster
from multinet.cni.exec import Observer
from multinet.netconf import NetConf


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
    if cluster is None:
        cluster = cluster_for(conf)
    if cluster is None:
        return Engine(conf, observer=observer)
    from multinet.cluster.planner import PodPlanner, PodReporter

    return Engine(conf, PodPlanner(cluster), PodReporter(cluster), observer)
