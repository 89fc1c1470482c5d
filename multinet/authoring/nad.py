"""NetworkAttachmentDefinition documents: validate them, create them, explain plugin keys."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from multinet.authoring import configcheck
from multinet.authoring.configcheck import ERROR as ERROR
from multinet.authoring.configcheck import WARNING as WARNING
from multinet.authoring.configcheck import Problem
from multinet.config.spelling import did_you_mean
from multinet.networks.selection import NAME_PATTERN

API_VERSION = "k8s.cni.cncf.io/v1"
KIND = "NetworkAttachmentDefinition"
# metadata.name of a NAD: a DNS-1123 subdomain (the API server's rule); pods name it in
# their annotation, which Multus checks against the label pattern.
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(NAME_PATTERN)


@dataclass(frozen=True)
class Finding:
    """A problem of one document: `document` is "FILE#N (namespace/name)"."""

    document: str
    path: str
    message: str
    severity: str = ERROR

    def line(self) -> str:
        """'DOCUMENT: SEVERITY: PATH: MESSAGE' (an empty part left out)."""
        return ": ".join(p for p in (self.document, self.severity, self.path, self.message) if p)

    def text(self) -> str:
        """'DOCUMENT: PATH: MESSAGE' (an empty part left out)."""
        return ": ".join(p for p in (self.document, self.path, self.message) if p)

    def to_dict(self) -> dict[str, str]:
        return {
            "document": self.document,
            "path": self.path,
            "message": self.message,
            "severity": self.severity,
        }


SPEC_KEYS = ("config",)  # the CRD's: the API server drops any other key of spec


def check_nad(obj: Any, unknown_keys: str = ERROR) -> list[Problem]:
    """Every problem of one NAD object; paths are from the object's root (spec.config...).
    An unknown key of a plugin or IPAM type that has a schema is of severity `unknown_keys`
    (the webhook's --unknown-plugin-keys=warn makes it a warning)."""
    if not isinstance(obj, Mapping):
        return [Problem("", f"expected a YAML mapping (a Kubernetes object), got {_kind(obj)}")]
    if obj.get("kind") != KIND:
        return [Problem("kind", f"{obj.get('kind')!r} is not a {KIND}")]
    out: list[Problem] = []
    if obj.get("apiVersion") != API_VERSION:
        out.append(Problem("apiVersion", f"{obj.get('apiVersion')!r} is not {API_VERSION!r}"))
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    out += _name_problems(name)
    spec = obj.get("spec")
    if spec is None or spec == {}:
        message = "empty: the config is the file in confDir whose name is the NAD's (on every node)"
        return [*out, Problem("spec", message, WARNING)]
    if not isinstance(spec, Mapping):
        return [*out, Problem("spec", f"expected a mapping, got {_kind(spec)}")]
    unknown = [
        Problem(
            f"spec.{key}",
            f"unknown key{did_you_mean(str(key), SPEC_KEYS)}: a NAD's spec has only config (the "
            "API server drops any other key)",
        )
        for key in spec
        if key not in SPEC_KEYS
    ]
    out += unknown
    config = spec.get("config")
    if config is None or (isinstance(config, str) and not config.strip()):
        if not unknown:  # a misspelt config is not an empty one
            out.append(
                Problem(
                    "spec.config", "empty: the config is the confDir file of that name", WARNING
                )
            )
        return out
    if not isinstance(config, str):
        return [*out, Problem("spec.config", f"must be a string holding JSON, got {_kind(config)}")]
    default_name = name if isinstance(name, str) else None
    return out + [
        Problem(_prefix("spec.config", p.path), p.message, p.severity)
        for p in configcheck.parse_and_check(config, default_name, unknown_keys)
    ]


def _name_problems(name: Any) -> list[Problem]:
    if not isinstance(name, str) or not name:
        return [Problem("metadata.name", "required key 'name' is missing")]
    if not _SUBDOMAIN.match(name) or len(name) > 253:
        return [Problem("metadata.name", f"{name!r} is not a DNS-1123 subdomain")]
    if not _LABEL.match(name):
        message = (
            f"{name!r} does not match {NAME_PATTERN}: pods cannot name it in their networks "
            "annotation"
        )
        return [Problem("metadata.name", message, WARNING)]
    return []


def _prefix(prefix: str, path: str) -> str:
    if not path:
        return prefix
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def document_label(source: str, index: int, obj: Any) -> str:
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    if isinstance(meta, Mapping) and meta.get("name"):
        return f"{source}#{index} ({meta.get('namespace', 'default')}/{meta['name']})"
    return f"{source}#{index}"


MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def manifest_files(directory: str) -> list[str]:
    """The YAML (and JSON) files of a directory, by name: what `nad validate DIR` and
    `annotation validate --nads DIR` read."""
    return [
        os.path.join(directory, entry)
        for entry in sorted(os.listdir(directory))
        if entry.endswith(MANIFEST_SUFFIXES) and os.path.isfile(os.path.join(directory, entry))
    ]


def _yaml_error(e: Exception) -> str:
    """PyYAML's error as one line, at the file's line and column (its own text names the
    stream "<unicode string>")."""
    if isinstance(e, yaml.MarkedYAMLError) and e.problem_mark is not None:
        mark = e.problem_mark
        context = f" ({e.context})" if e.context else ""
        return (
            f"not valid YAML at line {mark.line + 1} column {mark.column + 1}: {e.problem}{context}"
        )
    return f"not valid YAML: {e}".replace("\n", " ")


def load_documents(text: str, source: str) -> tuple[list[tuple[str, Any]], list[Finding]]:
    """The non-empty documents of a YAML stream, labelled; a YAML error is a finding. A
    List (kubectl get -o yaml) is opened into its items."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except RecursionError:  # the YAML composer recurses per nesting level
        return [], [Finding(source, "", "not valid YAML: nested too deep")]
    except (yaml.YAMLError, ValueError) as e:  # ValueError: a scalar such as 2001-13-45
        return [], [Finding(source, "", _yaml_error(e))]
    out: list[tuple[str, Any]] = []
    index = 0
    for doc in docs:
        items = doc.get("items") if isinstance(doc, Mapping) and doc.get("kind") == "List" else None
        for item in items if isinstance(items, list) else [doc]:
            index += 1
            out.append((document_label(source, index, item), item))
    return out, []


def validate_text(text: str, source: str, *, only_nads: bool = False) -> list[Finding]:
    """Findings of every NAD in a YAML stream (other kinds are an error, or skipped)."""
    docs, findings = load_documents(text, source)
    for label, obj in docs:
        if only_nads and not (isinstance(obj, Mapping) and obj.get("kind") == KIND):
            continue
        findings += [Finding(label, p.path, p.message, p.severity) for p in check_nad(obj)]
    if not docs and not findings:
        findings.append(Finding(source, "", "no YAML document in it"))
    return findings


# -- create -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Placeholder:
    """A template value the user must replace: an example, not a default."""

    value: Any
    what: str  # what belongs there


_MASTER = _Placeholder("eth0", "the node's interface to attach to")
_SUBNET = _Placeholder("10.10.0.0/24", "the subnet to give the pods' addresses from")
TEMPLATES: dict[str, dict[str, Any]] = {
    "bridge": {"bridge": "br-{name}", "ipam": "host-local"},
    "macvlan": {"master": _MASTER, "mode": "bridge", "ipam": "host-local"},
    "ipvlan": {"master": _MASTER, "mode": "l2", "ipam": "host-local"},
    "vlan": {
        "master": _MASTER,
        "vlanId": _Placeholder(100, "the VLAN ID (0-4094)"),
        "ipam": "host-local",
    },
    "host-device": {
        "device": _Placeholder("eth1", "the node's device to move into the pod"),
        "ipam": "host-local",
    },
    "ptp": {"ipMasq": True, "ipam": "host-local"},
    "multinet-sriov": {"ipam": "host-local"},
    "sriov": {"ipam": "host-local"},
}
IPAM_TEMPLATES: dict[str, dict[str, Any]] = {
    "host-local": {"ranges": [[{"subnet": _SUBNET}]]},
    "static": {
        "addresses": [{"address": _Placeholder("10.10.0.10/24", "the pod's address (CIDR)")}]
    },
    "dhcp": {},
    "whereabouts": {"range": _SUBNET},
    "multinet-ipam": {"range": _SUBNET},
}


@dataclass(frozen=True)
class Placeholder:
    """A value of the created config that is an example: `path` in spec.config."""

    path: str
    value: Any
    what: str

    def render(self) -> str:
        settable = self.path.split("[")[0]  # --set reaches no list item: its list
        return (
            f"spec.config.{self.path} is {json.dumps(self.value)}: replace it with {self.what} "
            f"(--set {settable}=...)"
        )


@dataclass(frozen=True)
class Created:
    nad: dict[str, Any]
    problems: list[Problem]  # errors and warnings of the NAD, as `nad validate` gives them
    placeholders: list[Placeholder]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == ERROR]


def _value(text: str) -> Any:
    """A --set value: JSON when it parses (numbers, true, lists...), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _set(config: dict[str, Any], dotted: str, value: Any) -> None:
    node = config
    *parents, last = dotted.split(".")
    for key in parents:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[last] = value


def _fill(node: Any, path: str, found: list[Placeholder]) -> Any:
    """The template with its placeholders' values; each placeholder into `found`."""
    if isinstance(node, _Placeholder):
        found.append(Placeholder(path, node.value, node.what))
        return node.value
    if isinstance(node, dict):
        return {k: _fill(v, f"{path}.{k}" if path else k, found) for k, v in node.items()}
    if isinstance(node, list):
        return [_fill(v, f"{path}[{i}]", found) for i, v in enumerate(node)]
    return node


def _covers(key: str, path: str) -> bool:
    return path == key or path.startswith((f"{key}.", f"{key}["))


def create(
    plugin_type: str, name: str, namespace: str = "default", settings: Sequence[str] = ()
) -> Created:
    """A NAD for a plugin type with --set key=value overrides (dotted keys: ipam.type=static),
    the problems of the result and the template values left to replace."""
    config: dict[str, Any] = {"cniVersion": "1.0.0", "name": name, "type": plugin_type}
    template = dict(TEMPLATES.get(plugin_type, {}))
    ipam_type = template.pop("ipam", None)
    found: list[Placeholder] = []
    config.update(
        {k: (v.format(name=name) if isinstance(v, str) else v) for k, v in template.items()}
    )
    if plugin_type == "bridge":
        config["bridge"] = config["bridge"][:15]
    overrides = []
    for item in settings:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        overrides.append((key, _value(text)))
    for key, value in overrides:  # ipam.type first: it picks the IPAM template
        if key == "ipam.type":
            ipam_type = value
    if ipam_type is not None:
        config["ipam"] = {"type": ipam_type, **IPAM_TEMPLATES.get(str(ipam_type), {})}
    config = _fill(config, "", found)
    for key, value in overrides:
        _set(config, key, value)
    nad = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"config": json.dumps(config, indent=2)},
    }
    left = [p for p in found if not any(_covers(key, p.path) for key, _ in overrides)]
    return Created(nad, check_nad(nad), left)


