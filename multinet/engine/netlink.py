"""The engine's netlink operations, run inside a pod's network namespace: the only module
that imports pyroute2 (an import contract holds it), and only when called (~130 ms to
import: only pods that need it pay)."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING

from multinet.cni.errors import IOFailure
from multinet.cni.result import DEFAULT_DST

if TYPE_CHECKING:
    from multinet.engine.routes import Move

MAIN_TABLE = 254


def move_default_routes(todo: Sequence[Move]) -> None:
    """In the current thread's netns: each family's default routes replaced by one via gw."""
    from pyroute2 import IPRoute

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


def delete_links(names: Sequence[str]) -> None:
    """In the current thread's netns: delete the links of these names that exist."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        for name in names:
            for index in ipr.link_lookup(ifname=name):
                ipr.link("del", index=index)
