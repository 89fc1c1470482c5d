"""CNI Success results as typed models, read from and written in any supported spec version.

A plugin answers in the version it was asked in; converting is the meta-plugin's job. Reading
is about as strict as libcni's decoder (addresses, gateways and numbers must parse, the
interface index must point into `interfaces`), so a delegate's malformed output becomes a
decode failure naming the field instead of being passed on. Unknown keys are dropped, as
libcni does. Empty strings count as unset, as with Go's `omitempty`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from multinet.cni import version as cniversion
from multinet.cni.errors import DecodeFailure, IncompatibleVersion, InvalidConfig
from multinet.record import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

# 1.1.0 added interface mtu/socketPath/pciID and the route attributes below.
_V1_1 = "1.1.0"
# Before 1.0.0 each IP carries its family as "version".
_V1_0 = "1.0.0"
_UINT32 = 2**32 - 1
# The destination of a default route, by IP family.
DEFAULT_DST = {4: "0.0.0.0/0", 6: "::/0"}

if TYPE_CHECKING:
    import ipaddress

    IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
    IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


def parse_ip(text: str) -> IPAddress | None:
    """An IP address as Go's net.ParseIP takes it (no zone), or None."""
    import ipaddress  # ~6 million instructions: not imported by a DEL

    if "%" in text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def parse_cidr(text: str) -> IPInterface | None:
    """`address/prefixlen` as Go's net.ParseCIDR takes it (no netmask form, no zone), or None."""
    import ipaddress  # ~6 million instructions: not imported by a DEL

    addr, sep, prefix = text.partition("/")
    if not sep or not (prefix.isascii() and prefix.isdigit()) or "%" in addr:
        return None
    try:
        return ipaddress.ip_interface(text)
    except ValueError:
        return None


@record(frozen=True)
class Interface:
    name: str
    mac: str | None = None
    mtu: int | None = None
    sandbox: str | None = None
    socket_path: str | None = None
    pci_id: str | None = None

    def to_dict(self, version: str) -> dict[str, Any]:
        v1_1 = cniversion.at_least(version, _V1_1)
        out: dict[str, Any] = {"name": self.name}
        _put(out, "mac", self.mac)
        _put(out, "mtu", self.mtu if v1_1 else None)
        _put(out, "sandbox", self.sandbox)
        if v1_1:
            _put(out, "socketPath", self.socket_path)
            _put(out, "pciID", self.pci_id)
        return out


