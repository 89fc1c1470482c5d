"""Validate a CNI config or conflist (a NAD's spec.config) against the plugin schemas.

Each plugin is checked with jsonschema against `plugin-common.json` and its own
`plugin-<type>.json`, its `ipam` against `ipam-<type>.json`; the rules JSON Schema cannot
say (an address inside a subnet) are small checks below, in the same message style. A
plugin type without a schema is checked for structure only, with a warning. The per-pod
loader (`cni.chain.load`) runs too, so everything ADD would refuse is reported here.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import jsonschema

from multinet import schemas
from multinet.cni import chain, version
from multinet.cni.errors import InvalidConfig
from multinet.config.spelling import did_you_mean
from multinet.networks.selection import is_mac

ERROR = "error"
WARNING = "warning"

_PCI = re.compile(r"^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$")


@dataclass(frozen=True)
class Problem:
    """One finding: `path` is a JSON path inside the config ("plugins[0].ipam.subnet")."""

    path: str
    message: str
    severity: str = ERROR

    def render(self, prefix: str = "") -> str:
        where = ".".join(p for p in (prefix, self.path) if p).replace(".[", "[")
        return f"{where}: {self.message}" if where else self.message


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False) if "/" in text else None
    except ValueError:
        return None


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _whereabouts_range(text: str) -> bool:
    start, dash, rest = text.partition("-")
    if not dash:
        return _network(text) is not None
    return _address(start) is not None and _network(rest) is not None


FORMATS = jsonschema.FormatChecker(formats=())
FORMATS.checks("cidr")(lambda v: not isinstance(v, str) or _network(v) is not None)
FORMATS.checks("ip")(lambda v: not isinstance(v, str) or _address(v) is not None)
FORMATS.checks("mac")(lambda v: not isinstance(v, str) or is_mac(v))
FORMATS.checks("pci")(lambda v: not isinstance(v, str) or bool(_PCI.match(v)))
FORMATS.checks("whereabouts-range")(lambda v: not isinstance(v, str) or _whereabouts_range(v))

_FORMAT_TEXT = {
    "cidr": "is not a CIDR (address/prefix, like 10.1.0.0/24)",
    "ip": "is not an IP address",
    "mac": "is not a MAC address like 0a:58:0a:01:00:05",
    "pci": "is not a PCI address like 0000:03:02.0",
    "whereabouts-range": "is not a range (a CIDR, or START-END/PREFIX)",
}


def plugin_types() -> list[str]:
    """The plugin types that have a schema."""
    return sorted(_names("plugin-") - {"common"})


def ipam_types() -> list[str]:
    return sorted(_names("ipam-"))


@cache
def _names(prefix: str) -> frozenset[str]:
    from importlib import resources

    files = resources.files(schemas.__name__).iterdir()
    return frozenset(
        f.name[len(prefix) : -len(".json")]
        for f in files
        if f.name.startswith(prefix) and f.name.endswith(".json")
    )


def schema_for(kind: str, type_name: str) -> dict[str, Any] | None:
    """The schema of a plugin ("plugin") or IPAM ("ipam") type, or None."""
    if type_name not in _names(f"{kind}-"):
        return None
    return schemas.load(f"{kind}-{type_name}.json")


@cache
def _validator(name: str) -> jsonschema.protocols.Validator:
    return jsonschema.Draft202012Validator(schemas.load(name), format_checker=FORMATS)


def _join(base: str, parts: Sequence[Any]) -> str:
    out = base
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


# A person's message for each kind of jsonschema error (by its validator keyword), or
# None to keep jsonschema's own. Each takes the error and its path, and gives the path the
# message is about (dependentRequired: the key that needs the other) and the message.
_Said = tuple[list[Any], str] | None


def _required(err: jsonschema.ValidationError, path: list[Any]) -> _Said:
    missing = re.search(r"'([^']+)' is a required property", err.message)
    return path, f"required key {missing.group(1) if missing else err.message!r} is missing"


def _dependent(err: jsonschema.ValidationError, path: list[Any]) -> _Said:
    found = re.search(r"'([^']+)' is a dependency of '([^']+)'", err.message)
    return ([*path, found.group(2)], f"needs {found.group(1)!r} too") if found else None


def _any_of(err: jsonschema.ValidationError, path: list[Any]) -> _Said:
    if not all("required" in s for s in err.validator_value):
        return None
    return path, "needs " + " or ".join(repr(s["required"][0]) for s in err.validator_value)


def _not(err: jsonschema.ValidationError, path: list[Any]) -> _Said:
    if "required" not in err.validator_value:
        return None
    keys = " and ".join(repr(k) for k in err.validator_value["required"])
    return path, f"{keys} cannot be used together"


def _pattern(err: jsonschema.ValidationError, path: list[Any]) -> _Said:
    schema = err.schema if isinstance(err.schema, Mapping) else {}
    if schema.get("pattern") != "^[^/\\u0000]+$":
        return None
    return path, f"{_show(err.instance)} must be a file name (no '/'), not a path"


def _empty(err: jsonschema.ValidationError, path: list[Any]) -> _Said:
    return (path, "must not be empty") if err.instance in ("", []) else None


_MESSAGES: dict[str, Callable[[jsonschema.ValidationError, list[Any]], _Said]] = {
    "required": _required,
    "dependentRequired": _dependent,
    "type": lambda e, path: (
        path, f"expected {' or '.join(_list(e.validator_value))}, got {_show(e.instance)}"
    ),
    "enum": lambda e, path: (
        path, f"{_show(e.instance)} is not one of {', '.join(_show(x) for x in e.validator_value)}"
    ),
    "minimum": lambda e, path: (
        path, f"{_show(e.instance)} is less than the minimum {e.validator_value}"
    ),
    "maximum": lambda e, path: (
        path, f"{_show(e.instance)} is more than the maximum {e.validator_value}"
    ),
    "minLength": _empty,
    "minItems": _empty,
    "format": lambda e, path: (
        path, f"{_show(e.instance)} {_FORMAT_TEXT.get(e.validator_value, 'is malformed')}"
    ),
    "anyOf": _any_of,
    "not": _not,
    "pattern": _pattern,
}  # fmt: skip


def _message(err: jsonschema.ValidationError) -> tuple[list[Any], str]:
    """A person's message for a jsonschema error, and the path it is about."""
    path = list(err.absolute_path)
    said = _MESSAGES[err.validator](err, path) if err.validator in _MESSAGES else None
    return said if said is not None else (path, err.message)


