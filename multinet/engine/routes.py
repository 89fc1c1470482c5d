"""`default-route`: move the pod's default route to the network the pod chose.

Runs after every delegate succeeded. The cluster network's result loses its default
route for that family, both in what the runtime gets and in the journal (so that a
later CHECK does not expect a route that is deliberately gone). The kernel work is
the PodNetns seam's (engine.netns, engine.netlink); this module decides what to do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from multinet.cni.result import DEFAULT_DST
from multinet.engine.journal import Journal
from multinet.engine.plan import Plan

if TYPE_CHECKING:
    from multinet.engine.ports import PodNetns

Move = tuple[int, str, str]  # (IP family 4|6, gateway, interface in the pod)


def moves(plan: Plan) -> list[Move]:
    return [
        (6 if ":" in gw else 4, gw, att.ifname)
        for att in plan.attachments
        for gw in att.default_route
    ]


def without_default_routes(raw: dict[str, Any], families: set[int]) -> dict[str, Any]:
    dsts = {DEFAULT_DST[f] for f in families}
    out = dict(raw)
    if "routes" in out:
        out["routes"] = [r for r in out["routes"] if r.get("dst") not in dsts]
    return out


def apply_default_routes(
    pod_netns: PodNetns,
    netns_path: str,
    plan: Plan,
    journal: Journal,
    cluster_result: dict[str, Any],
) -> dict[str, Any]:
    todo = moves(plan)
    if not todo:
        return cluster_result
    pod_netns.move_default_routes(netns_path, todo)
    filtered = without_default_routes(cluster_result, {f for f, _, _ in todo})
    for entry in journal.entries:
        if entry.default:
            entry.result = filtered
    return filtered