@record(frozen=True)
class IPConfig:
    address: str  # CIDR, e.g. "10.1.0.5/16"
    gateway: str | None = None
    interface: int | None = None  # index into Result.interfaces

    @property
    def family(self) -> int:
        """4 or 6."""
        import ipaddress  # ~6 million instructions: not imported by a DEL

        return ipaddress.ip_interface(self.address).version

    @property
    def ip(self) -> str:
        """The address without its prefix length (what network-status reports)."""
        import ipaddress  # ~6 million instructions: not imported by a DEL

        return str(ipaddress.ip_interface(self.address).ip)

    def to_dict(self, version: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if not cniversion.at_least(version, _V1_0):
            out["version"] = str(self.family)
        _put(out, "interface", self.interface)
        out["address"] = self.address
        _put(out, "gateway", self.gateway)
        return out


@record(frozen=True)
class Route:
    dst: str  # CIDR
    gw: str | None = None
    mtu: int | None = None
    advmss: int | None = None
    priority: int | None = None
    table: int | None = None
    scope: int | None = None

    def to_dict(self, version: str) -> dict[str, Any]:
        out: dict[str, Any] = {"dst": self.dst}
        _put(out, "gw", self.gw)
        if cniversion.at_least(version, _V1_1):
            for key in ("mtu", "advmss", "priority", "table", "scope"):
                _put(out, key, getattr(self, key))
        return out


@record(frozen=True)
class DNS:
    nameservers: tuple[str, ...] = ()
    domain: str | None = None
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        _put(out, "nameservers", list(self.nameservers))
        _put(out, "domain", self.domain)
        _put(out, "search", list(self.search))
        _put(out, "options", list(self.options))
        return out


@record(frozen=True)
class Result:
    cni_version: str
    interfaces: tuple[Interface, ...] = ()
    ips: tuple[IPConfig, ...] = ()
    routes: tuple[Route, ...] = ()
    dns: DNS = DNS()

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Result:
        """Read a result in any supported version; DecodeFailure names the bad field."""
        top = _Obj(raw, "")
        version = _read_version(top)
        if version in cniversion.LEGACY:
            return _legacy(top, version)
        interfaces = tuple(_interface(o) for o in top.objects("interfaces"))
        ips = tuple(_ipconfig(o, version, len(interfaces)) for o in top.objects("ips"))
        routes = tuple(_route(o) for o in top.objects("routes"))
        raw_dns = top.get("dns")
        dns = DNS() if raw_dns is None else _dns(_Obj(raw_dns, "dns"))
        return cls(version, interfaces, ips, routes, dns)

    def to_dict(self, version: str) -> dict[str, Any]:
        """The result as the `version` spec writes it; fields that version lacks are dropped."""
        cniversion.require_supported(version)
        if version in cniversion.LEGACY:
            return self._legacy_dict(version)
        out: dict[str, Any] = {"cniVersion": version}
        _put(out, "interfaces", [i.to_dict(version) for i in self.interfaces])
        _put(out, "ips", [ip.to_dict(version) for ip in self.ips])
        _put(out, "routes", [r.to_dict(version) for r in self.routes])
        # The spec lists dns among the Success keys and libcni always writes it, even as {}.
        out["dns"] = self.dns.to_dict()
        return out

    def _legacy_dict(self, version: str) -> dict[str, Any]:
        """0.1.0/0.2.0: the first address of each family with its gateway, and the routes
        of that family (libcni's conversion; interfaces do not exist there)."""
        import ipaddress  # ~6 million instructions: not imported by a DEL

        out: dict[str, Any] = {"cniVersion": version}
        for family, key in ((4, "ip4"), (6, "ip6")):
            ip = next((i for i in self.ips if i.family == family), None)
            if ip is None:
                continue
            routes = [
                r for r in self.routes if ipaddress.ip_network(r.dst, False).version == family
            ]
            block: dict[str, Any] = {"ip": ip.address}
            _put(block, "gateway", ip.gateway)
            _put(block, "routes", [r.to_dict(version) for r in routes])
            out[key] = block
        out["dns"] = self.dns.to_dict()
        return out


def _family(cidr: str) -> int:
    import ipaddress  # ~6 million instructions: not imported by a DEL

    return ipaddress.ip_network(cidr, strict=False).version


def _legacy(top: _Obj, version: str) -> Result:
    """A 0.1.0/0.2.0 result: `ip4` and `ip6` objects of {ip, gateway, routes}."""
    ips, routes = [], []
    for key in ("ip4", "ip6"):
        if top.get(key) is None:
            continue
        block = _Obj(top.get(key), key)
        ips.append(IPConfig(address=block.cidr("ip"), gateway=block.ip("gateway")))
        routes += [_route(o) for o in block.objects("routes")]
    raw_dns = top.get("dns")
    dns = DNS() if raw_dns is None else _dns(_Obj(raw_dns, "dns"))
    return Result(version, (), tuple(ips), tuple(routes), dns)


def convert(raw: Mapping[str, Any], to_version: str) -> dict[str, Any]:
    """Re-emit a raw result (any supported version) in `to_version`."""
    return Result.from_dict(raw).to_dict(to_version)


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    """Set `key` unless the value is unset (None, "" or an empty list)."""
    if value is not None and value != "" and value != []:
        out[key] = value


def _show(value: Any) -> str:
    return json.dumps(value, default=repr)


def _fail(path: str, value: Any, problem: str) -> NoReturn:
    where = f"result {path}" if path else "result"
    raise DecodeFailure(f"{where}: {_show(value)} {problem}")


class _Obj:
    """A JSON object being decoded; every error names the path of the field."""

    def __init__(self, raw: Any, path: str) -> None:
        if not isinstance(raw, Mapping):
            _fail(path, raw, "is not an object")
        self.raw: Mapping[str, Any] = raw
        self.path = path

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str) -> Any:
        return self.raw.get(key)

    def text(self, key: str) -> str | None:
        value = self.raw.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            _fail(self.at(key), value, "is not a string")
        return value

    def required(self, key: str) -> str:
        value = self.text(key)
        if value is None:
            raise DecodeFailure(f"result {self.at(key)}: missing")
        return value

    def integer(self, key: str, maximum: int = _UINT32) -> int | None:
        value = self.raw.get(key)
        if value is None:
            return None
        # bool is an int subclass, and Go rejects 1.0 for an int field.
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(self.at(key), value, "is not an integer")
        if not 0 <= value <= maximum:
            _fail(self.at(key), value, f"is out of range 0..{maximum}")
        return value

    def ip(self, key: str) -> str | None:
        value = self.text(key)
        if value is not None and parse_ip(value) is None:
            _fail(self.at(key), value, "is not an IP address")
        return value

    def cidr(self, key: str) -> str:
        value = self.required(key)
        if parse_cidr(value) is None:
            _fail(self.at(key), value, "is not an IP address with prefix")
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.raw.get(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            _fail(self.at(key), value, "is not a list")
        for i, item in enumerate(value):
            if not isinstance(item, str):
                _fail(f"{self.at(key)}[{i}]", item, "is not a string")
        return tuple(value)

    def objects(self, key: str) -> list[_Obj]:
        value = self.raw.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            _fail(self.at(key), value, "is not a list")
        return [_Obj(item, f"{self.at(key)}[{i}]") for i, item in enumerate(value)]


def _read_version(top: _Obj) -> str:
    version = top.required("cniVersion")
    try:
        return cniversion.require_supported(version)
    except InvalidConfig:
        _fail("cniVersion", version, "is not a version MAJOR.MINOR.PATCH")
    except IncompatibleVersion as e:
        msg = f"result cniVersion {_show(version)} is not supported"
        raise IncompatibleVersion(msg, e.details) from None


def _interface(o: _Obj) -> Interface:
    return Interface(
        name=o.required("name"),
        mac=o.text("mac"),
        mtu=o.integer("mtu"),
        sandbox=o.text("sandbox"),
        socket_path=o.text("socketPath"),
        pci_id=o.text("pciID"),
    )


def _ipconfig(o: _Obj, version: str, n_interfaces: int) -> IPConfig:
    import ipaddress  # ~6 million instructions: not imported by a DEL

    address = o.cidr("address")
    if not cniversion.at_least(version, _V1_0) and o.get("version") is not None:
        family = o.text("version")
        if family not in ("4", "6"):
            _fail(o.at("version"), o.get("version"), 'is not "4" or "6"')
        if family != str(ipaddress.ip_interface(address).version):
            _fail(o.at("version"), family, f"does not match address {_show(address)}")
    index = o.integer("interface")
    if index is not None and index >= n_interfaces:
        _fail(o.at("interface"), index, f"is not an index into interfaces ({n_interfaces} long)")
    return IPConfig(address=address, gateway=o.ip("gateway"), interface=index)


def _route(o: _Obj) -> Route:
    return Route(
        dst=o.cidr("dst"),
        gw=o.ip("gw"),
        mtu=o.integer("mtu"),
        advmss=o.integer("advmss"),
        priority=o.integer("priority"),
        table=o.integer("table"),
        scope=o.integer("scope", maximum=255),
    )


def _dns(o: _Obj) -> DNS:
    # libcni keeps these as plain strings; checking nameservers are IPs is the consumer's job.
    return DNS(
        nameservers=o.texts("nameservers"),
        domain=o.text("domain"),
        search=o.texts("search"),
        options=o.texts("options"),
    )
