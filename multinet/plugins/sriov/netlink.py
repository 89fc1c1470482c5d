"""pyroute2 for the plugin: the VF settings on the PF (NetlinkBackend) and the VF netdev's
moves between the host and the pod. With `engine.netlink`, the only module that imports
pyroute2 (an import contract holds it). Every netlink error becomes a CNIError naming
the PF, the VF and the setting (or the link and the operation)."""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from multinet.cni.errors import CNIError, InvalidConfig, IOFailure, TryAgainLater
from multinet.plugins.sriov.backend import VfState
from multinet.plugins.sriov.config import LINK_STATES, VLAN_PROTOS

RTEXT_FILTER_VF = 1
LINK_STATE_NAMES = {v: k for k, v in LINK_STATES.items()}
PROTO_NAMES = {v: k for k, v in VLAN_PROTOS.items()}


def _error(what: str, e: Exception) -> CNIError:
    code = getattr(e, "code", None)
    if code is None and isinstance(e, OSError):
        code = e.errno
    reason = os.strerror(code) if isinstance(code, int) else str(e)
    if code == errno.EOPNOTSUPP:
        return InvalidConfig(f"{what}: not supported by the device", reason)
    if code in (errno.EPERM, errno.EACCES):
        return IOFailure(f"{what}: permission denied", reason)
    if code == errno.EBUSY:
        return TryAgainLater(f"{what}: device busy", reason)
    return IOFailure(f"{what} failed", reason)


@contextmanager
def _ipr(netns: str = "") -> Iterator[Any]:
    from pyroute2 import IPRoute

    try:
        ipr = IPRoute(netns=netns) if netns else IPRoute()
    except Exception as e:
        raise _error(f"netlink in {netns or 'the host'}", e) from None
    try:
        yield ipr
    finally:
        ipr.close()


def _index(ipr: Any, name: str, where: str) -> int:
    found = ipr.link_lookup(ifname=name)
    if not found:
        raise IOFailure(f"sriov: link {name} not found in {where}")
    return int(found[0])


def _link_state(value: Any) -> str:
    return LINK_STATE_NAMES.get(int(value), "auto")


class NetlinkBackend:
    """IFLA_VF_* on the PF (`ip link set <pf> vf <n> ...`)."""

    def get(self, pf: str, vf: int) -> VfState:
        with _ipr() as ipr:
            index = _index(ipr, pf, "the host")
            try:
                link = ipr.link("get", index=index, ext_mask=RTEXT_FILTER_VF)[0]
            except Exception as e:
                raise _error(f"sriov: reading the VFs of PF {pf}", e) from None
        vfinfo = link.get_attr("IFLA_VFINFO_LIST")
        infos = vfinfo.get_attrs("IFLA_VF_INFO") if vfinfo is not None else []
        if not infos:
            raise InvalidConfig(f"sriov: PF {pf} has no SR-IOV VFs (operation not supported)")
        if not 0 <= vf < len(infos):
            raise InvalidConfig(f"sriov: PF {pf} has no VF {vf} (index out of range)")
        info = infos[vf]

        def attr(name: str, key: str, default: Any) -> Any:
            nla = info.get_attr(name)
            return default if nla is None else nla.get(key, default)

        proto = 0x8100
        vlist = info.get_attr("IFLA_VF_VLAN_LIST")
        if vlist is not None:
            for ivvi in vlist.get_attrs("IFLA_VF_VLAN_INFO"):
                proto = socket.ntohs(int(ivvi.get("proto", 0x0081))) or 0x8100
        return VfState(
            mac=str(attr("IFLA_VF_MAC", "mac", "00:00:00:00:00:00"))[:17],
            vlan=int(attr("IFLA_VF_VLAN", "vlan", 0)),
            qos=int(attr("IFLA_VF_VLAN", "qos", 0)),
            proto=PROTO_NAMES.get(proto, "802.1q"),
            spoofchk=bool(attr("IFLA_VF_SPOOFCHK", "spoofchk", 1)),
            trust=bool(attr("IFLA_VF_TRUST", "trust", 0)),
            link_state=_link_state(attr("IFLA_VF_LINK_STATE", "link_state", 0)),
            min_tx_rate=int(attr("IFLA_VF_RATE", "min_tx_rate", 0)),
            max_tx_rate=int(attr("IFLA_VF_RATE", "max_tx_rate", 0)),
        )

    def set(self, pf: str, vf: int, setting: str, values: Mapping[str, Any]) -> None:
        spec: dict[str, Any] = {"vf": vf}
        if setting == "vlan":
            proto = socket.htons(VLAN_PROTOS[values["proto"]])
            spec["vlan"] = [{"vlan": values["vlan"], "qos": values["qos"], "proto": proto}]
        elif setting == "rate":
            spec["rate"] = {
                "min_tx_rate": values["min_tx_rate"],
                "max_tx_rate": values["max_tx_rate"],
            }
        elif setting == "link_state":
            spec["link_state"] = LINK_STATES[values["link_state"]]
        elif setting in ("spoofchk", "trust"):
            spec[setting] = int(bool(values[setting]))
        else:
            spec[setting] = values[setting]
        with _ipr() as ipr:
            index = _index(ipr, pf, "the host")
            try:
                ipr.link("set", index=index, vf=spec)
            except Exception as e:
                raise _error(f"sriov: setting {setting} of VF {vf} on PF {pf}", e) from None


