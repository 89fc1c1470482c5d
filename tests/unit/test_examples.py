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
        assert obj["kind"] in ("Pod", "NetworkAttachmentDefinition", "ConfigMap")
        meta = obj["metadata"]
        if obj["kind"] == "ConfigMap":  # the SR-IOV device plugin's
            resources = json.loads(obj["data"]["config.json"])["resourceList"]
            assert all(r["resourceName"] and r["selectors"] for r in resources)
        elif obj["kind"] == "NetworkAttachmentDefinition":
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


def test_the_sriov_example_matches_device_plugin_pod_and_plugin() -> None:
    """The NADs' resource is the config map's and the pod's, and multinet-sriov loads them."""
    from multinet.plugins.sriov import config as sriov_config

    cm = docs(ROOT / "examples" / "sriov" / "device-plugin-configmap.yaml")[0]
    (res,) = json.loads(cm["data"]["config.json"])["resourceList"]
    resource = f"{res['resourcePrefix']}/{res['resourceName']}"
    nads = docs(ROOT / "examples" / "nads" / "sriov.yaml")
    assert {n["metadata"]["annotations"]["k8s.v1.cni.cncf.io/resourceName"] for n in nads} == {
        resource
    }
    for n in nads:
        raw = json.loads(n["spec"]["config"])
        conf = sriov_config.load({**raw, "deviceID": "0000:03:02.1"})
        assert conf.vlan and conf.spoofchk is not None and conf.trust is not None
    (pod,) = docs(ROOT / "examples" / "pods" / "pod-sriov.yaml")
    limits = pod["spec"]["containers"][0]["resources"]["limits"]
    names = parse_networks(
        pod["metadata"]["annotations"][NETWORKS_ANNOTATION], pod["metadata"]["namespace"]
    )
    assert int(limits[resource]) == len(names) == 2


def _example_nads() -> set[tuple[str, str]]:
    return {
        (obj["metadata"]["namespace"], obj["metadata"]["name"])
        for path in MANIFESTS
        for obj in docs(path)
        if obj["kind"] == "NetworkAttachmentDefinition"
    }


@pytest.mark.parametrize(
    "path",
    [p for p in MANIFESTS if any(o["kind"] == "Pod" for o in docs(p))],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_every_network_an_example_pod_names_is_an_example_nad(path: Path) -> None:
    """A user who applies examples/nads and then an example pod gets no 'not found'."""
    nads = _example_nads()
    for pod in (o for o in docs(path) if o["kind"] == "Pod"):
        meta = pod["metadata"]
        ann = meta.get("annotations", {})
        named = []
        if NETWORKS_ANNOTATION in ann:
            named += [
                (e.namespace, e.name)
                for e in parse_networks(ann[NETWORKS_ANNOTATION], meta["namespace"])
            ]
        if DEFAULT_NETWORK_ANNOTATION in ann:
            e = parse_default_network(ann[DEFAULT_NETWORK_ANNOTATION], "kube-system")
            named.append((e.namespace, e.name))
        missing = sorted(set(named) - nads)
        assert not missing, f"{path.relative_to(ROOT)} names NADs no example defines: {missing}"


def test_the_ippool_crd_admits_what_multinet_ipam_writes() -> None:
    """crds/ippool.yaml: the group, version and names the plugin uses; its schema admits a
    pool as the plugin writes it and refuses an allocation without its owner's keys."""
    import jsonschema

    from multinet.authoring import configcheck
    from multinet.ipam import config as ipam_config
    from multinet.ipam import pools

    (crd,) = docs(ROOT / "crds" / "ippool.yaml")
    spec = crd["spec"]
    assert crd["metadata"]["name"] == f"{pools.PLURAL}.{pools.GROUP}"
    assert (spec["group"], spec["names"]["kind"], spec["names"]["plural"]) == (
        pools.GROUP, pools.KIND, pools.PLURAL,
    )  # fmt: skip
    (version,) = spec["versions"]
    assert version["name"] == pools.VERSION and version["served"] and version["storage"]
    schema = version["schema"]["openAPIV3Schema"]
    owner = pools.Owner("c1", "net1", "ns/p", "uid", "lab", "node-1").to_json()
    pool = {"apiVersion": pools.API_VERSION, "kind": pools.KIND, "metadata": {"name": "x"},
            "spec": {"range": "10.30.0.0/24", "allocations": {"10": owner}}}  # fmt: skip
    jsonschema.validate(pool, schema)
    with pytest.raises(jsonschema.ValidationError, match="'ifname' is a required property"):
        jsonschema.validate({**pool, "spec": {**pool["spec"], "allocations": {"1": {
            "containerID": "c1"}}}}, schema)  # fmt: skip

    (nad,) = docs(ROOT / "examples" / "nads" / "macvlan-multinet-ipam.yaml")
    config = json.loads(nad["spec"]["config"])
    assert configcheck.check_config(config) == []
    conf = ipam_config.load(config["plugins"][0])
    assert [r.cidr for r in conf.ranges] == ["10.30.0.0/24", "fd00:30::/64"]
