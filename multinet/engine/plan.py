"""What the engine runs: the attachments of one container, in order.

Pure data. Each attachment names its network config, its interface in the pod and the
runtime values to inject; the default-route fields are typed here and carried into the
journal by one conversion (`journal.Entry.planned`, which derives what it copies from
the two records' fields), so that the plan, the journal and network-status agree on them
by type, not by dict key. What only the Kubernetes network model reads (where a network
came from, its device) rides along in one record, `Passengers`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from multinet.cni.chain import NetworkConfig
from multinet.cni.errors import InvalidConfig
from multinet.record import field, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NamedTuple
else:
    from multinet.record import NamedTuple

# Where an attachment came from, which decides what a change of the pod's networks
# annotation may remove (docs/dynamic-networks.md): the cluster network and defaultNetworks
# never; the annotation's networks when they leave it; a Multus /delegate request's only
# by another such request. "" is a journal written before origins were recorded: kept.
CLUSTER = "cluster"
DEFAULT_NETWORKS = "defaultNetworks"
ANNOTATION = "annotation"
DELEGATE = "delegate"
REMOVABLE = frozenset({ANNOTATION})


class Passengers(NamedTuple):
    """What the Kubernetes network model (networks/: attachments, devices, dynamic,
    reporter) records of an attachment and reads back from its journal entry. The engine
    carries it from plan to journal without reading it (it is defined here, not in
    networks/, because the engine, below networks/, must store and load it). Not a
    dataclass: a NamedTuple is cheaper to define and create, which every thin call pays."""

    origin: str = ""  # CLUSTER, DEFAULT_NETWORKS, ANNOTATION or DELEGATE ("" = unknown)
    # A device-plugin resource (the NAD's k8s.v1.cni.cncf.io/resourceName), the device of
    # it this network got, and the NPWG device-info files: the one the device plugin
    # wrote, and the one the delegate may write (runtimeConfig CNIDeviceInfoFile).
    resource_name: str = ""
    device_id: str = ""
    device_info_file: str = ""
    device_plugin_info_file: str = ""


NO_PASSENGERS = Passengers()


@record(frozen=True)
class Attachment:
    name: str  # network-status name: "namespace/nad" or the config's name
    network: NetworkConfig
    ifname: str
    runtime_config: Mapping[str, Any] = field(default_factory=dict)
    default: bool = False  # the cluster network: its result is returned to the runtime
    # Gateways the pod's default route moves to, via this network (`default-route`).
    default_route: tuple[str, ...] = ()
    # On the cluster network: the IP families (4, 6) whose default route moved elsewhere.
    replaced_default_routes: tuple[int, ...] = ()
    # `default-route: []`: the default routes this network's delegates add are removed.
    drop_default_routes: bool = False
    # Policy routing: traffic from this network's addresses leaves by its interface.
    source_routing: bool = False
    # CNI_ARGS pairs added to the runtime's for this network (Multus's IP=, MAC=).
    cni_args: tuple[tuple[str, str], ...] = ()
    k8s: Passengers = NO_PASSENGERS


@record(frozen=True)
class Plan:
    attachments: tuple[Attachment, ...]
    pod: Mapping[str, str] = field(default_factory=dict)  # namespace, name, uid


# The runtime's runtimeConfig values that are about the whole pod (port mappings,
# bandwidth...): every network gets them (capability-filtered, as Multus passes them).
# The others (mac, ips, infinibandGUID, deviceID, ipRanges) name one interface: the
# cluster network's only — Multus gives them to every network that declares them, which
# puts one MAC on two interfaces.
POD_WIDE = frozenset({"portMappings", "bandwidth", "dns", "aliases", "cgroupPath"})


def pod_wide(runtime_config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in runtime_config.items() if k in POD_WIDE}


def secondary_ifname(position: int) -> str:
    """Multus's naming: the n-th secondary network is net<n> (1-based)."""
    return f"net{position}"


def check_unique(attachments: Iterable[Attachment]) -> None:
    check_unique_ifnames((a.name, a.ifname) for a in attachments)


def check_unique_ifnames(networks: Iterable[tuple[str, str]]) -> None:
    """Each interface of a pod is one network's: (network, interface) pairs."""
    seen: dict[str, str] = {}
    for name, ifname in networks:
        if ifname in seen:
            raise InvalidConfig(
                f"interface name {ifname!r} is requested by both {seen[ifname]!r} and {name!r}"
            )
        seen[ifname] = name


CLUSTER_ORIGIN = Passengers(origin=CLUSTER)
DEFAULT_NETWORKS_ORIGIN = Passengers(origin=DEFAULT_NETWORKS)


def static_plan(
    delegates: tuple[NetworkConfig, ...], ifname: str, runtime_config: Mapping[str, Any]
) -> Plan:
    """The first delegate is the cluster network on CNI_IFNAME; the rest are net1, net2..."""
    attachments = tuple(
        Attachment(
            name=net.name,
            network=net,
            ifname=ifname if i == 0 else secondary_ifname(i),
            runtime_config=runtime_config if i == 0 else pod_wide(runtime_config),
            default=i == 0,
            k8s=CLUSTER_ORIGIN if i == 0 else DEFAULT_NETWORKS_ORIGIN,
        )
        for i, net in enumerate(delegates)
    )
    check_unique(attachments)
    return Plan(attachments)
