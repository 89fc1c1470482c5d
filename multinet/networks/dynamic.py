"""Which networks a running pod gains and loses when its networks annotation changes.

An attachment is the same when its namespace/NAD and its interface name match. An
annotation element without `interface` keeps the `netN` name it got for as long as it
stays in the annotation (matched in order among the auto-named interfaces of its NAD),
so that it can be removed without ever having had an explicit name; a new one gets the
lowest free `netN`. The cluster network, defaultNetworks and networks a Multus
/delegate request attached are never removed this way, nor are networks of a journal
written before origins were recorded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from multinet.cluster.base import Pod
from multinet.cni.chain import NetworkConfig
from multinet.cni.errors import InvalidConfig
from multinet.cni.request import Request
from multinet.config.netconf import NetConf
from multinet.engine.dynamic import Change
from multinet.engine.journal import ADDED, Entry, Journal
from multinet.engine.plan import (
    CLUSTER,
    DEFAULT_NETWORKS,
    DELEGATE,
    REMOVABLE,
    Attachment,
    Plan,
    check_unique,
    pod_wide,
    secondary_ifname,
)
from multinet.networks import devices
from multinet.networks.attachments import selected
from multinet.networks.planner import PodPlanner
from multinet.networks.resolve import Resolved, Resolver
from multinet.networks.selection import (
    NETWORKS_ANNOTATION,
    NetworkSelection,
    parse_element,
    parse_networks,
)
from multinet.record import replace

AUTO_NAME = re.compile(r"net[0-9]+")


@dataclass(frozen=True)
class Diff:
    kept: tuple[tuple[NetworkSelection, Entry], ...]
    new: tuple[NetworkSelection, ...]
    gone: tuple[Entry, ...]


def key(sel: NetworkSelection) -> str:
    return f"{sel.namespace}/{sel.name}"


def diff(entries: Sequence[Entry], selections: Sequence[NetworkSelection]) -> Diff:
    """Match the annotation's elements to the journal's networks (see the module's text)."""
    # Networks whose release failed ("removing") are neither kept nor removed again:
    # the reconcile retries their DEL; their interface names stay taken until then.
    candidates = [
        e
        for e in entries
        if e.state == ADDED and not e.default and e.k8s.origin not in (CLUSTER, DEFAULT_NETWORKS)
    ]
    free = list(candidates)
    kept: list[tuple[NetworkSelection, Entry]] = []
    pending: list[NetworkSelection] = []
    for sel in selections:  # explicit names first: they may claim any interface
        if sel.interface is None:
            continue
        match = next((e for e in free if e.name == key(sel) and e.ifname == sel.interface), None)
        if match is None:
            pending.append(sel)
        else:
            free.remove(match)
            kept.append((sel, match))
    new: list[NetworkSelection] = []
    for sel in selections:
        if sel.interface is not None:
            if any(p is sel for p in pending):
                new.append(sel)
            continue
        match = next(
            (e for e in free if e.name == key(sel) and AUTO_NAME.fullmatch(e.ifname)), None
        )
        if match is None:
            new.append(sel)
        else:
            free.remove(match)
            kept.append((sel, match))
    gone = tuple(e for e in free if e.k8s.origin in REMOVABLE)
    return Diff(tuple(kept), tuple(new), gone)


def next_names(taken: set[str], count: int) -> list[str]:
    """The `count` lowest netN names not in `taken`."""
    out: list[str] = []
    n = 1
    while len(out) < count:
        name = secondary_ifname(n)
        if name not in taken:
            out.append(name)
        n += 1
    return out


class PodChanges:
    """meta.dynamic.Replanner over a cluster source: the change that makes a sandbox's
    networks what its pod's networks annotation asks now."""

    def __init__(self, planner: PodPlanner) -> None:
        self.planner = planner

    def __call__(self, conf: NetConf, req: Request, journal: Journal) -> Change:
        pod = self.planner.pod(req)  # UnknownContainer when it is gone or another pod
        if pod is None:
            return Change()
        selections = parse_networks(pod.annotations.get(NETWORKS_ANNOTATION, ""), pod.namespace)
        for sel in selections:
            self.planner.check_isolation(conf, pod, sel)
        d = diff(journal.entries, selections)
        for sel in d.new:
            if sel.default_route or sel.source_routing:
                what = "default-route" if sel.default_route else "source-routing"
                raise InvalidConfig(
                    f"network {key(sel)}: {what} cannot be set on a running pod",
                    "remove it from the element, or recreate the pod",
                )
        gone = {e.ifname for e in d.gone}
        taken = {e.ifname for e in journal.entries if e.ifname not in gone}
        taken |= {s.interface for s in d.new if s.interface}
        auto = iter(next_names(taken, sum(1 for s in d.new if s.interface is None)))
        resolver = Resolver(conf, self.planner.cluster)
        shared = pod_wide(conf.runtime_config)
        atts = tuple(
            selected(s, resolver.nad(s.namespace, s.name), s.interface or next(auto), shared)
            for s in d.new
        )
        check_unique(atts)
        atts = self._with_devices(conf, req, pod, journal, atts, gone)
        return Change(add=atts, remove=tuple(e.ifname for e in d.gone))

    def _with_devices(
        self,
        conf: NetConf,
        req: Request,
        pod: Pod,
        journal: Journal,
        atts: tuple[Attachment, ...],
        gone: set[str],
    ) -> tuple[Attachment, ...]:
        """A new network whose NAD names a resource gets one of the pod's devices that no
        network staying in the pod holds."""
        if not any(a.k8s.resource_name and not a.k8s.device_id for a in atts):
            return atts
        if self.planner.devices is None:
            raise InvalidConfig("a NAD names a resource but no device source is configured")
        held = {
            e.k8s.device_id for e in journal.entries if e.k8s.device_id and e.ifname not in gone
        }
        assigned = {
            resource: [i for i in ids if i not in held]
            for resource, ids in self.planner.devices.for_pod(pod).items()
        }
        plan = devices.assign(Plan(atts), assigned, conf.device_info_dir, req.container_id)
        return plan.attachments


def delegate_attachment(
    net: NetworkConfig,
    ifname: str,
    namespace: str,
    attributes: Mapping[str, Any],
    runtime_config: Mapping[str, Any],
) -> Attachment:
    """A Multus /delegate request's network as an attachment: its interfaceAttributes
    (ips, mac, cni-args) given to the delegate as a networks element's would be."""
    # Checked as a networks element (a MAC as Go's ParseMAC reads it, CIDRs, an object of
    # cni-args): they end up in CNI_ARGS and runtimeConfig. The NAD's name is the config's.
    element = {"name": "delegate", "interface": ifname}
    for key in ("ips", "mac", "cni-args"):
        if attributes.get(key):
            element[key] = attributes[key]
    sel = replace(
        parse_element(
            element, namespace or "default", "the /delegate request's interfaceAttributes"
        ),
        name=net.name,
    )
    att = selected(sel, Resolved(net.name, net), ifname, pod_wide(runtime_config))
    return replace(att, k8s=att.k8s._replace(origin=DELEGATE))
