"""`default-route`: move the pod's default route to the network the pod chose.

Runs after every delegate succeeded. The cluster network's result loses its default
route for that family, both in what the runtime gets and in the journal (so that a
later CHECK does not expect a route that is deliberately gone).
"""

from __future__ import annotations

import socket
from typing import Any

from multinet import netns
from multinet.cni.errors import IOFailure
from multinet.journal import Journal
from multinet.plan import Plan
from multinet.status import DEFAULT_DST

MAIN_TABLE = 254
Move = tuple[int, str, str]  # (IP family 4|6, gateway, interface in the pod)


def moves(plan: Plan) -> list[Move]:
    out = []
    for att in plan.attachments:
        for gw in att.meta.get("default_route", ()):
            out.append((6 if ":" in gw else 4, gw, att.ifname))
    return out


def _apply(todo: list[Move]) -> None:
    from pyroute2 import IPRoute  # ~130 ms to import: only pods that ask pay for it

    with IPRoute() as ipr:
        for family, gw, ifname in todo:
            af = socket.AF_INET if family == 4 else socket.AF_INET6
            links = ipr.link_lookup(ifname=ifname)
            if not links:
                raise IOFailure(f"default-route: interface {ifname} not found in the pod")
            for r in ipr.get_default_routes(family=af, table=MAIN_TABLE):
                ipr.route(
                    "del",
                    family=af,
                    table=MAIN_TABLE,
                    dst_len=0,
                    oif=r.get_attr("RTA_OIF"),
                    gateway=r.get_attr("RTA_GATEWAY"),
                    priority=r.get_attr("RTA_PRIORITY") or 0,
                )
            ipr.route("add", family=af, dst=DEFAULT_DST[family], gateway=gw, oif=links[0])


def without_default_routes(raw: dict[str, Any], families: set[int]) -> dict[str, Any]:
    dsts = {DEFAULT_DST[f] for f in families}
    out = dict(raw)
    if "routes" in out:
        out["routes"] = [r for r in out["routes"] if r.get("dst") not in dsts]
    return out


def apply_default_routes(
    netns_path: str, plan: Plan, journal: Journal, cluster_result: dict[str, Any]
) -> dict[str, Any]:
    todo = moves(plan)
    if not todo:
        return cluster_result
    try:
        netns.run_in(netns_path, lambda: _apply(todo))
    except IOFailure:
        raise
    except Exception as e:  # netlink errors: name the route, never a raw exception
        raise IOFailure(f"default-route: cannot set the pod's default route: {e}") from None
    filtered = without_default_routes(cluster_result, {f for f, _, _ in todo})
    for entry in journal.entries:
        if entry.meta.get("default"):
            entry.result = filtered
    return filtered
