"""The daemon with the Kubernetes API test server: warm caches, one request per ADD."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Sandbox

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # tests.support without depending on the working directory
    sys.path.insert(0, str(ROOT))

from tests.support.kubeapi import KubeAPIServer  # noqa: E402

NODE = "node-1"
STATUS = "k8s.v1.cni.cncf.io/network-status"


@pytest.fixture
def kubeapi() -> Iterator[KubeAPIServer]:
    server = KubeAPIServer(token=uuid.uuid4().hex)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _api_calls(server: KubeAPIServer) -> list[tuple[str, str]]:
    """Requests on a CNI call's path: not the watches, not the events (sent by a
    background thread, best effort)."""
    return [(m, p) for m, p in server.requests if "watch=" not in p and "/events" not in p]


def test_add_uses_the_cache_and_del_needs_no_api(sandbox: Sandbox, kubeapi: KubeAPIServer) -> None:
    cluster = sandbox.netconf()["delegates"][0]
    for name, config in (
        ("cluster", cluster),
        ("extra", {"cniVersion": "1.0.0", "name": "extra", "type": "mndtest"}),
    ):
        namespace = "kube-system" if name == "cluster" else "default"
        kubeapi.add_nad(
            {
                "apiVersion": "k8s.cni.cncf.io/v1",
                "kind": "NetworkAttachmentDefinition",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"config": json.dumps(config)},
            }
        )
    uid = str(uuid.uuid4())
    kubeapi.add_pod(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "web",
                "namespace": "default",
                "uid": uid,
                "annotations": {"k8s.v1.cni.cncf.io/networks": "extra"},
            },
            "spec": {"nodeName": NODE, "containers": [{"name": "app", "image": "pause"}]},
        }
    )
    kubeconfig = kubeapi.write_kubeconfig(str(sandbox.tmp / "kubeconfig"))
    d = sandbox.daemon(
        kubeconfig=kubeconfig,
        nodeName=NODE,
        generateConfig=False,
        clusterNetwork="cluster",
        multusNamespace="kube-system",
    )
    sandbox.wait_for(lambda: d.get("/readyz")[0] == 200, timeout=20)  # caches synced
    metrics = d.get("/metrics")[1]
    assert 'multinet_cache_objects{kind="network_attachment_definitions"} 2' in metrics
    assert 'multinet_cache_objects{kind="pods"} 1' in metrics

    ns = sandbox.netns()
    conf = {k: v for k, v in sandbox.netconf().items() if k != "delegates"}
    pod_args = f"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_UID={uid}"
    kubeapi.reset_requests()
    add = sandbox.shim("ADD", "c1", ns, conf, CNI_ARGS=pod_args)
    assert add.returncode == 0, add.stdout + add.stderr
    assert "in-process" not in add.stderr
    assert sandbox.links(ns) == ["eth0"]
    assert [c.split()[:3] for c in sandbox.calls()] == [["ADD", "c1", "net1"]]
    calls = _api_calls(kubeapi)
    assert calls == [("PATCH", "/api/v1/namespaces/default/pods/web/status")]
    status = json.loads(kubeapi.get_pod("default", "web")["metadata"]["annotations"][STATUS])
    assert [(s["name"], s["interface"]) for s in status] == [
        ("cluster", "eth0"),  # the cluster network goes by its config name
        ("default/extra", "net1"),
    ]

    kubeapi.reset_requests()
    delete = sandbox.shim("DEL", "c1", ns, conf, CNI_ARGS=pod_args)
    assert delete.returncode == 0, delete.stdout + delete.stderr
    assert _api_calls(kubeapi) == []
    sandbox.assert_clean(ns)
