"""The pod's routes after every delegate ran: what the plan asks beyond the delegates.

- `default-route` (gateways): the pod's default route of that family moves to this
  network; the cluster network's result loses its own;
- `default-route: []`: the default routes this network's delegates added are removed;
- source routing: traffic from this network's addresses leaves by its interface (a
  routing table per network and a `from <address>` rule), so that replies go back the
  way the request came.

The results in the journal (and the one the runtime gets) lose the default routes that
are gone, so that a later CHECK does not expect them. This module decides (pure); the
sandbox applies (engine.sandbox), the kernel work being the PodNetns seam's (engine.netns,
engine.netlink).
"""

from __future__ import annotations

from multinet.cni.result import DEFAULT_DST
from multinet.engine.journal import Journal
from multinet.engine.plan import Plan
from multinet.record import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NamedTuple
else:
    from multinet.record import NamedTuple

Move = tuple[int, str, str]  # (IP family 4|6, gateway, interface in the pod)
# Routing tables of source-routed networks: TABLE_BASE + the network's position.
TABLE_BASE = 100


class SourceRoute(NamedTuple):
    """Packets from `address` (CIDR) look up `table`: its subnet on `ifname`, and a default
    route via `gateway` when the network has one. (Not a dataclass: a NamedTuple is ~10x
    cheaper to create, which every thin-mode call pays.)"""

    ifname: str
    table: int
    address: str
    gateway: str | None = None


@record(frozen=True)
class RoutePlan:
    moves: tuple[Move, ...] = ()
    drops: tuple[str, ...] = ()  # interfaces whose default routes go
    sources: tuple[SourceRoute, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.moves or self.drops or self.sources)


def moves(plan: Plan) -> list[Move]:
    return [
        (6 if ":" in gw else 4, gw, att.ifname)
        for att in plan.attachments
        for gw in att.default_route
    ]


def route_plan(plan: Plan, journal: Journal) -> RoutePlan:
    sources = []
    for position, (att, entry) in enumerate(zip(plan.attachments, journal.entries, strict=True)):
        if att.source_routing and entry.result is not None:
            for ip in entry.result.get("ips", []):
                sources.append(
                    SourceRoute(att.ifname, TABLE_BASE + position, ip["address"], ip.get("gateway"))
                )
    return RoutePlan(
        moves=tuple(moves(plan)),
        drops=tuple(a.ifname for a in plan.attachments if a.drop_default_routes),
        sources=tuple(sources),
    )


def without_default_routes(raw: dict[str, Any], families: set[int]) -> dict[str, Any]:
    dsts = {DEFAULT_DST[f] for f in families}
    out = dict(raw)
    if "routes" in out:
        out["routes"] = [r for r in out["routes"] if r.get("dst") not in dsts]
    return out


def drop_gone_defaults(journal: Journal, todo: RoutePlan) -> None:
    """The results in the journal lose the default routes `todo` moved or dropped, so
    that a later CHECK does not expect them."""
    families = {f for f, _, _ in todo.moves}
    for entry in journal.entries:
        if entry.result is None:
            continue
        if entry.default and families:
            entry.result = without_default_routes(entry.result, families)
        if entry.drop_default_routes:
            entry.result = without_default_routes(entry.result, {4, 6})
