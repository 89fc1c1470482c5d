"""A pod's selections -> the engine's attachments: order, interface names, runtime values.

Pure logic over data: the pod planner resolves the networks, this decides how each is
attached (Multus's rules: cluster network on CNI_IFNAME, then defaultNetworks, then the
annotation's networks as net1, net2, ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from ipaddress import ip_address

from multinet.cni.chain import NetworkConfig
from multinet.cni.errors import InvalidConfig
from multinet.engine.plan import (
    ANNOTATION,
    CLUSTER,
    DEFAULT_NETWORKS,
    Attachment,
    Passengers,
    Plan,
    check_unique_ifnames,
    pod_wide,
    secondary_ifname,
)
from multinet.networks.resolve import Resolved
from multinet.networks.selection import NetworkSelection
from multinet.record import replace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# A NAD annotation that turns source routing on for every pod using the NAD.
SOURCE_ROUTING_ANNOTATION = "multinet.dev/source-routing"
# A NAD annotation naming the device-plugin resource each of its attachments needs.
RESOURCE_ANNOTATION = "k8s.v1.cni.cncf.io/resourceName"


def _nad_flag(res: Resolved, annotation: str) -> bool:
    return res.nad is not None and res.nad.annotations.get(annotation, "").lower() == "true"


def resource_name(res: Resolved) -> str:
    """The device-plugin resource the NAD needs a device of ('' for none)."""
    if res.nad is None:
        return ""
    return res.nad.annotations.get(RESOURCE_ANNOTATION, "").strip()


def runtime_values(sel: NetworkSelection) -> dict[str, Any]:
    """Selection fields that reach the delegate as runtimeConfig (capability-filtered later)."""
    rc: dict[str, Any] = {}
    if sel.ips:
        rc["ips"] = list(sel.ips)
    if sel.mac:
        rc["mac"] = sel.mac
    if sel.infiniband_guid:
        rc["infinibandGUID"] = sel.infiniband_guid
    if sel.port_mappings is not None:
        rc["portMappings"] = sel.port_mappings
    if sel.bandwidth is not None:
        rc["bandwidth"] = sel.bandwidth
    if sel.device_id:
        rc["deviceID"] = sel.device_id
    return rc


def cni_args(sel: NetworkSelection) -> tuple[tuple[str, str], ...]:
    """Multus also passes `ips` and `mac` as CNI_ARGS IP= and MAC= (with IgnoreUnknown):
    the static IPAM and the reference plugins read them, so a NAD that declares no
    `ips`/`mac` capability still gets them."""
    if not sel.ips and not sel.mac:
        return ()
    pairs = [("IgnoreUnknown", "true")]
    if sel.mac:
        pairs.append(("MAC", sel.mac))
    if sel.ips:
        pairs.append(("IP", ",".join(sel.ips)))
    return tuple(pairs)


def with_selection(net: NetworkConfig, sel: NetworkSelection) -> NetworkConfig:
    """`cni-args` merge into every plugin's args.cni; a deviceID goes top-level too."""
    if not sel.cni_args and not sel.device_id:
        return net
    plugins = []
    for p in net.plugins:
        p = dict(p)
        if sel.cni_args:
            args = dict(p.get("args") or {})
            args["cni"] = {**(args.get("cni") or {}), **sel.cni_args}
            p["args"] = args
        if sel.device_id:
            p["deviceID"] = sel.device_id
            p["pciBusID"] = sel.device_id
        plugins.append(p)
    return replace(net, plugins=tuple(plugins))


def check_default_routes(requested: Sequence[tuple[NetworkSelection, Any]]) -> dict[int, str]:
    """At most one IPv4 and one IPv6 default-route gateway across all networks."""
    chosen: dict[int, tuple[str, str]] = {}
    for sel, _ in requested:
        for gw in sel.default_route:
            family = ip_address(gw).version
            if family in chosen:
                raise InvalidConfig(
                    f"default-route: IPv{family} gateway {gw} of network "
                    f"{sel.namespace}/{sel.name} conflicts with {chosen[family][1]} of "
                    f"{chosen[family][0]}: only one IPv{family} default route is possible"
                )
            chosen[family] = (f"{sel.namespace}/{sel.name}", gw)
    return {family: gw for family, (_, gw) in chosen.items()}


