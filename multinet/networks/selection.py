"""The networks a pod asks for: the `k8s.v1.cni.cncf.io/networks` and
`v1.multus-cni.io/default-network` annotations, in the JSON and the `ns/name@ifname` form.

Everything is checked here so that `plan` gets clean data and the user gets one error that
quotes the offending element. Elements are numbered from 1 in messages. As in Multus, unknown
JSON keys are ignored and a JSON null or "" counts as "not given" (Go's zero values), while an
empty part in the text form ("/name", "name@", "a,,b") is a typo and an error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from multinet.cni.errors import InvalidConfig
from multinet.cni.ifname import validate_ifname
from multinet.cni.result import parse_cidr, parse_ip
from multinet.cni.strictjson import JSONError, encodable, loads
from multinet.cni.strictjson import kind as _kind

NETWORKS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"
DEFAULT_NETWORK_ANNOTATION = "v1.multus-cni.io/default-network"

# DNS-1123 label: NAD names (as Multus checks them) and namespaces.
NAME_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_NAME = re.compile(NAME_PATTERN)
_NAMESPACE_MAX = 63
_HEX = frozenset("0123456789abcdefABCDEF")
_GUID = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){7}")
# Multus's rule for telling the two forms apart.
_JSON_MARKERS = frozenset('[{"')
_SHOW_MAX = 300


@dataclass(slots=True)
class NetworkSelection:
    """One requested attachment, validated; `raw` is the element as written (JSON form) or
    its JSON equivalent (text form)."""

    name: str
    namespace: str
    interface: str | None = None
    ips: list[str] = field(default_factory=list)
    mac: str | None = None
    infiniband_guid: str | None = None
    default_route: list[str] = field(default_factory=list)
    no_default_route: bool = False  # `default-route: []`: this network adds none
    source_routing: bool = False  # replies leave by the interface they arrived on
    port_mappings: list[dict[str, Any]] | None = None
    bandwidth: dict[str, Any] | None = None
    cni_args: dict[str, Any] | None = None
    device_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


def parse_networks(value: str, default_namespace: str) -> list[NetworkSelection]:
    """The `k8s.v1.cni.cncf.io/networks` annotation; namespace defaults to the pod's."""
    return _parse(value, default_namespace, "networks annotation")


def parse_default_network(value: str, default_namespace: str) -> NetworkSelection:
    """The `v1.multus-cni.io/default-network` annotation: exactly one network, either form."""
    found = _parse(value, default_namespace, "default-network annotation")
    if len(found) != 1:
        raise InvalidConfig(
            f"default-network annotation {_show(value.strip())}: "
            f"expected exactly one network, found {len(found)}"
        )
    return found[0]


def parse_element(raw: Mapping[str, Any], default_namespace: str, where: str) -> NetworkSelection:
    """One element of the JSON form, checked as in the annotation (`where` names it)."""
    return _element(dict(raw), default_namespace, where)


def _parse(value: str, default_namespace: str, what: str) -> list[NetworkSelection]:
    text = value.strip()
    if not text:
        return []
    if _JSON_MARKERS.isdisjoint(text):
        return [
            _text_element(token.strip(), default_namespace, f"{what} element {i}")
            for i, token in enumerate(text.split(","), 1)
        ]
    try:
        elements = loads(text)
    except JSONError as e:
        raise InvalidConfig(f"{what}: not valid JSON: {e}") from None
    if not isinstance(elements, list):
        raise InvalidConfig(
            f"{what}: expected a JSON list of objects, got {_kind(elements)} {_show(elements)}"
        )
    out = []
    for i, element in enumerate(elements, 1):
        where = f"{what} element {i} {_show(element)}"
        if not isinstance(element, dict):
            raise InvalidConfig(f"{where}: expected a JSON object, got {_kind(element)}")
        out.append(_element(element, default_namespace, where))
    return out


def _text_element(token: str, default_namespace: str, where: str) -> NetworkSelection:
    """`[namespace/]name[@interface]`, spaces around the parts allowed."""
    where = f"{where} {_show(token)}"
    if not token:
        _bad(where, "empty element (stray comma?)")
    for sep in "/@":
        if token.count(sep) > 1:
            _bad(where, f'more than one "{sep}"; expected [namespace/]name[@interface]')
    namespace, slash, rest = token.rpartition("/")
    if "@" in namespace:
        _bad(where, '"@" before "/"; expected [namespace/]name[@interface]')
    name, at, interface = rest.partition("@")
    raw: dict[str, Any] = {"name": name.strip()}
    for key, given, part in (("namespace", slash, namespace), ("interface", at, interface)):
        if given and not part.strip():
            _bad(where, f'empty {key} {"before" if key == "namespace" else "after"} "{given}"')
        if given:
            raw[key] = part.strip()
    return _element(raw, default_namespace, where)