def _list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _schema_problems(name: str, value: Any, base: str) -> list[Problem]:
    errors = sorted(_validator(name).iter_errors(value), key=lambda e: list(e.absolute_path))
    out = []
    for err in errors:
        path, message = _message(err)
        out.append(Problem(_join(base, path), message))
    return out


# Plugins that read their keys exactly (multinet's own, in Python); the reference plugins
# are Go, whose encoding/json matches a key case-insensitively ("isgateway" is isGateway).
_EXACT_KEYS = frozenset({"multinet-sriov"})
# Keys any plugin may carry beyond plugin-common.json's: the ones multinet injects for a
# device (attachments.with_selection) and the SR-IOV plugins' log settings.
_INJECTED = frozenset({"pciBusID", "deviceID", "logLevel", "logFile"})


def _unknown_keys(
    value: Mapping[str, Any], known: set[str], base: str, what: str, severity: str, exact: bool
) -> list[Problem]:
    """A key the plugin has no use for: `severity` (a typo the plugin would silently
    ignore), with the closest known key; a key Go reads case-insensitively is a warning."""
    out = []
    by_case = {k.lower(): k for k in known}
    for key in value:
        if key in known:
            continue
        if not exact and key.lower() in by_case:
            right = by_case[key.lower()]
            message = (
                f'{what} reads it as "{right}" (Go matches keys case-insensitively): '
                f'write "{right}"'
            )
            out.append(Problem(_join(base, [key]), message, WARNING))
            continue
        hint = did_you_mean(key, known)
        message = f"unknown key for {what}{hint}: the plugin would ignore it"
        if not hint:
            message += f" (its keys: multinetctl nad explain {what.split()[0]})"
        out.append(Problem(_join(base, [key]), message, severity))
    return out


