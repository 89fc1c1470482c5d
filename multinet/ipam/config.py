"""multinet-ipam's configuration: the `ipam` object of a netconf, whereabouts' keys
read unchanged, parsed and validated in one place.

Ranges: `range` (with `range_start`, `range_end`, `exclude`) and `ipRanges` (a list of
the same, for dual stack); one address from each. `gateway` and `routes` go to the
result. `network_name` gives the pools a name of their own (NADs of one network name
share allocations). `kubernetes.kubeconfig` is how the plugin reaches the API server
(the in-cluster service account without one). Static requests: `ips` in the netconf's
`runtimeConfig` (the `ips` capability, from the pod's network-selection element), or
`IP=` in CNI_ARGS, as the reference plugins take them.

Keys accepted and not acted on yet are `pending`: the plugin says so on stderr and
`multinetctl nad check` (and the admission webhook) warns (docs/ipam.md).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from multinet.cni.errors import InvalidConfig
from multinet.ipam.ranges import (
    Address,
    Range,
    make_range,
    parse_address,
    parse_network,
    parse_range_text,
)

TYPE = "multinet-ipam"
DEFAULT_NAMESPACE = "kube-system"
DEFAULT_DATA_DIR = "/var/lib/cni/multinet-ipam"
SCHEMA = "ipam-multinet-ipam.json"  # its keys marked x-not-yet are accepted, not acted on


ROUTE_INTS = ("mtu", "advmss", "priority", "table", "scope")  # CNI 1.1.0's route keys


@dataclass(frozen=True)
class RouteConf:
    dst: str
    gw: str | None = None
    extra: tuple[tuple[str, int], ...] = ()  # ROUTE_INTS given


@dataclass(frozen=True)
class IpamConf:
    name: str  # the network's name (for messages)
    cni_version: str
    ranges: tuple[Range, ...]
    routes: tuple[RouteConf, ...] = ()
    dns: Mapping[str, Any] = field(default_factory=dict)
    network_name: str = ""
    namespace: str = DEFAULT_NAMESPACE
    kubeconfig: str = ""
    data_dir: str = DEFAULT_DATA_DIR
    static: tuple[Address, ...] = ()
    pending: tuple[str, ...] = ()  # what the keys given ask that is not done yet


def _strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidConfig(f"multinet-ipam: {where} must be a list of strings")
    return list(value)


def _range(raw: Mapping[str, Any], where: str, gateway: Address | None) -> Range:
    if not isinstance(raw, Mapping):
        raise InvalidConfig(f"multinet-ipam: {where} must be an object")
    if "range" not in raw:
        raise InvalidConfig(f"multinet-ipam: {where}: required key 'range' is missing")
    subnet, start, end = parse_range_text(raw["range"], f"{where}.range")
    if raw.get("range_start") not in (None, ""):
        start = parse_address(raw["range_start"], f"{where}.range_start")
    if raw.get("range_end") not in (None, ""):
        end = parse_address(raw["range_end"], f"{where}.range_end")
    exclude = [
        parse_network(text, f"{where}.exclude[{i}]")
        for i, text in enumerate(_strings(raw.get("exclude"), f"{where}.exclude"))
    ]
    own_gateway = raw.get("gateway")
    if own_gateway not in (None, ""):
        gateway = parse_address(own_gateway, f"{where}.gateway")
    if gateway is not None and (gateway.version != subnet.version or gateway not in subnet):
        gateway = None  # the top-level gateway belongs to another family's range
    return make_range(subnet, start=start, end=end, exclude=exclude, gateway=gateway, where=where)


def _routes(value: Any) -> tuple[RouteConf, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidConfig("multinet-ipam: routes must be a list of {dst, gw}")
    out = []
    for i, route in enumerate(value):
        if not isinstance(route, Mapping) or "dst" not in route:
            raise InvalidConfig(f"multinet-ipam: routes[{i}] must be an object with a 'dst'")
        parse_network(route["dst"], f"routes[{i}].dst")
        gw = route.get("gw")
        if gw not in (None, ""):
            parse_address(gw, f"routes[{i}].gw")
        extra = []
        for key in ROUTE_INTS:
            value = route.get(key)
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidConfig(f"multinet-ipam: routes[{i}].{key} must be an integer >= 0")
            extra.append((key, value))
        out.append(RouteConf(str(route["dst"]), str(gw) if gw else None, tuple(extra)))
    return tuple(out)


def static_requests(
    netconf: Mapping[str, Any], args: Sequence[tuple[str, str]]
) -> tuple[Address, ...]:
    """The addresses asked for: runtimeConfig.ips (CIDRs or addresses), else CNI_ARGS
    IP= (comma-separated), as the static and host-local plugins read them."""
    rc = netconf.get("runtimeConfig")
    texts: list[str] = []
    if isinstance(rc, Mapping) and rc.get("ips"):
        texts = _strings(rc["ips"], "runtimeConfig.ips")
    else:
        for key, value in args:
            if key == "IP":
                texts = [t for t in value.split(",") if t]
    out = []
    for text in texts:
        try:
            out.append(ipaddress.ip_interface(text).ip)
        except ValueError:
            raise InvalidConfig(f"multinet-ipam: requested IP {text!r} is not an address") from None
    return tuple(out)


def pending(ipam: Mapping[str, Any]) -> tuple[str, ...]:
    """What the config asks that is not done yet (the schema's x-not-yet keys given a
    value that is not false or empty), one sentence each."""
    from multinet import schemas

    properties = schemas.load(SCHEMA)["properties"]
    return tuple(
        f"{key}: {spec['x-not-yet']}"
        for key, spec in properties.items()
        if "x-not-yet" in spec and ipam.get(key) not in (None, False, "", [], {})
    )


def load(netconf: Mapping[str, Any], args: Sequence[tuple[str, str]] = ()) -> IpamConf:
    ipam = netconf.get("ipam")
    if not isinstance(ipam, Mapping):
        raise InvalidConfig("multinet-ipam: the netconf has no ipam object")
    if ipam.get("datastore") not in (None, "", "kubernetes"):
        raise InvalidConfig(
            f"multinet-ipam: datastore {ipam['datastore']!r} is not supported: "
            "the pools are kept in the Kubernetes API (remove the key)"
        )
    gateway = None
    if ipam.get("gateway") not in (None, ""):
        gateway = parse_address(ipam["gateway"], "gateway")
    ranges: list[Range] = []
    if "range" in ipam:
        ranges.append(_range(ipam, "ipam", gateway))
    extra = ipam.get("ipRanges") or []
    if not isinstance(extra, list):
        raise InvalidConfig("multinet-ipam: ipRanges must be a list of {range, ...}")
    ranges += [_range(r, f"ipRanges[{i}]", gateway) for i, r in enumerate(extra)]
    if not ranges:
        raise InvalidConfig("multinet-ipam: needs 'range' or 'ipRanges'")
    for i, r in enumerate(ranges):
        if any(r.subnet == other.subnet for other in ranges[:i]):
            raise InvalidConfig(f"multinet-ipam: the range {r.cidr} is given twice")
    kube = ipam.get("kubernetes") or {}
    if not isinstance(kube, Mapping) or not isinstance(kube.get("kubeconfig", ""), str):
        raise InvalidConfig("multinet-ipam: kubernetes must be an object {kubeconfig: PATH}")
    network_name = ipam.get("network_name") or ""
    if not isinstance(network_name, str):
        raise InvalidConfig("multinet-ipam: network_name must be a string")
    namespace = ipam.get("poolNamespace") or DEFAULT_NAMESPACE
    data_dir = ipam.get("dataDir") or DEFAULT_DATA_DIR
    if not isinstance(namespace, str) or not isinstance(data_dir, str):
        raise InvalidConfig("multinet-ipam: poolNamespace and dataDir must be strings")
    dns = ipam.get("dns") or {}
    if not isinstance(dns, Mapping):
        raise InvalidConfig("multinet-ipam: dns must be an object")
    return IpamConf(
        name=str(netconf.get("name", "")),
        cni_version=str(netconf.get("cniVersion", "0.4.0")),
        ranges=tuple(ranges),
        routes=_routes(ipam.get("routes")),
        dns=dict(dns),
        network_name=network_name,
        namespace=namespace,
        kubeconfig=str(kube.get("kubeconfig") or ""),
        data_dir=data_dir,
        static=static_requests(netconf, args),
        pending=pending(ipam),
    )
