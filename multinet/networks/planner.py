"""Plan a container's networks from its pod: the glue between a Cluster and `attachments.build`.

Reads the pod named by CNI_ARGS, its annotations and the NADs they name; the rules
(`attachments`, `selection`, `resolve`) stay pure. They, and `cluster.base`, are imported
when a plan is made: a thin DEL answered by the journal builds a PodPlanner and never
plans (~6 % of its instructions).
"""

from __future__ import annotations

from multinet.cni.errors import CNIError, InvalidConfig, NetworkNotFound, UnknownContainer
from multinet.cni.request import Request
from multinet.config.netconf import NetConf
from multinet.engine.plan import Plan
from multinet.log import log
from multinet.networks import devices

TYPE_CHECKING = False

if TYPE_CHECKING:
    from multinet.cluster.base import Cluster, DeviceSource, Pod
    from multinet.cni.chain import NetworkConfig
    from multinet.networks.resolve import Resolved, Resolver
    from multinet.networks.selection import NetworkSelection


# The warning event of an annotation element's unknown key (the ADD goes on without it).
UNKNOWN_KEY_EVENT = "UnknownNetworkKey"

# A static pod's API object is its mirror pod, whose UID is not the kubelet's K8S_POD_UID.
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
SOURCE_ANNOTATION = "kubernetes.io/config.source"


def is_static(pod: Pod) -> bool:
    """A mirror pod of a static pod (Multus's rule, plus the mirror annotation itself)."""
    source = pod.annotations.get(SOURCE_ANNOTATION)
    return MIRROR_ANNOTATION in pod.annotations or (source is not None and source != "api")


# A pod's opt-out of defaultNetworks: "true" (all of them) or a comma-separated list of
# defaultNetworks entries to skip (Multus issue #1187). The netconf's
# `defaultNetworksOptOut: false` makes defaultNetworks mandatory.
SKIP_DEFAULT_NETWORKS_ANNOTATION = "multinet.dev/skip-default-networks"


def default_networks(conf: NetConf, pod: Pod | None) -> tuple[str, ...]:
    """The defaultNetworks this pod gets: none in systemNamespaces (Multus's meaning of
    it), less those its annotation skips when the netconf allows it."""
    if pod is None:
        return conf.default_networks
    if pod.namespace in conf.system_namespaces:
        return ()
    skip = pod.annotations.get(SKIP_DEFAULT_NETWORKS_ANNOTATION, "").strip()
    if not skip or not conf.default_networks_opt_out:
        return conf.default_networks
    if skip.lower() == "true":
        return ()
    skipped = {s.strip() for s in skip.split(",")}
    return tuple(n for n in conf.default_networks if n not in skipped)


def pod_ref(pod: Pod) -> dict[str, str]:
    return {"namespace": pod.namespace, "name": pod.name, "uid": pod.uid}


def pod_from_ref(ref: dict[str, str]) -> Pod:
    from multinet.cluster.base import Pod

    return Pod(ref["namespace"], ref["name"], ref.get("uid", ""))