def check_plugin(plugin: Mapping[str, Any], base: str, unknown_keys: str = ERROR) -> list[Problem]:
    """One plugin of a config: its schema, its IPAM's, the rules across keys. An unknown
    key of a plugin that has a schema is of severity `unknown_keys`."""
    out = _schema_problems("plugin-common.json", plugin, base)
    type_name = plugin.get("type")
    if not isinstance(type_name, str) or out:
        return out
    schema = schema_for("plugin", type_name)
    if schema is None:
        out.append(
            Problem(
                _join(base, ["type"]),
                f"no schema for plugin type {type_name!r}: only the structure is checked "
                f"(known types: {', '.join(plugin_types())})",
                WARNING,
            )
        )
    else:
        out += _schema_problems(f"plugin-{type_name}.json", plugin, base)
        known = set(schema["properties"]) | set(schemas.load("plugin-common.json")["properties"])
        exact = type_name in _EXACT_KEYS
        out += _unknown_keys(plugin, known | _INJECTED, base, type_name, unknown_keys, exact)
        out += list(_plugin_rules(type_name, plugin, base))
    ipam = plugin.get("ipam")
    if isinstance(ipam, Mapping) and isinstance(ipam.get("type"), str):
        out += check_ipam(ipam, _join(base, ["ipam"]), unknown_keys)
    return out


def check_ipam(ipam: Mapping[str, Any], base: str, unknown_keys: str = ERROR) -> list[Problem]:
    type_name = ipam["type"]
    schema = schema_for("ipam", type_name)
    if schema is None:
        return [
            Problem(
                _join(base, ["type"]),
                f"no schema for IPAM type {type_name!r}: only the structure is checked "
                f"(known types: {', '.join(ipam_types())})",
                WARNING,
            )
        ]
    out = _schema_problems(f"ipam-{type_name}.json", ipam, base)
    for key, spec in schema["properties"].items():  # accepted, not acted on yet
        if "x-not-yet" in spec and ipam.get(key) not in (None, False, "", [], {}):
            out.append(Problem(_join(base, [key]), f"not yet: {spec['x-not-yet']}", WARNING))
    known = set(schema["properties"]) | {"type"}
    out += _unknown_keys(ipam, known, base, f"{type_name} IPAM", unknown_keys, exact=False)
    if not [p for p in out if p.severity == ERROR]:
        out += list(_ipam_rules(type_name, ipam, base))
    return out


def _plugin_rules(type_name: str, plugin: Mapping[str, Any], base: str) -> Iterator[Problem]:
    if type_name == "bridge":
        for i, trunk in enumerate(plugin.get("vlanTrunk") or []):
            if not isinstance(trunk, Mapping):
                continue
            where = _join(base, ["vlanTrunk", i])
            if "id" in trunk and ("minID" in trunk or "maxID" in trunk):
                yield Problem(where, "give either id or minID and maxID, not both")
            elif "id" not in trunk and ("minID" not in trunk or "maxID" not in trunk):
                yield Problem(where, "needs id, or minID and maxID")
            elif "minID" in trunk and trunk["minID"] > trunk["maxID"]:
                yield Problem(where, f"minID {trunk['minID']} is above maxID {trunk['maxID']}")
        if plugin.get("vlan") and plugin.get("vlanTrunk"):
            yield Problem(_join(base, ["vlanTrunk"]), "cannot be used with vlan")
    rate = ("min_tx_rate", "max_tx_rate")
    if type_name in ("sriov", "multinet-sriov") and all(plugin.get(k) for k in rate):
        if plugin["min_tx_rate"] > plugin["max_tx_rate"]:
            yield Problem(
                _join(base, ["min_tx_rate"]),
                f"{plugin['min_tx_rate']} is above max_tx_rate {plugin['max_tx_rate']}",
            )


