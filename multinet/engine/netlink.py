"""The engine's netlink operations, run inside a pod's network namespace: the only module
that imports pyroute2 (an import contract holds it), and only when called (~130 ms to
import: only pods that need it pay)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

from multinet.cni.errors import IOFailure
from multinet.cni.result import DEFAULT_DST

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

if TYPE_CHECKING:
    from multinet.engine.routes import Move, RoutePlan, SourceRoute

MAIN_TABLE = 254


def apply(plan: RoutePlan) -> None:
    """In the current thread's netns: the route plan, in its order (moves, drops, sources)."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        _move_default_routes(ipr, plan.moves)
        for ifname in plan.drops:
            index = _index(ipr, ifname)
            for af in (socket.AF_INET, socket.AF_INET6):
                for r in ipr.get_default_routes(family=af, table=MAIN_TABLE):
                    if r.get_attr("RTA_OIF") == index:
                        _delete(ipr, af, r)
        for source in plan.sources:
            _source_route(ipr, source)


def _index(ipr: Any, ifname: str) -> int:
    links = ipr.link_lookup(ifname=ifname)
    if not links:
        raise IOFailure(f"routes: interface {ifname} not found in the pod")
    return int(links[0])


def _delete(ipr: Any, af: int, route: Any) -> None:
    ipr.route(
        "del",
        family=af,
        table=MAIN_TABLE,
        dst_len=0,
        oif=route.get_attr("RTA_OIF"),
        gateway=route.get_attr("RTA_GATEWAY"),
        priority=route.get_attr("RTA_PRIORITY") or 0,
    )


def _source_route(ipr: Any, source: SourceRoute) -> None:
    """Table `source.table`: the subnet on the interface, a default via the gateway; and
    the rule `from <address> lookup <table>`."""
    iface = ipaddress.ip_interface(source.address)
    af = socket.AF_INET if iface.version == 4 else socket.AF_INET6
    index = _index(ipr, source.ifname)
    net = iface.network
    ipr.route(
        "replace",
        family=af,
        table=source.table,
        dst=str(net.network_address),
        dst_len=net.prefixlen,
        oif=index,
        prefsrc=str(iface.ip),
        scope=253 if iface.version == 4 else 0,  # link
    )
    if source.gateway:
        ipr.route(
            "replace",
            family=af,
            table=source.table,
            dst=DEFAULT_DST[iface.version].split("/")[0],
            dst_len=0,
            gateway=source.gateway,
            oif=index,
        )
    ipr.rule(
        "add",
        family=af,
        src=str(iface.ip),
        src_len=iface.max_prefixlen,
        table=source.table,
        priority=source.table,
    )


def _move_default_routes(ipr: Any, todo: Sequence[Move]) -> None:
    """Each family's default routes replaced by one via the gateway."""
    for family, gw, ifname in todo:
        af = socket.AF_INET if family == 4 else socket.AF_INET6
        index = _index(ipr, ifname)
        for r in ipr.get_default_routes(family=af, table=MAIN_TABLE):
            _delete(ipr, af, r)
        ipr.route("add", family=af, dst=DEFAULT_DST[family], gateway=gw, oif=index)


def delete_links(names: Sequence[str]) -> None:
    """In the current thread's netns: delete the links of these names that exist."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        for name in names:
            for index in ipr.link_lookup(ifname=name):
                ipr.link("del", index=index)
