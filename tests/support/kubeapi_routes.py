"""URL routing and discovery documents of the fake kube-apiserver."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from .kubeapi_types import RESOURCES, ResourceType

JSON = dict[str, Any]

VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0+multinet-fake",
    "gitCommit": "0" * 40,
    "gitTreeState": "clean",
    "buildDate": "2024-08-13T07:28:49Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}


@dataclass(frozen=True)
class Route:
    rt: ResourceType
    namespace: str | None  # None: cluster-wide collection
    name: str = ""
    subresource: str = ""


_BY_PATH = {(rt.group, rt.version, rt.plural): rt for rt in RESOURCES}


def resolve(path: str) -> Route | None:
    parts = [unquote(p) for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    ns = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        ns, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        return None
    rt = _BY_PATH.get((group, version, rest[0]))
    name, sub = [*rest, "", ""][1:3]
    if rt is None or (sub and sub not in rt.subresources) or (name and ns is None):
        return None
    return Route(rt, ns, name, sub)


def discovery(path: str, address: str) -> JSON | None:
    groups: dict[str, list[ResourceType]] = {}
    for rt in RESOURCES:
        groups.setdefault(rt.group, []).append(rt)

    def resources(gv: str, rts: list[ResourceType]) -> JSON:
        out: list[JSON] = []
        for rt in rts:
            out.append(
                {
                    "name": rt.plural,
                    "singularName": rt.singular,
                    "namespaced": True,
                    "kind": rt.kind,
                    "verbs": list(rt.verbs),
                    "shortNames": list(rt.short_names),
                }
            )
            for sub in rt.subresources:
                out.append(
                    {
                        "name": f"{rt.plural}/{sub}",
                        "singularName": "",
                        "namespaced": True,
                        "kind": rt.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
        doc: JSON = {"kind": "APIResourceList", "groupVersion": gv, "resources": out}
        if "/" in gv:
            doc["apiVersion"] = "v1"
        return doc

    def group_doc(name: str) -> JSON:
        version = groups[name][0].version  # one version per group here
        gv = {"groupVersion": f"{name}/{version}", "version": version}
        return {"name": name, "versions": [gv], "preferredVersion": gv}

    named = sorted(g for g in groups if g)
    if path == "/api":
        cidr = {"clientCIDR": "0.0.0.0/0", "serverAddress": address}
        return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [cidr]}
    if path == "/api/v1":
        return resources("v1", groups[""])
    if path == "/apis":
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group_doc(g) for g in named]}
    for g in named:
        if path == f"/apis/{g}":
            return {"kind": "APIGroup", "apiVersion": "v1", **group_doc(g)}
        version = groups[g][0].version
        if path == f"/apis/{g}/{version}":
            return resources(f"{g}/{version}", groups[g])
    return None