def _range_problems(
    rng: Mapping[str, Any], where: str, keys: tuple[str, str, str, str]
) -> Iterator[Problem]:
    subnet_key, start_key, end_key, gw_key = keys
    text = rng[subnet_key]
    net = _network(text.rpartition("-")[2] if subnet_key == "range" else text)
    if net is None:
        return
    addrs = {}
    for key in (start_key, end_key, gw_key):
        if key in rng:
            addr = ipaddress.ip_address(rng[key])
            addrs[key] = addr
            if addr not in net:
                yield Problem(_join(where, [key]), f"{rng[key]} is outside subnet {net}")
    start, end = addrs.get(start_key), addrs.get(end_key)
    if start is not None and end is not None and start.version == end.version:
        if int(start) > int(end):
            yield Problem(
                _join(where, [start_key]), f"{rng[start_key]} is after {end_key} {rng[end_key]}"
            )


def _ipam_rules(type_name: str, ipam: Mapping[str, Any], base: str) -> Iterator[Problem]:
    hl = ("subnet", "rangeStart", "rangeEnd", "gateway")
    if type_name == "host-local":
        if "subnet" in ipam:
            yield from _range_problems(ipam, base, hl)
        for i, rangeset in enumerate(ipam.get("ranges", [])):
            versions: set[int] = set()
            for j, rng in enumerate(rangeset):
                where = _join(base, ["ranges", i, j])
                yield from _range_problems(rng, where, hl)
                net = _network(rng["subnet"])
                if net is not None:
                    versions.add(net.version)
            if len(versions) > 1:
                yield Problem(
                    _join(base, ["ranges", i]),
                    "mixes IPv4 and IPv6 subnets: a range set gives one address; "
                    "put each family in its own set",
                )
    elif type_name in ("whereabouts", "multinet-ipam"):
        wa = ("range", "range_start", "range_end", "gateway")
        if "range" in ipam:
            yield from _range_problems(ipam, base, wa)
        for i, rng in enumerate(ipam.get("ipRanges", [])):
            yield from _range_problems(rng, _join(base, ["ipRanges", i]), (*wa[:3], "-"))
    elif type_name == "static":
        for i, entry in enumerate(ipam.get("addresses", [])):
            net = _network(entry["address"])
            if "gateway" in entry and net is not None:
                gw = ipaddress.ip_address(entry["gateway"])
                if gw.version != net.version:
                    yield Problem(
                        _join(base, ["addresses", i, "gateway"]),
                        f"{entry['gateway']} is not of the address's family ({entry['address']})",
                    )


def check_config(
    raw: Any, default_name: str | None = None, unknown_keys: str = ERROR
) -> list[Problem]:
    """Every problem of a config or conflist (parsed JSON), errors and warnings; an unknown
    key of a plugin or IPAM type that has a schema is of severity `unknown_keys`."""
    out = _schema_problems("conflist.json", raw, "")
    if [p for p in out if p.severity == ERROR]:
        return out
    plugins = raw["plugins"] if "plugins" in raw else [raw]
    for i, plugin in enumerate(plugins):
        if isinstance(plugin, Mapping):
            out += check_plugin(plugin, f"plugins[{i}]" if "plugins" in raw else "", unknown_keys)
    if "plugins" in raw:
        for key in ("type", "ipam"):
            if key in raw:
                out.append(
                    Problem(
                        key, "a conflist's top-level key is ignored: put it in a plugin", WARNING
                    )
                )
    versions = raw.get("cniVersions") or [raw.get("cniVersion")]
    for i, v in enumerate(versions):
        if isinstance(v, str) and v not in version.ACCEPTED and "cniVersion" not in str(out):
            key = f"cniVersions[{i}]" if "cniVersions" in raw else "cniVersion"
            out.append(
                Problem(key, f"{v} is not a supported CNI version ({', '.join(version.ACCEPTED)})")
            )
    if not [p for p in out if p.severity == ERROR]:
        try:  # what ADD itself refuses (a version it does not support...)
            chain.load(raw, default_name=default_name, default_version="1.0.0")
        except InvalidConfig as e:
            out.append(Problem("", e.msg))
    return out


def parse_and_check(
    text: str, default_name: str | None = None, unknown_keys: str = ERROR
) -> list[Problem]:
    """A spec.config string: JSON first (with the line and column of a syntax error)."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        return [Problem("", f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}")]
    return check_config(raw, default_name, unknown_keys)
