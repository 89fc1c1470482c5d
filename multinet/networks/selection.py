"""The networks a pod asks for: the `k8s.v1.cni.cncf.io/networks` and
`v1.multus-cni.io/default-network` annotations, in the JSON and the `ns/name@ifname` form.

Everything is checked here so that `plan` gets clean data and the user gets one error that
quotes the offending element. Elements are numbered from 1 in messages. As in Multus, unknown
JSON keys are ignored (each is named in `unknown_keys`, for a warning) and a JSON null or ""
counts as "not given" (Go's zero values), while an empty part in the text form ("/name",
"name@", "a,,b") is a typo and an error. Each known key has its check in one table (`KEYS`).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping

from multinet.cni.errors import InvalidConfig
from multinet.cni.ifname import validate_ifname
from multinet.cni.result import parse_cidr, parse_ip
from multinet.cni.strictjson import JSONError, encodable, loads
from multinet.cni.strictjson import kind as _kind
from multinet.config.spelling import did_you_mean
from multinet.record import field, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NamedTuple, NoReturn
else:
    from multinet.record import NamedTuple

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


@record()
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
    # One message per key the element has that no one reads (a typo: "interfce"): ADD
    # warns (Multus ignores them), `multinetctl annotation validate` refuses.
    unknown_keys: list[str] = field(default_factory=list)


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


# -- one element's keys: each with its check -------------------------------------------
# A check takes the key and its value (never None: "not given") and returns what is wrong
# with it, or None.
if TYPE_CHECKING:
    Check = Callable[[str, Any], str | None]


class Key(NamedTuple):  # not a dataclass: ~1 ms less of thin mode's per-call imports
    check: Check
    text: bool = False  # a string, whose "" is Go's zero value: "not given"
    fallback_for: str = ""  # read (and checked) only when this other key is not given


def _text(more: Callable[[str, str], str | None] | None = None) -> Key:
    def check(key: str, value: Any) -> str | None:
        if not isinstance(value, str):
            return f"{key} must be a string, got {_kind(value)} {_show(value)}"
        if not encodable(value) or "\x00" in value:
            return f"{key} {_show(value)} is not text: it holds a lone surrogate or a NUL"
        return more(key, value) if more is not None else None

    return Key(check, text=True)


def _dns_name(key: str, value: str) -> str | None:
    if not _NAME.fullmatch(value):
        return f"{key} {_show(value)} does not match {NAME_PATTERN}"
    if len(value) > _NAMESPACE_MAX:
        return f"{key} {_show(value)} is longer than {_NAMESPACE_MAX} characters"
    return None


def _ifname(key: str, value: str) -> str | None:
    problem = validate_ifname(value)
    return f"interface {_show(value)} is invalid: {problem}" if problem else None


def _mac(key: str, value: str) -> str | None:
    if is_mac(value):
        return None
    return (
        f"{key} {_show(value)} is not a MAC address like 0a:58:0a:01:00:05 "
        "(6, 8 or 20 bytes, ':'- or '-'-separated, or dotted groups of 4 hex digits)"
    )


def _guid(key: str, value: str) -> str | None:
    if _GUID.fullmatch(value):
        return None
    return f"{key} {_show(value)} is not 8 colon-separated hex bytes"


def _object(key: str, value: Any) -> str | None:
    if isinstance(value, dict):
        return None
    return f"{key} must be an object, got {_kind(value)} {_show(value)}"


def _flag(key: str, value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    return f"{key} must be true or false, got {_kind(value)} {_show(value)}"


def _objects(key: str, value: Any) -> str | None:
    if isinstance(value, list) and all(isinstance(p, dict) for p in value):
        return None
    return f"{key} must be a list of objects, got {_show(value)}"


def _addresses(cidr_ok: bool) -> Key:
    expected = "an IP address or CIDR" if cidr_ok else "an IP address"

    def check(key: str, value: Any) -> str | None:
        if not isinstance(value, list):
            return f"{key} must be a list, got {_kind(value)} {_show(value)}"
        for i, item in enumerate(value):
            ok = isinstance(item, str) and (
                parse_ip(item) is not None or (cidr_ok and parse_cidr(item) is not None)
            )
            if not ok:
                return f"{key}[{i}] {_show(item)} is not {expected}"
        return None

    return Key(check)


# Every key of an element, in the order they are checked (the first problem is reported).
# `name` must match the pattern; a namespace only the pattern and length of a label.
KEYS: dict[str, Key] = {
    "name": _text(lambda key, value: None if _NAME.fullmatch(value) else
                  f"{key} {_show(value)} does not match {NAME_PATTERN}"),
    "namespace": _text(_dns_name),
    "interface": _text(_ifname),
    "interfaceRequest": Key(_text(_ifname).check, text=True, fallback_for="interface"),
    "mac": _text(_mac),
    "infiniband-guid": _text(_guid),
    "portMappings": Key(_objects),
    "ips": _addresses(cidr_ok=True),
    "default-route": _addresses(cidr_ok=False),
    "source-routing": Key(_flag),
    "bandwidth": Key(_object),
    "cni-args": Key(_object),
    "deviceID": _text(),
    # NPWG's claim of persistent IPs (KubeVirt with OVN-Kubernetes): multinet allocates
    # none, so ADD ignores it, as Multus does; known, so not taken for a typo.
    "ipam-claim-reference": _text(),
}  # fmt: skip


def _given(raw: Mapping[str, Any], key: str) -> Any:
    spec, value = KEYS[key], raw.get(key)
    if spec.fallback_for and _given(raw, spec.fallback_for) is not None:
        return None
    return None if value == "" and spec.text and key != "name" else value


def _element(raw: Mapping[str, Any], default_namespace: str, where: str) -> NetworkSelection:
    if raw.get("name") is None:
        _bad(where, "name is required")
    for key, spec in KEYS.items():
        value = _given(raw, key)
        if value is not None and (problem := spec.check(key, value)):
            _bad(where, problem)
    get = functools.partial(_given, raw)
    default_route = raw.get("default-route")
    return NetworkSelection(
        name=raw["name"],
        namespace=get("namespace") or default_namespace,
        interface=get("interface") or get("interfaceRequest"),  # the deprecated name
        ips=list(get("ips") or []),
        mac=get("mac"),
        infiniband_guid=get("infiniband-guid"),
        default_route=list(get("default-route") or []),
        no_default_route=default_route == [],
        source_routing=bool(get("source-routing")),
        port_mappings=get("portMappings"),
        bandwidth=get("bandwidth"),
        cni_args=get("cni-args"),
        device_id=get("deviceID"),
        raw=dict(raw),
        unknown_keys=[
            f"{where}: unknown key {_show(key)}{did_you_mean(key, KEYS)}: ADD ignores it"
            for key in raw
            if key not in KEYS
        ],
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
