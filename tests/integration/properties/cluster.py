"""A cluster for the Kubernetes-facing properties: a manifests directory (the cheapest
source) or the API test server, holding the cluster network (NAD kube-system/cluster), two
secondary NADs (default/net-a, default/net-b; bridge + host-local, each on its own
bridge) and the pod whose annotations the property writes before each example."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Confs, State
from tests.integration.networks.conftest import nad_manifest, pod_manifest
from tests.support.kubeapi import KubeAPIServer

NETWORKS = "k8s.v1.cni.cncf.io/networks"
DEFAULT_NETWORK = "v1.multus-cni.io/default-network"
POD_NS, POD_NAME = "default", "pod-prop"
SECONDARY = ("net-a", "net-b")
# The valid annotations the mutations start from.
NETWORKS_TEMPLATE: list[dict[str, Any]] = [
    {"name": "net-a", "interface": "net1", "ips": [], "cni-args": {"k": "v"}},
    {"name": "net-b", "namespace": "default"},
]
DEFAULT_TEMPLATE: dict[str, Any] = {"name": "cluster", "namespace": "kube-system"}


class Cluster:
    """Where the objects go; `write_pod(annotations)` replaces the pod (a fresh UID)."""

    def __init__(
        self, state: State, confs: Confs, bridges: Callable[..., str], keys: dict[str, Any]
    ):
        self.state = state
        self.keys = keys
        self.uid = ""
        self.conf_dir = state.root / "netd"
        self.conf_dir.mkdir(exist_ok=True)
        self.configs = {
            ("kube-system", "cluster"): confs.bridge_net("cluster-net", bridges(), confs.subnet()),
            **{
                ("default", n): confs.bridge_net(n, bridges(), confs.subnet(), routes=[])
                for n in SECONDARY
            },
        }

    def setup(self) -> None:
        for (ns, name), config in self.configs.items():
            self.write_nad(ns, name, json.dumps(config))

    def netconf(self) -> dict[str, Any]:
        return {
            "cniVersion": "1.0.0",
            "name": "multinet-prop",
            "type": "multinet",
            "clusterNetwork": "cluster",
            "confDir": str(self.conf_dir),
            "cniDir": str(self.state.cni_dir),
            "binDir": str(self.state.bin_dir),
            "logFile": str(self.state.root / "multinet.log"),
            **self.keys,
        }

    def cni_args(self) -> str:
        pod = f"K8S_POD_NAMESPACE={POD_NS};K8S_POD_NAME={POD_NAME};K8S_POD_UID={self.uid}"
        return "IgnoreUnknown=1;" + pod

    def write_pod(self, annotations: Mapping[str, Any]) -> None:
        self.uid = str(uuid.uuid4())
        self.put_pod(pod_manifest(POD_NS, POD_NAME, self.uid, annotations))

    def restore(self) -> None:
        """The objects a mutation replaced are valid again."""
        self.setup()

    def put_pod(self, manifest: dict[str, Any]) -> None:
        raise NotImplementedError

    def write_nad(self, namespace: str, name: str, config: str) -> None:
        raise NotImplementedError


class ManifestCluster(Cluster):
    def __init__(self, state: State, confs: Confs, bridges: Callable[..., str]):
        self.dir = state.root / "manifests"
        self.dir.mkdir(exist_ok=True)
        super().__init__(state, confs, bridges, {"manifests": str(self.dir)})

    def file(self, name: str) -> Path:
        return self.dir / name

    def put_pod(self, manifest: dict[str, Any]) -> None:
        # JSON (a YAML subset): lone surrogates and NULs travel as \\u escapes.
        self.file("pod.json").write_text(json.dumps(manifest))

    def write_nad(self, namespace: str, name: str, config: str) -> None:
        self.file(f"nad-{namespace}-{name}.json").write_text(
            json.dumps(nad_manifest(namespace, name, config))
        )

    def restore(self) -> None:
        for extra in self.dir.glob("extra*"):
            extra.unlink()
        super().restore()


class KubeCluster(Cluster):
    def __init__(
        self, server: KubeAPIServer, state: State, confs: Confs, bridges: Callable[..., str]
    ):
        self.server = server
        kubeconfig = server.write_kubeconfig(str(state.root / "kubeconfig"))
        super().__init__(state, confs, bridges, {"kubeconfig": kubeconfig})

    def put_pod(self, manifest: dict[str, Any]) -> None:
        if self.server.get_pod(POD_NS, POD_NAME) is not None:
            self.server.delete_pod(POD_NS, POD_NAME)
        self.server.add_pod(manifest)

    def write_nad(self, namespace: str, name: str, config: str) -> None:
        if self.server.get_nad(namespace, name) is not None:
            self.server.delete_nad(namespace, name)
        self.server.add_nad(nad_manifest(namespace, name, config))


@pytest.fixture
def manifests(state: State, confs: Confs, bridge_factory: Callable[..., str]) -> ManifestCluster:
    cluster = ManifestCluster(state, confs, bridge_factory)
    cluster.setup()
    return cluster


@pytest.fixture
def kube(
    kubeapi: KubeAPIServer, state: State, confs: Confs, bridge_factory: Callable[..., str]
) -> KubeCluster:
    cluster = KubeCluster(kubeapi, state, confs, bridge_factory)
    cluster.setup()
    return cluster