def _element(raw: Mapping[str, Any], default_namespace: str, where: str) -> NetworkSelection:
    def bad(problem: str) -> NoReturn:
        _bad(where, problem)

    def text(key: str) -> str | None:
        value = raw.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            bad(f"{key} must be a string, got {_kind(value)} {_show(value)}")
        if not encodable(value) or "\x00" in value:
            bad(f"{key} {_show(value)} is not text: it holds a lone surrogate or a NUL")
        return value

    def obj(key: str) -> dict[str, Any] | None:
        value = raw.get(key)
        if value is not None and not isinstance(value, dict):
            bad(f"{key} must be an object, got {_kind(value)} {_show(value)}")
        return value

    def flag(key: str) -> bool:
        value = raw.get(key, False)
        if not isinstance(value, bool):
            bad(f"{key} must be true or false, got {_kind(value)} {_show(value)}")
        return value

    def addresses(key: str, cidr_ok: bool) -> list[str]:
        value = raw.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            bad(f"{key} must be a list, got {_kind(value)} {_show(value)}")
        expected = "an IP address or CIDR" if cidr_ok else "an IP address"
        for i, item in enumerate(value):
            ok = isinstance(item, str) and (
                parse_ip(item) is not None or (cidr_ok and parse_cidr(item) is not None)
            )
            if not ok:
                bad(f"{key}[{i}] {_show(item)} is not {expected}")
        return list(value)

    if raw.get("name") is None:
        bad("name is required")
    name = text("name") or ""
    if not _NAME.fullmatch(name):
        bad(f"name {_show(name)} does not match {NAME_PATTERN}")
    namespace = text("namespace")
    if namespace is not None and not _NAME.fullmatch(namespace):
        bad(f"namespace {_show(namespace)} does not match {NAME_PATTERN}")
    if namespace is not None and len(namespace) > _NAMESPACE_MAX:
        bad(f"namespace {_show(namespace)} is longer than {_NAMESPACE_MAX} characters")
    interface = text("interface") or text("interfaceRequest")  # the deprecated name
    if interface is not None and (problem := validate_ifname(interface)):
        bad(f"interface {_show(interface)} is invalid: {problem}")
    mac = text("mac")
    if mac is not None and not is_mac(mac):
        bad(
            f"mac {_show(mac)} is not a MAC address like 0a:58:0a:01:00:05 "
            "(6, 8 or 20 bytes, ':'- or '-'-separated, or dotted groups of 4 hex digits)"
        )
    guid = text("infiniband-guid")
    if guid is not None and not _GUID.fullmatch(guid):
        bad(f"infiniband-guid {_show(guid)} is not 8 colon-separated hex bytes")
    port_mappings = raw.get("portMappings")
    if port_mappings is not None and (
        not isinstance(port_mappings, list) or not all(isinstance(p, dict) for p in port_mappings)
    ):
        bad(f"portMappings must be a list of objects, got {_show(port_mappings)}")
    default_route = raw.get("default-route")
    return NetworkSelection(
        name=name,
        namespace=namespace or default_namespace,
        interface=interface,
        ips=addresses("ips", cidr_ok=True),
        mac=mac,
        infiniband_guid=guid,
        default_route=addresses("default-route", cidr_ok=False),
        no_default_route=default_route == [],
        source_routing=flag("source-routing"),
        port_mappings=port_mappings,
        bandwidth=obj("bandwidth"),
        cni_args=obj("cni-args"),
        device_id=text("deviceID"),
        raw=dict(raw),
    )


def is_mac(text: str) -> bool:
    """A hardware address as Go's net.ParseMAC (Multus) reads it: 6, 8 or 20 octets
    separated by ':' or '-', or 3, 4 or 10 dotted groups of 4 hex digits."""
    for sep, size in ((":", 2), ("-", 2), (".", 4)):
        parts = text.split(sep)
        counts = (3, 4, 10) if sep == "." else (6, 8, 20)
        if len(parts) in counts and all(len(p) == size and _HEX.issuperset(p) for p in parts):
            return True
    return False


def _bad(where: str, problem: str) -> NoReturn:
    raise InvalidConfig(f"{where}: {problem}")


def _show(value: Any) -> str:
    shown = json.dumps(value)
    return shown if len(shown) <= _SHOW_MAX else shown[: _SHOW_MAX - 3] + "..."
