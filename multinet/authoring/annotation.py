"""The networks annotation as ADD reads it (networks.selection), and the NADs it names."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from multinet.authoring import nad as nads
from multinet.cni.errors import InvalidConfig
from multinet.networks.selection import (
    DEFAULT_NETWORK_ANNOTATION,
    NETWORKS_ANNOTATION,
    NetworkSelection,
    parse_default_network,
    parse_networks,
)

# (namespace, name) -> the NAD object, or None when there is none.
NadLookup = Callable[[str, str], Mapping[str, Any] | None]


@dataclass(frozen=True)
class Result:
    selections: list[NetworkSelection]
    errors: list[str]
    warnings: list[str]


def check(
    value: str,
    namespace: str = "default",
    lookup: NadLookup | None = None,
    *,
    default_network: bool = False,
) -> Result:
    """The annotation's errors (the very messages ADD gives) and, with `lookup`, whether each
    NAD it names exists and is valid."""
    try:
        if default_network:
            selections = [parse_default_network(value, namespace)]
        else:
            selections = parse_networks(value, namespace)
    except InvalidConfig as e:
        return Result([], [e.msg], [])
    errors: list[str] = []
    warnings: list[str] = []
    if lookup is not None:
        for s in selections:
            obj = lookup(s.namespace, s.name)
            if obj is None:
                errors.append(f"NetworkAttachmentDefinition {s.namespace}/{s.name} not found")
                continue
            for p in nads.check_nad(obj):
                line = f"NetworkAttachmentDefinition {s.namespace}/{s.name}: {p.render()}"
                (errors if p.severity == nads.ERROR else warnings).append(line)
    return Result(selections, errors, warnings)


def pod_annotations(obj: Any) -> tuple[str, dict[str, str]]:
    """A pod manifest's namespace and annotations."""
    if not isinstance(obj, Mapping) or obj.get("kind") != "Pod":
        raise ValueError("expected a Pod manifest")
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    return str(meta.get("namespace") or "default"), {str(k): str(v) for k, v in annotations.items()}


def check_pod(obj: Any, lookup: NadLookup | None = None) -> Result:
    namespace, annotations = pod_annotations(obj)
    results = []
    if NETWORKS_ANNOTATION in annotations:
        results.append(check(annotations[NETWORKS_ANNOTATION], namespace, lookup))
    if DEFAULT_NETWORK_ANNOTATION in annotations:
        results.append(
            check(annotations[DEFAULT_NETWORK_ANNOTATION], namespace, lookup, default_network=True)
        )
    return Result(
        [s for r in results for s in r.selections],
        [e for r in results for e in r.errors],
        [w for r in results for w in r.warnings],
    )


def directory_lookup(directory: str) -> NadLookup:
    """NADs from the YAML files of a directory (as the manifests source reads them)."""
    found: dict[tuple[str, str], Mapping[str, Any]] = {}
    for entry in sorted(os.listdir(directory)):
        if not entry.endswith((".yaml", ".yml", ".json")):
            continue
        with open(os.path.join(directory, entry)) as f:
            docs, _ = nads.load_documents(f.read(), entry)
        for _, obj in docs:
            if isinstance(obj, Mapping) and obj.get("kind") == nads.KIND:
                meta = obj.get("metadata") or {}
                found[(str(meta.get("namespace") or "default"), str(meta.get("name")))] = obj
    return lambda namespace, name: found.get((namespace, name))


def load_pod(text: str) -> Any:
    return yaml.safe_load(text)