# -- the VF netdev --------------------------------------------------------------------


def link_info(name: str, netns: str = "") -> tuple[str, int]:
    """(MAC, MTU) of a link."""
    with _ipr(netns) as ipr:
        link = ipr.get_links(_index(ipr, name, netns or "the host"))[0]
        return str(link.get_attr("IFLA_ADDRESS")), int(link.get_attr("IFLA_MTU"))


def move_into(name: str, netns: str, new_name: str, mac: str | None, mtu: int | None) -> None:
    """The VF netdev into the pod as `new_name`, with its MAC and MTU, up."""
    what = f"sriov: moving {name} into {netns} as {new_name}"
    try:
        fd = os.open(netns, os.O_RDONLY)
    except OSError as e:
        raise _error(what, e) from None
    try:
        with _ipr() as ipr:
            index = _index(ipr, name, "the host")
            ipr.link("set", index=index, state="down")
            ipr.link("set", index=index, net_ns_fd=fd)
        with _ipr(netns) as ipr:
            index = _index(ipr, name, netns)
            changes: dict[str, Any] = {"ifname": new_name}
            if mac:
                changes["address"] = mac
            if mtu:
                changes["mtu"] = mtu
            ipr.link("set", index=index, **changes)
            ipr.link("set", index=index, state="up")
    except CNIError:
        raise
    except Exception as e:
        raise _error(what, e) from None
    finally:
        os.close(fd)


def move_out(netns: str, name: str, orig_name: str, mac: str, mtu: int) -> None:
    """Back to the host under its original name, MAC and MTU; a no-op when the link is not
    in the pod (DEL after the netns or the link is gone)."""
    what = f"sriov: moving {name} out of {netns} as {orig_name}"
    try:
        host = open("/proc/self/ns/net", "rb")
    except OSError as e:
        raise _error(what, e) from None
    try:
        with _ipr(netns) as ipr:
            found = ipr.link_lookup(ifname=name)
            if not found:
                return
            index = int(found[0])
            ipr.link("set", index=index, state="down")
            ipr.link("set", index=index, ifname=orig_name, address=mac, mtu=mtu)
            ipr.link("set", index=index, net_ns_fd=host.fileno())
    except CNIError:
        raise
    except Exception as e:
        raise _error(what, e) from None
    finally:
        host.close()


def restore_host_link(current: str, name: str, mac: str, mtu: int) -> None:
    """A VF netdev in the host (an ADD that failed before the move, or one the kernel sent
    back when the pod's netns went): its original name, MAC and MTU; a no-op if absent."""
    with _ipr() as ipr:
        found = ipr.link_lookup(ifname=current)
        if not found:
            return
        index = int(found[0])
        try:
            if current != name:
                ipr.link("set", index=index, state="down")
                ipr.link("set", index=index, ifname=name)
            ipr.link("set", index=index, address=mac, mtu=mtu)
        except Exception as e:
            raise _error(f"sriov: restoring {current} as {name}", e) from None


def configure(
    netns: str, ifname: str, ips: Sequence[Mapping[str, Any]], routes: Sequence[Mapping[str, Any]]
) -> None:
    """IPAM's addresses and routes on the interface in the pod (libcni's ConfigureIface)."""
    with _ipr(netns) as ipr:
        index = _index(ipr, ifname, netns)
        try:
            for ip in ips:
                iface = ipaddress.ip_interface(ip["address"])
                prefix = iface.network.prefixlen
                ipr.addr("add", index=index, address=str(iface.ip), prefixlen=prefix)
            for r in routes:
                dst = ipaddress.ip_network(r["dst"], strict=False)
                spec: dict[str, Any] = {"dst": str(dst.network_address), "dst_len": dst.prefixlen}
                spec["family"] = socket.AF_INET if dst.version == 4 else socket.AF_INET6
                if r.get("gw"):
                    spec["gateway"] = r["gw"]
                else:
                    spec["oif"] = index
                ipr.route("add", **spec)
        except Exception as e:
            raise _error(f"sriov: configuring {ifname} in {netns}", e) from None


def addresses(netns: str, ifname: str) -> tuple[str, int, set[str]]:
    """(MAC, MTU, CIDRs) of the interface in the pod, for CHECK."""
    with _ipr(netns) as ipr:
        index = _index(ipr, ifname, netns)
        link = ipr.get_links(index)[0]
        cidrs = {f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}" for a in ipr.get_addr(index=index)}
        return str(link.get_attr("IFLA_ADDRESS")), int(link.get_attr("IFLA_MTU")), cidrs
