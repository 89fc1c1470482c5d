"""Surfaces 3 and 4: what the cluster says. The pod's networks and default-network
annotations, a NAD's spec.config, and the manifests themselves, mutated; through a
manifests directory (most examples) and the API test server (a few). Each ADD gets one CNI
error or a valid result, and nothing is left after it and the runtime's DEL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st

from tests.integration.conftest import Confs, State
from tests.integration.properties import strategies as s
from tests.integration.properties.cluster import (
    DEFAULT_NETWORK,
    DEFAULT_TEMPLATE,
    NETWORKS,
    NETWORKS_TEMPLATE,
    POD_NAME,
    POD_NS,
    Cluster,
    KubeCluster,
    ManifestCluster,
)
from tests.integration.properties.harness import World, prop

pytestmark = pytest.mark.root

M = s.Mutation
SELECTION_KEYS = (
    "name",
    "namespace",
    "interface",
    "ips",
    "mac",
    "infiniband-guid",
    "default-route",
    "portMappings",
    "bandwidth",
    "cni-args",
    "deviceID",
)


def text_form() -> st.SearchStrategy[str]:
    """The `ns/name@ifname` comma-separated form, with nasty parts."""
    part = st.sampled_from(
        [
            "net-a",
            "net-b",
            "default/net-a",
            "net-a@net1",
            "default/net-b@net2",
            "",
            "/",
            "@",
            "net-a@",
            "/net-a",
            "NET-A",
            "net-a@eth0",
            "missing",
        ]
    ) | s.nasty_strings().map(str)
    return st.builds(
        lambda parts, sep: sep.join(parts),
        st.lists(part, min_size=1, max_size=4),
        st.sampled_from([",", ", ", ",,"]),
    )


def annotation_values(template: Any) -> st.SearchStrategy[str]:
    docs = s.documents(s.mutations(template, extra_keys=SELECTION_KEYS, file_names=frozenset()))
    return st.one_of(docs.map(lambda d: d.text(template)), text_form())


PINNED_NETWORKS = [
    "[" * s.DEEP,
    json.dumps([{"name": "net-a", "interface": "\ud800"}]),
    json.dumps([{"name": "net-a", "interface": "net1"}, {"name": "net-b", "interface": "net1"}]),
    json.dumps([{"name": "net-a", "interface": "eth0"}]),
    json.dumps([{"name": "net-a", "ips": "NaN"}]),
    '[{"name": "net-a", "interface": NaN}]',
    '[{"name": "net-a", "cni-args": 1e400}]',
    "\ufeff" + json.dumps(NETWORKS_TEMPLATE),
    "net-a,",
]


def run_pod(world: World, cluster: Cluster, annotations: dict[str, Any]) -> None:
    world.begin()
    cluster.restore()
    cluster.write_pod(annotations)
    env = world.env("ADD", CNI_ARGS=cluster.cni_args())
    world.add_then_del(env, json.dumps(cluster.netconf()).encode(), world.run)


@prop(ci=40, value=(annotation_values(NETWORKS_TEMPLATE), PINNED_NETWORKS))
def test_networks_annotation(world: World, manifests: ManifestCluster, value: str) -> None:
    run_pod(world, manifests, {NETWORKS: value})


@prop(
    ci=20,
    value=(
        annotation_values(DEFAULT_TEMPLATE),
        [
            "[" * s.DEEP,
            '{"name": "cluster", "namespace": "\ud800"}',
            "kube-system/cluster@eth1",
            "[]",
        ],
    ),
)
def test_default_network_annotation(world: World, manifests: ManifestCluster, value: str) -> None:
    run_pod(world, manifests, {DEFAULT_NETWORK: value, NETWORKS: "net-a"})


@prop(
    ci=6,
    which=(st.sampled_from([NETWORKS, DEFAULT_NETWORK]), [NETWORKS, NETWORKS]),
    value=(
        annotation_values(NETWORKS_TEMPLATE),
        ["[" * s.DEEP, json.dumps([{"name": "net-a", "interface": "\ud800"}])],
    ),
)
def test_annotations_through_the_api_server(
    world: World, kube: KubeCluster, which: str, value: str
) -> None:
    run_pod(world, kube, {which: value})


# -- NAD spec.config --------------------------------------------------------------------------


def _nad_shape() -> dict[str, Any]:
    root = Path("/shape")
    return Confs(State(root, root, root, root, root)).bridge_net(
        "net-a", "b0", Confs(State(root, root, root, root, root)).subnet(), routes=[]
    )


NAD_SHAPE = _nad_shape()
NAD_DOCS = s.documents(
    s.mutations(
        NAD_SHAPE,
        protected=frozenset({"bridge"}),
        directories=frozenset({"dataDir"}),
        extra_keys=(
            "cniVersions",
            "disableCheck",
            "disableGC",
            "loadOnlyInlinedPlugins",
            "type",
            "plugins",
            "name",
        ),
        special=[
            (
                ("plugins", 0, "type"),
                st.sampled_from(["a/b", "../bridge", "/usr/lib/cni/bridge", "", ".."]),
            )
        ],
        # Never "bridge": run where a bridge key is missing (as an IPAM, say), the bridge
        # plugin makes its default cni0 on the host.
        allowed_plugins=frozenset({"host-local"}),
    )
)
PINNED_NADS = [
    s.Document(raw=b"[" * s.DEEP),
    s.Document((M("set", ("plugins", 0, "ipam", "ranges", 0, 0, "subnet"), s.Raw("NaN")),)),
    s.Document((M("set", ("cniVersion",), s.Raw("NaN")),)),
    s.Document((M("set", ("plugins", 0, "type"), "a/b"),)),
    s.Document((M("delete", ("name",)),)),
    s.Document((M("set", ("plugins",), {"type": "bridge"}),)),
    s.Document((M("set", ("plugins", 0, "ipam"), s.Raw("1e400")),)),
    s.Document((), s.Encoded(tail="x")),
    s.Document(raw="\ufeff{}".encode()),
]


@prop(ci=40, doc=(NAD_DOCS, PINNED_NADS))
def test_nad_config(world: World, manifests: ManifestCluster, doc: s.Document) -> None:
    world.begin()
    manifests.restore()
    template = manifests.configs[("default", "net-a")]
    manifests.write_nad("default", "net-a", doc.text(template))
    manifests.write_pod({NETWORKS: "net-a"})
    env = world.env("ADD", CNI_ARGS=manifests.cni_args())
    world.add_then_del(env, json.dumps(manifests.netconf()).encode(), world.run)


# -- the manifests themselves -------------------------------------------------------------------

POD_TEMPLATE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": POD_NAME,
        "namespace": POD_NS,
        "uid": "u",
        "annotations": {NETWORKS: "net-a"},
    },
    "spec": {"nodeName": "node-1"},
}
MANIFEST_GARBAGE = st.one_of(
    st.sampled_from(
        [
            b"{",
            b"- [",
            b"\t",
            b": :",
            b"!!python/object:os.system ls",
            b"\xff\xfe",
            b"---\n---\n{",
            b"kind: Pod\nmetadata: 1",
            b"kind: Pod\nmetadata: {name: 1}",
            b"&a [*a]",
            b"[" * s.DEEP,
        ]
    ),
    st.binary(max_size=64),
    st.builds(
        lambda d: d.render(POD_TEMPLATE),
        s.documents(s.mutations(POD_TEMPLATE, file_names=frozenset())),
    ),
)


@prop(
    ci=25,
    body=(
        MANIFEST_GARBAGE,
        [
            b"kind: Pod\nmetadata: {name: p, annotations: {a: 1}}",
            b"kind: Pod\nmetadata: {name: p, annotations: [1]}",
            b"kind: NetworkAttachmentDefinition\nmetadata: {name: n}\nspec: 1",
            b"[" * s.DEEP,
            b"apiVersion: " + b"1" * 5000,  # int() refuses more than 4300 digits
        ],
    ),
)
def test_malformed_manifest_documents(
    world: World, manifests: ManifestCluster, body: bytes
) -> None:
    """A file of the manifests directory holds anything at all (another pod, a NAD,
    garbage): the ADD of the pod still answers properly and leaves nothing."""
    world.begin()
    manifests.restore()
    manifests.write_pod({NETWORKS: "net-a"})
    manifests.file("extra.yaml").write_bytes(body)
    env = world.env("ADD", CNI_ARGS=manifests.cni_args())
    world.add_then_del(env, json.dumps(manifests.netconf()).encode(), world.run)
