"""The composition root of the `multinet` executable, multinetd and multinetctl: the
engine on this host, and the verbs over it with static delegates or a cluster source."""

from __future__ import annotations

from multinet.cluster.apiserver import ApiServer, api_cluster
from multinet.cni.exec import Observer
from multinet.config.netconf import NetConf
from multinet.engine.delegates import ChainExecutor
from multinet.engine.engine import Engine
from multinet.engine.gate import HostGate
from multinet.engine.journal import FileJournalStore
from multinet.engine.multus_cache import MULTUS_CNI_DIR, MultusCache
from multinet.engine.netns import HostNetns
from multinet.engine.releases import FileReleaseStore
from multinet.meta.verbs import Verbs

TYPE_CHECKING = False

if TYPE_CHECKING:  # cluster.base's dataclasses: not imported by a DEL
    from multinet.cluster.api import ApiCluster
    from multinet.cluster.base import Cluster, DeviceSource
    from multinet.meta.dynamic import Dynamic


def cluster_for(conf: NetConf, shim_fallback: bool = False) -> Cluster | None:
    """The source the netconf names: the API server (kubeconfig), manifests, or none.
    `shim_fallback`: the call is multinet-shim's in-process fallback (ApiServer's
    `retry_credentials`)."""
    if conf.manifests:
        from multinet.cluster.manifests import ManifestCluster

        return ManifestCluster(conf.manifests, conf.cni_dir)
    if conf.kubeconfig or conf.cluster_network:
        return ApiServer(conf.kubeconfig, conf.cni_dir, retry_credentials=shim_fallback)
    return None


def api_for(kubeconfig: str, state_dir: str) -> ApiCluster:
    """The API server's client for multinetctl's reads (the same as thin mode's)."""
    return api_cluster(kubeconfig, state_dir)


def devices_for(conf: NetConf) -> DeviceSource:
    """The kubelet's device assignments at the netconf's paths. Nothing is read until a
    NAD names a resource; thin mode makes one per ADD (one gRPC channel, one call)."""
    from multinet.cluster.podresources import KubeletDevices

    return KubeletDevices(conf.pod_resources_socket, conf.device_checkpoint)


def engine_for(conf: NetConf, observer: Observer | None = None) -> Engine:
    """The engine on this host: the journal under cniDir, the kernel, the real plugins."""
    return Engine(
        conf,
        store=FileJournalStore(conf.cni_dir),
        pod_netns=HostNetns(),
        executor=ChainExecutor(root=conf.raw.get("hostRoot", "")),
        observer=observer,
        # Pods Multus attached before the switch: its cache under our cniDir (a Multus
        # user's cniDir kept as is) or under Multus's default.
        legacy=MultusCache((conf.cni_dir, MULTUS_CNI_DIR)),
        # The releases a DEL skips, for multinetd's GC to retry; the gate its CNI GC holds.
        releases=FileReleaseStore(conf.cni_dir),
        gate=HostGate(conf.cni_dir),
    )


def verbs_for(
    conf: NetConf,
    cluster: Cluster | None = None,
    observer: Observer | None = None,
    devices: DeviceSource | None = None,
) -> Verbs:
    """The verbs for a netconf: its cluster source's planner and reporter, or the static
    delegates. `devices` is the daemon's long-lived PodResources client; thin mode gets
    its own."""
    engine = engine_for(conf, observer)
    if cluster is None:
        cluster = cluster_for(conf)
    if cluster is None:
        return Verbs(engine)
    from multinet.networks.planner import PodPlanner
    from multinet.networks.reporter import PodReporter

    return Verbs(engine, PodPlanner(cluster, devices or devices_for(conf)), PodReporter(cluster))


def dynamic_for(verbs: Verbs) -> Dynamic:
    """Changes of running pods' networks with these verbs' engine, planner and reporter:
    the pod's annotation is read from their cluster source (none: nothing to read)."""
    from multinet.meta.dynamic import Dynamic  # the daemon's only: not on thin's path
    from multinet.networks.dynamic import PodChanges
    from multinet.networks.planner import PodPlanner
    from multinet.networks.reporter import PodReporter

    planner = verbs.planner if isinstance(verbs.planner, PodPlanner) else None
    reporter = verbs.reporter if isinstance(verbs.reporter, PodReporter) else None
    changes = PodChanges(planner) if planner is not None else None
    return Dynamic(verbs.engine, changes, reporter)
