"""CNI results: reading every supported version, writing every version, converting between them."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from typing import Any

import pytest

from multinet.cni.errors import DecodeFailure, IncompatibleVersion, InvalidConfig
from multinet.cni.result import DNS, Interface, IPConfig, Result, Route, convert
from multinet.cni.version import SUPPORTED, at_least
from multinet.record import FrozenInstanceError, replace

PAIRS = list(itertools.product(SUPPORTED, SUPPORTED))


def tagged(version: str) -> bool:
    """Versions whose ips carry "version": "4"/"6"."""
    return not at_least(version, "1.0.0")


def bridge(version: str) -> dict[str, Any]:
    """A dual-stack bridge + host-local ADD result as the bridge plugin writes it in `version`."""

    def ip(family: str, **rest: Any) -> dict[str, Any]:
        return ({"version": family} if tagged(version) else {}) | rest

    return {
        "cniVersion": version,
        "interfaces": [
            {"name": "cni0", "mac": "0a:58:0a:01:00:01"},
            {"name": "veth3243abcd", "mac": "ae:0c:1a:2b:3c:4d"},
            {"name": "eth0", "mac": "0a:58:0a:01:00:05", "sandbox": "/var/run/netns/blue"},
        ],
        "ips": [
            ip("4", interface=2, address="10.1.0.5/16", gateway="10.1.0.1"),
            ip("6", interface=2, address="fd00:10:1::5/64", gateway="fd00:10:1::1"),
        ],
        "routes": [
            {"dst": "0.0.0.0/0", "gw": "10.1.0.1"},
            {"dst": "::/0", "gw": "fd00:10:1::1"},
        ],
        "dns": {
            "nameservers": ["10.1.0.1"],
            "domain": "cluster.local",
            "search": ["default.svc.cluster.local", "svc.cluster.local"],
            "options": ["ndots:5"],
        },
    }


BRIDGE = Result(
    cni_version="",
    interfaces=(
        Interface("cni0", mac="0a:58:0a:01:00:01"),
        Interface("veth3243abcd", mac="ae:0c:1a:2b:3c:4d"),
        Interface("eth0", mac="0a:58:0a:01:00:05", sandbox="/var/run/netns/blue"),
    ),
    ips=(
        IPConfig("10.1.0.5/16", gateway="10.1.0.1", interface=2),
        IPConfig("fd00:10:1::5/64", gateway="fd00:10:1::1", interface=2),
    ),
    routes=(Route("0.0.0.0/0", gw="10.1.0.1"), Route("::/0", gw="fd00:10:1::1")),
    dns=DNS(
        nameservers=("10.1.0.1",),
        domain="cluster.local",
        search=("default.svc.cluster.local", "svc.cluster.local"),
        options=("ndots:5",),
    ),
)

# An SR-IOV-style 1.1.0 result using every field 1.1.0 added.
FULL_1_1: dict[str, Any] = {
    "cniVersion": "1.1.0",
    "interfaces": [
        {
            "name": "net1",
            "mac": "0a:00:00:00:00:07",
            "mtu": 9000,
            "sandbox": "/var/run/netns/pod",
            "socketPath": "/var/run/vhost/net1.sock",
            "pciID": "0000:3b:02.1",
        }
    ],
    "ips": [{"interface": 0, "address": "192.168.50.7/24", "gateway": "192.168.50.1"}],
    "routes": [
        {
            "dst": "10.96.0.0/12",
            "gw": "192.168.50.1",
            "mtu": 8950,
            "advmss": 8910,
            "priority": 100,
            "table": 0,
            "scope": 0,
        }
    ],
    "dns": {},
}
FULL_1_0: dict[str, Any] = {
    "cniVersion": "1.0.0",
    "interfaces": [{"name": "net1", "mac": "0a:00:00:00:00:07", "sandbox": "/var/run/netns/pod"}],
    "ips": [{"interface": 0, "address": "192.168.50.7/24", "gateway": "192.168.50.1"}],
    "routes": [{"dst": "10.96.0.0/12", "gw": "192.168.50.1"}],
    "dns": {},
}


def full(version: str) -> dict[str, Any]:
    """FULL_1_1 as written in `version` (what survives the conversion)."""
    if version == "1.1.0":
        return copy.deepcopy(FULL_1_1)
    out = copy.deepcopy(FULL_1_0)
    out["cniVersion"] = version
    if tagged(version):
        out["ips"][0] = {"version": "4"} | out["ips"][0]
    return out


# -- reading and writing each version ------------------------------------------------------


@pytest.mark.parametrize("version", SUPPORTED)
def test_reads_bridge_result(version: str) -> None:
    assert Result.from_dict(bridge(version)) == replace(BRIDGE, cni_version=version)


@pytest.mark.parametrize("version", SUPPORTED)
def test_writes_bridge_result(version: str) -> None:
    assert BRIDGE.to_dict(version) == bridge(version)


@pytest.mark.parametrize("version", SUPPORTED)
def test_ips_version_tag_only_before_1_0(version: str) -> None:
    ips = BRIDGE.to_dict(version)["ips"]
    if tagged(version):
        assert [ip["version"] for ip in ips] == ["4", "6"]
    else:
        assert all("version" not in ip for ip in ips)


@pytest.mark.parametrize("version", SUPPORTED)
def test_reads_full_1_1_result(version: str) -> None:
    parsed = Result.from_dict(FULL_1_1)
    assert parsed.interfaces == (
        Interface(
            "net1",
            mac="0a:00:00:00:00:07",
            mtu=9000,
            sandbox="/var/run/netns/pod",
            socket_path="/var/run/vhost/net1.sock",
            pci_id="0000:3b:02.1",
        ),
    )
    assert parsed.routes == (
        Route(
            "10.96.0.0/12", "192.168.50.1", mtu=8950, advmss=8910, priority=100, table=0, scope=0
        ),
    )
    assert parsed.to_dict(version) == full(version)


def test_table_and_scope_zero_are_kept_in_1_1() -> None:
    # 0 is the main table / universe scope: meaningful, not "unset".
    route = Route("10.0.0.0/8", table=0, scope=0)
    assert route.to_dict("1.1.0") == {"dst": "10.0.0.0/8", "table": 0, "scope": 0}
    assert route.to_dict("1.0.0") == {"dst": "10.0.0.0/8"}


@pytest.mark.parametrize("version", SUPPORTED)
def test_dns_always_written(version: str) -> None:
    assert Result(version).to_dict(version) == {"cniVersion": version, "dns": {}}


@pytest.mark.parametrize("version", SUPPORTED)
def test_result_with_only_dns(version: str) -> None:
    raw = {"cniVersion": version, "dns": {"nameservers": ["10.96.0.10"]}}
    parsed = Result.from_dict(raw)
    assert parsed == Result(version, dns=DNS(nameservers=("10.96.0.10",)))
    assert parsed.to_dict(version) == raw


@pytest.mark.parametrize("version", SUPPORTED)
def test_result_with_only_version(version: str) -> None:
    assert Result.from_dict({"cniVersion": version}) == Result(version)


@pytest.mark.parametrize("version", SUPPORTED)
def test_abbreviated_ipam_result(version: str) -> None:
    # host-local: no interfaces, no interface index, a route without gw.
    ip = {"address": "10.1.0.5/16", "gateway": "10.1.0.1"}
    raw = {
        "cniVersion": version,
        "ips": [({"version": "4"} if tagged(version) else {}) | ip],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dns": {},
    }
    parsed = Result.from_dict(raw)
    assert parsed.interfaces == ()
    assert parsed.ips == (IPConfig("10.1.0.5/16", gateway="10.1.0.1"),)
    assert parsed.routes == (Route("0.0.0.0/0"),)
    assert parsed.to_dict(version) == raw


@pytest.mark.parametrize("version", [v for v in SUPPORTED if tagged(v)])
def test_untagged_ip_in_old_version_gets_tag(version: str) -> None:
    raw = {"cniVersion": version, "ips": [{"address": "fd00::5/64"}]}
    assert convert(raw, version)["ips"] == [{"version": "6", "address": "fd00::5/64"}]


@pytest.mark.parametrize("version", [v for v in SUPPORTED if not tagged(v)])
def test_version_key_in_1_x_is_ignored(version: str) -> None:
    raw = {"cniVersion": version, "ips": [{"version": "6", "address": "10.0.0.5/8"}]}
    assert convert(raw, version)["ips"] == [{"address": "10.0.0.5/8"}]


def test_unknown_keys_and_empty_strings_dropped() -> None:
    raw = {
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "eth0", "mac": "", "sandbox": "", "vendor": "x"}],
        "ips": [{"address": "10.0.0.5/8", "gateway": ""}],
        "dns": {"domain": "", "nameservers": []},
        "extra": {"k": 1},
    }
    assert convert(raw, "1.0.0") == {
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "eth0"}],
        "ips": [{"address": "10.0.0.5/8"}],
        "dns": {},
    }


def test_ip_helpers() -> None:
    assert IPConfig("10.1.0.5/16").family == 4
    assert IPConfig("10.1.0.5/16").ip == "10.1.0.5"
    assert IPConfig("fd00:0:0::5/64").family == 6
    assert IPConfig("fd00:0:0::5/64").ip == "fd00::5"


def test_models_are_frozen() -> None:
    with pytest.raises(FrozenInstanceError):
        BRIDGE.cni_version = "1.0.0"  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        BRIDGE.ips[0].address = "10.0.0.1/8"  # type: ignore[misc]


# -- conversions ---------------------------------------------------------------------------


@pytest.mark.parametrize(("src", "dst"), PAIRS)
def test_convert_bridge_every_direction(src: str, dst: str) -> None:
    assert convert(bridge(src), dst) == bridge(dst)


@pytest.mark.parametrize(("src", "dst"), PAIRS)
def test_convert_full_every_direction(src: str, dst: str) -> None:
    # A result that was ever below 1.1.0 has lost the 1.1.0 fields for good.
    expected = full(dst)
    if src != "1.1.0" and dst == "1.1.0":
        expected = full("1.0.0") | {"cniVersion": "1.1.0"}
    assert convert(full(src), dst) == expected


def test_convert_full_1_1_down_to_0_3_0_exactly() -> None:
    assert convert(FULL_1_1, "0.3.0") == {
        "cniVersion": "0.3.0",
        "interfaces": [
            {"name": "net1", "mac": "0a:00:00:00:00:07", "sandbox": "/var/run/netns/pod"}
        ],
        "ips": [
            {
                "version": "4",
                "interface": 0,
                "address": "192.168.50.7/24",
                "gateway": "192.168.50.1",
            }
        ],
        "routes": [{"dst": "10.96.0.0/12", "gw": "192.168.50.1"}],
        "dns": {},
    }


@pytest.mark.parametrize("make", [bridge, full], ids=["bridge", "full"])
@pytest.mark.parametrize(("first", "second"), PAIRS)
def test_round_trip_is_stable(
    make: Callable[[str], dict[str, Any]], first: str, second: str
) -> None:
    once = Result.from_dict(convert(make("1.1.0"), first))
    twice = Result.from_dict(once.to_dict(second))
    assert twice.to_dict(second) == once.to_dict(second)
    assert Result.from_dict(twice.to_dict(second)) == twice
    if second == "1.1.0" or first != "1.1.0":  # nothing lost on the way
        assert twice.to_dict(first) == once.to_dict(first)


# -- malformed results ---------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    """A mutation setting `a.b.0.c` (or deleting it when value is DELETE) in a raw result."""

    def apply(raw: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = raw
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return apply


DELETE = object()

MALFORMED: list[tuple[str, Mutation, str]] = [
    (
        "1.0.0",
        _set("ips.1.address", "10.0.0.300/24"),
        'result ips[1].address: "10.0.0.300/24" is not an IP address with prefix',
    ),
    (
        "1.0.0",
        _set("ips.0.address", "10.1.0.5"),
        'result ips[0].address: "10.1.0.5" is not an IP address with prefix',
    ),
    (
        "1.0.0",
        _set("ips.0.address", "10.1.0.5/255.255.0.0"),
        'result ips[0].address: "10.1.0.5/255.255.0.0" is not an IP address with prefix',
    ),
    (
        "1.0.0",
        _set("ips.1.address", "fe80::1%eth0/64"),
        'result ips[1].address: "fe80::1%eth0/64" is not an IP address with prefix',
    ),
    ("1.0.0", _set("ips.0.address", DELETE), "result ips[0].address: missing"),
    ("1.0.0", _set("ips.0.address", 5), "result ips[0].address: 5 is not a string"),
    (
        "1.0.0",
        _set("ips.0.gateway", "10.1.0"),
        'result ips[0].gateway: "10.1.0" is not an IP address',
    ),
    (
        "1.0.0",
        _set("ips.0.gateway", "10.1.0.1/16"),
        'result ips[0].gateway: "10.1.0.1/16" is not an IP address',
    ),
    (
        "1.0.0",
        _set("ips.1.interface", 3),
        "result ips[1].interface: 3 is not an index into interfaces (3 long)",
    ),
    (
        "1.0.0",
        _set("ips.0.interface", -1),
        "result ips[0].interface: -1 is out of range 0..4294967295",
    ),
    ("1.0.0", _set("ips.0.interface", "2"), 'result ips[0].interface: "2" is not an integer'),
    ("1.0.0", _set("ips.0.interface", True), "result ips[0].interface: true is not an integer"),
    ("1.0.0", _set("ips.0.interface", 2.0), "result ips[0].interface: 2.0 is not an integer"),
    (
        "1.0.0",
        _set("ips", {"address": "10.1.0.5/16"}),
        'result ips: {"address": "10.1.0.5/16"} is not a list',
    ),
    ("1.0.0", _set("ips.0", "10.1.0.5/16"), 'result ips[0]: "10.1.0.5/16" is not an object'),
    ("1.0.0", _set("interfaces.0.name", DELETE), "result interfaces[0].name: missing"),
    ("1.0.0", _set("interfaces.0.name", 7), "result interfaces[0].name: 7 is not a string"),
    ("1.0.0", _set("interfaces.1.mac", 1), "result interfaces[1].mac: 1 is not a string"),
    (
        "1.1.0",
        _set("interfaces.2.mtu", "1500"),
        'result interfaces[2].mtu: "1500" is not an integer',
    ),
    (
        "1.0.0",
        _set("interfaces", {"name": "eth0"}),
        'result interfaces: {"name": "eth0"} is not a list',
    ),
    ("1.0.0", _set("interfaces.1", "veth"), 'result interfaces[1]: "veth" is not an object'),
    (
        "1.0.0",
        _set("routes.0.dst", "default"),
        'result routes[0].dst: "default" is not an IP address with prefix',
    ),
    ("1.0.0", _set("routes.0.dst", DELETE), "result routes[0].dst: missing"),
    (
        "1.0.0",
        _set("routes.1.gw", "gateway"),
        'result routes[1].gw: "gateway" is not an IP address',
    ),
    ("1.1.0", _set("routes.0.scope", 256), "result routes[0].scope: 256 is out of range 0..255"),
    (
        "1.1.0",
        _set("routes.0.table", -1),
        "result routes[0].table: -1 is out of range 0..4294967295",
    ),
    ("1.1.0", _set("routes.0.mtu", 1.5), "result routes[0].mtu: 1.5 is not an integer"),
    ("1.0.0", _set("dns", "8.8.8.8"), 'result dns: "8.8.8.8" is not an object'),
    (
        "1.0.0",
        _set("dns.nameservers", "10.1.0.1"),
        'result dns.nameservers: "10.1.0.1" is not a list',
    ),
    ("1.0.0", _set("dns.search", ["a", 1]), "result dns.search[1]: 1 is not a string"),
    ("1.0.0", _set("dns.domain", ["a"]), 'result dns.domain: ["a"] is not a string'),
    ("0.4.0", _set("ips.0.version", "5"), 'result ips[0].version: "5" is not "4" or "6"'),
    ("0.3.1", _set("ips.0.version", 4), "result ips[0].version: 4 is not a string"),
    (
        "0.3.0",
        _set("ips.1.version", "4"),
        'result ips[1].version: "4" does not match address "fd00:10:1::5/64"',
    ),
    ("1.0.0", _set("cniVersion", DELETE), "result cniVersion: missing"),
    ("1.0.0", _set("cniVersion", 1), "result cniVersion: 1 is not a string"),
    (
        "1.0.0",
        _set("cniVersion", "1.0"),
        'result cniVersion: "1.0" is not a version MAJOR.MINOR.PATCH',
    ),
]


@pytest.mark.parametrize(("version", "mutate", "message"), MALFORMED)
def test_malformed_result(version: str, mutate: Mutation, message: str) -> None:
    raw = bridge(version)
    mutate(raw)
    with pytest.raises(DecodeFailure) as info:
        Result.from_dict(raw)
    assert message in info.value.msg
    assert info.value.msg.startswith("result ")
    assert info.value.code == 6


def test_result_not_an_object() -> None:
    with pytest.raises(DecodeFailure, match=r"^result: \[\] is not an object$"):
        Result.from_dict([])  # type: ignore[arg-type]


@pytest.mark.parametrize("version", ["0.0.1", "0.3.2", "2.0.0"])
def test_unsupported_result_version(version: str) -> None:
    with pytest.raises(IncompatibleVersion) as info:
        Result.from_dict({"cniVersion": version})
    assert info.value.msg == f'result cniVersion "{version}" is not supported'
    assert info.value.code == 1


@pytest.mark.parametrize("version", ["0.1.0", "0.2.0"])
def test_legacy_results_are_read_and_written_with_ip4_and_ip6(version: str) -> None:
    """0.1.0/0.2.0 (a netconf without cniVersion, an old NAD): the first address of each
    family with its gateway and the routes of that family; no interfaces."""
    legacy = {
        "cniVersion": version,
        "ip4": {
            "ip": "10.1.0.5/16",
            "gateway": "10.1.0.1",
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}],
        },
        "ip6": {"ip": "fd00:10:1::5/64", "routes": [{"dst": "::/0", "gw": "fd00:10:1::1"}]},
        "dns": {"nameservers": ["10.1.0.1"]},
    }
    parsed = Result.from_dict(legacy)
    assert parsed.interfaces == ()
    assert parsed.ips == (
        IPConfig("10.1.0.5/16", gateway="10.1.0.1"),
        IPConfig("fd00:10:1::5/64"),
    )
    assert parsed.routes == (Route("0.0.0.0/0", gw="10.1.0.1"), Route("::/0", gw="fd00:10:1::1"))
    assert parsed.to_dict(version) == legacy
    # From a modern result: the first address of each family, the routes by family.
    modern = bridge("1.0.0")
    assert convert(modern, version) == {
        "cniVersion": version,
        "ip4": {
            "ip": "10.1.0.5/16",
            "gateway": "10.1.0.1",
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}],
        },
        "ip6": {
            "ip": "fd00:10:1::5/64",
            "gateway": "fd00:10:1::1",
            "routes": [{"dst": "::/0", "gw": "fd00:10:1::1"}],
        },
        "dns": modern["dns"],
    }


def test_write_unsupported_version() -> None:
    with pytest.raises(IncompatibleVersion):
        BRIDGE.to_dict("0.3.2")
    with pytest.raises(InvalidConfig):
        convert(bridge("1.0.0"), "latest")