class _Literal(str):
    """spec.config as a YAML block scalar (|), the way people write it."""


class _Dumper(yaml.SafeDumper):
    pass


def _literal(dumper: yaml.SafeDumper, data: _Literal) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")


_Dumper.add_representer(_Literal, _literal)


def to_yaml(nad: Mapping[str, Any]) -> str:
    out = {**nad, "spec": {"config": _Literal(nad["spec"]["config"] + "\n")}}
    return yaml.dump(out, Dumper=_Dumper, sort_keys=False)


# -- explain ------------------------------------------------------------------------


def explain(type_name: str, key: str | None = None) -> str:
    """A plugin's (or IPAM type's) keys with meaning, type and default, from its schema."""
    schema = configcheck.schema_for("plugin", type_name)
    kind = "plugin"
    if schema is None:
        schema, kind = configcheck.schema_for("ipam", type_name), "IPAM"
    if schema is None:
        known = configcheck.plugin_types() + configcheck.ipam_types()
        raise ValueError(f"no schema for {type_name!r}; known: {', '.join(sorted(set(known)))}")
    props: Mapping[str, Any] = schema["properties"]
    title = f"{schema.get('title', type_name)} ({kind})"
    if key is not None:
        node: Mapping[str, Any] = schema
        for part in key.split("."):
            sub = node.get("properties", {}).get(part)
            if sub is None and node.get("type") == "array":
                inner = node.get("items", {})
                inner = inner.get("items", inner) if inner.get("type") == "array" else inner
                sub = inner.get("properties", {}).get(part)
            if sub is None:
                raise ValueError(f"{type_name} has no key {key!r}; its keys: {', '.join(props)}")
            node = sub
        return "\n".join(
            [title, "", *_describe(key, node, schema.get("required", ())), *_children(node)]
        )
    lines = [title, ""]
    for name, sub in props.items():
        lines += _describe(name, sub, schema.get("required", ()))
    lines += ["", "Every plugin also takes: type, name, cniVersion, capabilities, args."]
    for rule, deps in schema.get("dependentRequired", {}).items():
        lines.append(f"Rule: {rule} needs {', '.join(deps)}.")
    return "\n".join(lines)


def _children(node: Mapping[str, Any]) -> list[str]:
    inner = node
    while inner.get("type") == "array":
        inner = inner.get("items", {})
    props = inner.get("properties", {})
    if not props:
        return []
    out = ["", "Keys:"]
    for name, sub in props.items():
        out += _describe(name, sub, inner.get("required", ()))
    return out


def _describe(name: str, sub: Mapping[str, Any], required: Sequence[str]) -> list[str]:
    kind = str(sub.get("type", "any"))
    if "enum" in sub:
        kind = " | ".join(json.dumps(v) for v in sub["enum"])
    elif "format" in sub:
        kind = f"{kind}, {sub['format']}"
    bounds = [f"{w} {sub[k]}" for k, w in (("minimum", "min"), ("maximum", "max")) if k in sub]
    if bounds:
        kind += f", {' '.join(bounds)}"
    line = f"  {name} ({kind})"
    if sub.get("description"):
        line += f": {sub['description']}"
    if name in required:
        line += " [required]"
    if "default" in sub:
        line += f" [default: {json.dumps(sub['default'])}]"
    return [line]