def interfaces(
    cluster: tuple[str, str],
    defaults: Sequence[str],
    requested: Sequence[tuple[str, NetworkSelection]],
) -> list[tuple[str, str]]:
    """(network, interface) of every attachment, in order: the cluster network on its
    interface (CNI_IFNAME), then defaultNetworks and the annotation's networks as
    net<position> unless an element names its own (Multus's rule). An interface named
    twice is refused."""
    out = [cluster]
    out += [(name, secondary_ifname(len(out) + i)) for i, name in enumerate(defaults)]
    for name, sel in requested:
        out.append((name, sel.interface or secondary_ifname(len(out))))
    check_unique_ifnames(out)
    return out


def check_selections(
    selections: Sequence[NetworkSelection],
    *,
    cluster: tuple[str, str],
    defaults: Sequence[str] = (),
) -> None:
    """What `build` refuses of a pod's annotation before any NAD is read (for
    `multinetctl annotation validate`): two default routes of one family, an interface
    named twice."""
    check_default_routes([(sel, None) for sel in selections])
    interfaces(cluster, defaults, [(f"{s.namespace}/{s.name}", s) for s in selections])


def selected(
    sel: NetworkSelection, res: Resolved, ifname: str, shared: Mapping[str, Any]
) -> Attachment:
    """The attachment of one networks-annotation element, on `ifname`, with the pod-wide
    runtime values `shared` under the element's own."""
    return Attachment(
        name=res.name,
        network=with_selection(res.network, sel),
        ifname=ifname,
        runtime_config={**shared, **runtime_values(sel)},
        default_route=tuple(sel.default_route),
        drop_default_routes=sel.no_default_route,
        source_routing=sel.source_routing or _nad_flag(res, SOURCE_ROUTING_ANNOTATION),
        cni_args=cni_args(sel),
        k8s=Passengers(ANNOTATION, resource_name(res), sel.device_id or ""),
    )


def build(
    cluster: Resolved,
    defaults: Sequence[Resolved],
    requested: Sequence[tuple[NetworkSelection, Resolved]],
    *,
    ifname: str,
    runtime_config: Mapping[str, Any],
    pod: Mapping[str, str] | None = None,
    cluster_selection: NetworkSelection | None = None,
) -> Plan:
    """Cluster network on CNI_IFNAME, then defaultNetworks, then the pod's networks.

    Secondary interfaces are named net<position> unless the selection names one. A
    default-network annotation element (`cluster_selection`) gives the cluster
    network its runtime values, as a networks element does for its network.
    """
    gateways = check_default_routes(requested)
    ifnames = [
        i
        for _, i in interfaces(
            (cluster.name, ifname), [d.name for d in defaults], [(r.name, s) for s, r in requested]
        )
    ]
    cluster_net, cluster_rc = cluster.network, dict(runtime_config)
    if cluster_selection is not None:
        cluster_net = with_selection(cluster_net, cluster_selection)
        cluster_rc.update(runtime_values(cluster_selection))
    atts = [
        Attachment(
            name=cluster.name,
            network=cluster_net,
            ifname=ifname,
            runtime_config=cluster_rc,
            default=True,
            replaced_default_routes=tuple(sorted(gateways)),
            k8s=Passengers(
                CLUSTER,
                resource_name(cluster),
                (cluster_selection.device_id or "") if cluster_selection else "",
            ),
        )
    ]
    # As in Multus, every network gets the runtime's pod-wide values (port mappings,
    # bandwidth: capability-filtered later), with the selection's own values over them.
    shared = pod_wide(runtime_config)
    for d in defaults:
        atts.append(
            Attachment(
                d.name,
                d.network,
                ifnames[len(atts)],
                dict(shared),
                k8s=Passengers(DEFAULT_NETWORKS, resource_name(d)),
            )
        )
    for sel, res in requested:
        atts.append(selected(sel, res, ifnames[len(atts)], shared))
    return Plan(tuple(atts), dict(pod or {}))
