"""The networks annotation as ADD reads it (networks.selection), and the NADs it names."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from multinet.authoring import nad as nads
from multinet.authoring.nad import Finding
from multinet.cni.errors import InvalidConfig
from multinet.networks import attachments
from multinet.networks.selection import (
    DEFAULT_NETWORK_ANNOTATION,
    NETWORKS_ANNOTATION,
    NetworkSelection,
    parse_default_network,
    parse_networks,
)

# (namespace, name) -> the NAD object, or None when there is none.
NadLookup = Callable[[str, str], Mapping[str, Any] | None]


# What ADD's interface rules are checked against without a node's netconf: the cluster
# network on eth0 (the CNI_IFNAME every Kubernetes runtime gives) and no defaultNetworks.
CLUSTER = "the cluster network"
CLUSTER_IFNAME = "eth0"


@dataclass(frozen=True)
class Result:
    selections: list[NetworkSelection]
    findings: list[Finding]

    @property
    def errors(self) -> list[str]:
        return [f.text() for f in self.findings if f.severity == nads.ERROR]

    @property
    def warnings(self) -> list[str]:
        return [f.text() for f in self.findings if f.severity != nads.ERROR]


def check(
    value: str,
    namespace: str = "default",
    lookup: NadLookup | None = None,
    *,
    default_network: bool = False,
    document: str = "",
    cluster: str = CLUSTER,
) -> Result:
    """Everything ADD refuses of the annotation, in the very messages ADD gives (the same
    parser and interface rules), and each key ADD ignores as an error (a typo); with
    `lookup`, whether each NAD it names exists and is valid. `cluster` names the cluster
    network in the interface rules' messages."""
    try:
        if default_network:
            selections = [parse_default_network(value, namespace)]
        else:
            selections = parse_networks(value, namespace)
    except InvalidConfig as e:
        return Result([], [Finding(document, "", e.msg)])
    # An unknown key first: "interfce" may be why two networks want one interface.
    findings = [Finding(document, "", m) for s in selections for m in s.unknown_keys]
    try:
        # The default-network element replaces the cluster network: it goes on the
        # runtime's interface (CNI_IFNAME) whatever it names, as at ADD.
        if not default_network:
            attachments.check_selections(selections, cluster=(cluster, CLUSTER_IFNAME))
    except InvalidConfig as e:
        return Result([], [*findings, Finding(document, "", e.msg)])
    if lookup is not None:
        for s in selections:
            findings += _nad_findings(s, lookup, document)
    return Result(selections, findings)


def _nad_findings(s: NetworkSelection, lookup: NadLookup, document: str) -> list[Finding]:
    what = f"NetworkAttachmentDefinition {s.namespace}/{s.name}"
    obj = lookup(s.namespace, s.name)
    if obj is None:
        return [Finding(document, "", f"{what} not found")]
    return [Finding(what, p.path, p.message, p.severity) for p in nads.check_nad(obj)]


def pod_annotations(obj: Any) -> tuple[str, dict[str, str]]:
    """A pod manifest's namespace and annotations."""
    if not isinstance(obj, Mapping) or obj.get("kind") != "Pod":
        raise ValueError("expected a Pod manifest")
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    return str(meta.get("namespace") or "default"), {str(k): str(v) for k, v in annotations.items()}


def check_pod(obj: Any, lookup: NadLookup | None = None, source: str = "") -> Result:
    """Both annotations of a Pod manifest (`source`: its file, for the findings' label)."""
    namespace, annotations = pod_annotations(obj)
    name = (obj.get("metadata") or {}).get("name", "")
    document = f"{source} ({namespace}/{name})" if source else ""
    results = []
    cluster = CLUSTER
    if DEFAULT_NETWORK_ANNOTATION in annotations:
        value = annotations[DEFAULT_NETWORK_ANNOTATION]
        default = check(value, namespace, lookup, default_network=True, document=document)
        cluster = next((f"{s.namespace}/{s.name}" for s in default.selections), cluster)
        results.append(default)
    if NETWORKS_ANNOTATION in annotations:
        value = annotations[NETWORKS_ANNOTATION]
        results.insert(0, check(value, namespace, lookup, document=document, cluster=cluster))
    return Result(
        [s for r in results for s in r.selections], [f for r in results for f in r.findings]
    )


def directory_lookup(directory: str) -> NadLookup:
    """NADs from the YAML files of a directory (as the manifests source reads them)."""
    found: dict[tuple[str, str], Mapping[str, Any]] = {}
    for path in nads.manifest_files(directory):
        with open(path) as f:
            docs, _ = nads.load_documents(f.read(), path)
        for _, obj in docs:
            if isinstance(obj, Mapping) and obj.get("kind") == nads.KIND:
                meta = obj.get("metadata") or {}
                found[(str(meta.get("namespace") or "default"), str(meta.get("name")))] = obj
    return lambda namespace, name: found.get((namespace, name))


def load_pod(text: str) -> Any:
    return yaml.safe_load(text)
