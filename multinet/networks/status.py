"""network-status entries (NPWG format) built from what the journal recorded."""

from __future__ import annotations

from collections.abc import Iterable

from multinet.cni.result import DEFAULT_DST, Result
from multinet.engine.journal import ADDED, Entry

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _gateways(entry: Entry, res: Result) -> list[str]:
    """The default-route gateways this network carries in the pod: those a `default-route`
    moved to it, else those of the default routes in its result (the NPWG library's rule,
    for every network; a cluster network whose default route moved elsewhere has lost it
    from its journaled result, and lists what remains)."""
    if entry.default_route:
        return list(entry.default_route)
    moved = set(entry.replaced_default_routes)
    out = []
    for r in res.routes:
        for family, dst in DEFAULT_DST.items():
            if r.dst == dst and r.gw and family not in moved and r.gw not in out:
                out.append(r.gw)
    return out


def entries_for(entry: Entry) -> list[dict[str, Any]]:
    """One status entry per interface the delegate put in the pod."""
    if entry.state != ADDED or entry.result is None:
        return []
    res = Result.from_dict(entry.result)
    common: dict[str, Any] = {"name": entry.name}
    gateways = _gateways(entry, res)
    sandboxed = [(i, iface) for i, iface in enumerate(res.interfaces) if iface.sandbox]
    out = []
    if not sandboxed:
        # IPAM-only or minimal results: one entry for the requested interface.
        st = {**common, "interface": entry.ifname, "ips": [ip.ip for ip in res.ips]}
        out.append(st)
    # An IP that names no interface belongs to the last pod interface (as in the NPWG library).
    last = sandboxed[-1][0] if sandboxed else None
    owner = [last if ip.interface is None else ip.interface for ip in res.ips]
    for index, iface in sandboxed:
        st = {
            **common,
            "interface": iface.name,
            "ips": [ip.ip for ip, i in zip(res.ips, owner, strict=True) if i == index],
        }
        if iface.mac:
            st["mac"] = iface.mac
        if iface.mtu:
            st["mtu"] = iface.mtu
        out.append(st)
    for st in out:
        if entry.default:
            st["default"] = True
        st["dns"] = res.dns.to_dict()
        if gateways:
            st["gateway"] = gateways
        if entry.device_info is not None:  # the NPWG device-info, unchanged (networks.devices)
            st["device-info"] = entry.device_info
    return out


def network_status(entries: Iterable[Entry]) -> list[dict[str, Any]]:
    return [st for e in entries for st in entries_for(e)]