class PodPlanner:
    """planner(conf, req) -> Plan, for a cluster source (API server or manifests)."""

    def __init__(self, cluster: Cluster, devices: DeviceSource | None = None) -> None:
        self.cluster = cluster
        self.devices = devices

    def pod(self, req: Request) -> Pod | None:
        namespace, name = req.arg("K8S_POD_NAMESPACE"), req.arg("K8S_POD_NAME")
        if not namespace or not name:
            return None
        uid = req.arg("K8S_POD_UID")
        try:
            pod = self.cluster.get_pod(namespace, name, uid=uid or "")
        except CNIError as e:
            if req.command != "DEL":
                raise
            # DEL without a journal: still remove what the config alone names.
            log.warning("DEL: pod %s/%s unavailable (%s): cluster network only", namespace, name, e)
            return None
        if pod is None:
            if req.command == "DEL":
                return None
            raise UnknownContainer(f"pod {namespace}/{name} not found")
        if uid and pod.uid and uid != pod.uid and not is_static(pod):
            if req.command == "DEL":
                return None  # a new pod of the same name: not ours to plan from
            raise UnknownContainer(
                f"pod {namespace}/{name} has UID {pod.uid} but CNI_ARGS K8S_POD_UID is {uid}: "
                "the pod was deleted and recreated"
            )
        return pod

    def __call__(self, conf: NetConf, req: Request) -> Plan:
        from multinet.networks import attachments
        from multinet.networks.resolve import Resolved, Resolver

        pod = self.pod(req)
        resolver = Resolver(conf, self.cluster)
        try:
            cluster_net, cluster_sel = self._cluster_network(conf, resolver, pod)
            defaults = self._defaults(conf, resolver, default_networks(conf, pod))
            requested = [] if pod is None else self._requested(conf, resolver, pod)
        except NetworkNotFound as e:
            if pod is not None:
                self.cluster.emit_event(pod, "NoNetworkFound", e.msg, warning=True)
            raise
        if pod is not None and req.command == "ADD":
            self.warn_unknown_keys(pod, [cluster_sel, *(sel for sel, _ in requested)])
        # network-status names the cluster network as Multus does: "namespace/name" when
        # it is a NAD (Resolved.name), else its CNI config's name.
        if cluster_net.nad is None:
            cluster_net = Resolved(cluster_net.network.name, cluster_net.network)
        plan = attachments.build(
            cluster_net,
            defaults,
            requested,
            ifname=req.ifname,
            runtime_config=conf.runtime_config,
            cluster_selection=cluster_sel,
            pod=pod_ref(pod) if pod else None,
        )
        return self._with_devices(conf, req, pod, plan)

    def warn_unknown_keys(self, pod: Pod, selections: list[NetworkSelection | None]) -> None:
        """An annotation element's key no one reads (a typo: "interfce") is ignored, as
        Multus ignores it; the user is told by a warning event on the pod."""
        for sel in selections:
            for message in sel.unknown_keys if sel is not None else ():
                log.warning("pod %s: %s", pod.key, message)
                self.cluster.emit_event(pod, UNKNOWN_KEY_EVENT, message, warning=True)

    def _with_devices(self, conf: NetConf, req: Request, pod: Pod | None, plan: Plan) -> Plan:
        """Each attachment whose NAD names a resource gets one of the pod's devices: the
        kubelet is asked once per ADD, and only when some NAD names a resource."""
        if not any(a.k8s.resource_name for a in plan.attachments):
            return plan
        assigned: dict[str, list[str]] = {}
        if devices.needs_devices(plan) and pod is not None:
            if self.devices is None:
                raise InvalidConfig("a NAD names a resource but no device source is configured")
            try:
                assigned = self.devices.for_pod(pod)
            except CNIError as e:
                if req.command != "DEL":
                    raise
                log.warning("DEL: the pod's devices are unknown (%s): none passed", e)
                return plan
        try:
            return devices.assign(plan, assigned, conf.device_info_dir, req.container_id)
        except InvalidConfig:
            if req.command != "DEL":
                raise
            return plan

    def status_networks(self, conf: NetConf) -> list[NetworkConfig]:
        """The networks every pod gets, resolved (what STATUS must find ready)."""
        from multinet.networks.resolve import Resolver

        resolver = Resolver(conf, self.cluster)
        cluster_net, _ = self._cluster_network(conf, resolver, None)
        return [cluster_net.network, *(d.network for d in self._defaults(conf, resolver))]

    @staticmethod
    def _defaults(
        conf: NetConf, resolver: Resolver, names: tuple[str, ...] | None = None
    ) -> list[Resolved]:
        """defaultNetworks (or those `names` of them), after the static delegates when
        they are the networks' source."""
        from multinet.networks.resolve import Resolved

        chosen = conf.default_networks if names is None else names
        defaults = [resolver.reference(r) for r in chosen]
        if not conf.cluster_network:
            defaults = [Resolved(n.name, n) for n in conf.delegates[1:]] + defaults
        return defaults

    def _cluster_network(
        self, conf: NetConf, resolver: Resolver, pod: Pod | None
    ) -> tuple[Resolved, NetworkSelection | None]:
        """The cluster network, and the default-network element that chose it (if any)."""
        from multinet.networks.resolve import Resolved
        from multinet.networks.selection import DEFAULT_NETWORK_ANNOTATION, parse_default_network

        value = pod.annotations.get(DEFAULT_NETWORK_ANNOTATION, "") if pod else ""
        if value.strip() and pod is not None:
            sel = parse_default_network(value, conf.multus_namespace)
            return resolver.nad(sel.namespace, sel.name), sel
        if conf.cluster_network:
            return resolver.reference(conf.cluster_network), None
        if conf.delegates:
            net = conf.delegates[0]
            return Resolved(net.name, net), None
        raise InvalidConfig("no cluster network: set 'clusterNetwork' or 'delegates'")

    def _requested(
        self, conf: NetConf, resolver: Resolver, pod: Pod
    ) -> list[tuple[NetworkSelection, Resolved]]:
        from multinet.networks.selection import NETWORKS_ANNOTATION, parse_networks

        selections = parse_networks(pod.annotations.get(NETWORKS_ANNOTATION, ""), pod.namespace)
        out = []
        for sel in selections:
            self.check_isolation(conf, pod, sel)
            out.append((sel, resolver.nad(sel.namespace, sel.name)))
        return out

    @staticmethod
    def check_isolation(conf: NetConf, pod: Pod, sel: NetworkSelection) -> None:
        if not conf.namespace_isolation or sel.namespace == pod.namespace:
            return
        allowed = conf.global_namespaces or ("default",)
        if sel.namespace not in allowed:
            raise InvalidConfig(
                f"namespace isolation: pod {pod.key} may not use network "
                f"{sel.namespace}/{sel.name}; allowed namespaces are {pod.namespace!r} and "
                f"{', '.join(repr(n) for n in allowed)} (globalNamespaces)"
            )
