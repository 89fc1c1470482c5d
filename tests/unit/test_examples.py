"""Every shipped example loads: NAD configs, pod annotations, netconfs and the CRD."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from multinet.cni import chain
from multinet.config import netconf
from multinet.networks.selection import (
    DEFAULT_NETWORK_ANNOTATION,
    NETWORKS_ANNOTATION,
    parse_default_network,
    parse_networks,
)

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((ROOT / "examples").rglob("*.yaml"))


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_manifest_objects_are_valid(path: Path) -> None:
    objects = docs(path)
    assert objects, f"{path} holds no object"
    for obj in objects:
        assert obj["kind"] in ("Pod", "NetworkAttachmentDefinition")
        meta = obj["metadata"]
        if obj["kind"] == "NetworkAttachmentDefinition":
            assert obj["apiVersion"] == "k8s.cni.cncf.io/v1"
            config = (obj.get("spec") or {}).get("config", "")
            if config:
                net = chain.load(json.loads(config), default_name=meta["name"])
                assert net.name == meta["name"]
        else:
            ann = meta.get("annotations", {})
            assert NETWORKS_ANNOTATION in ann or DEFAULT_NETWORK_ANNOTATION in ann
            if NETWORKS_ANNOTATION in ann:
                assert parse_networks(ann[NETWORKS_ANNOTATION], meta["namespace"])
            if DEFAULT_NETWORK_ANNOTATION in ann:
                parse_default_network(ann[DEFAULT_NETWORK_ANNOTATION], "kube-system")


@pytest.mark.parametrize(
    "path", sorted((ROOT / "examples" / "netconf").glob("*.conf")), ids=lambda p: p.name
)
def test_example_netconfs_load(path: Path) -> None:
    conf = netconf.load(json.loads(path.read_text()))
    assert conf.type == "multinet"
    assert conf.delegates or conf.cluster_network


def test_crd_is_the_npwg_definition() -> None:
    (crd,) = docs(ROOT / "crds" / "network-attachment-definition.yaml")
    assert crd["metadata"]["name"] == "network-attachment-definitions.k8s.cni.cncf.io"
    spec = crd["spec"]
    assert (spec["group"], spec["scope"]) == ("k8s.cni.cncf.io", "Namespaced")
    assert spec["names"]["kind"] == "NetworkAttachmentDefinition"
    assert set(spec["names"]["shortNames"]) == {"net-attach-def", "nad"}
    (v1,) = spec["versions"]
    assert v1["name"] == "v1" and v1["served"] and v1["storage"]
    props = v1["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert props["config"]["type"] == "string"
