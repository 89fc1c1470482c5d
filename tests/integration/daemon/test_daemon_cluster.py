"""The daemon with the Kubernetes API test server: warm caches, one request per ADD,
no request per DEL, and the API server going away on either side of a pod."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from tests.integration.daemon.sandbox import DaemonProc, Sandbox
from tests.support.kubeapi import KubeAPIServer

NODE = "node-1"
STATUS = "k8s.v1.cni.cncf.io/network-status"


def _api_calls(server: KubeAPIServer) -> list[tuple[str, str]]:
    """Requests on a CNI call's path: not the watches, not the events (sent by a
    background thread, best effort)."""
    return [(m, p) for m, p in server.requests if "watch=" not in p and "/events" not in p]


@dataclass
class ClusterDaemon:
    daemon: DaemonProc
    conf: dict[str, object]
    pod_args: str


def _cluster_daemon(sandbox: Sandbox, kubeapi: KubeAPIServer) -> ClusterDaemon:
    """A daemon on NODE with synced caches of two NADs and pod default/web (asking for
    `extra`)."""
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
    conf = {k: v for k, v in sandbox.netconf().items() if k != "delegates"}
    pod_args = f"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_UID={uid}"
    return ClusterDaemon(d, conf, pod_args)


def test_add_uses_the_cache_and_del_needs_no_api(sandbox: Sandbox, kubeapi: KubeAPIServer) -> None:
    cd = _cluster_daemon(sandbox, kubeapi)
    d, conf, pod_args = cd.daemon, cd.conf, cd.pod_args
    metrics = d.get("/metrics")[1]
    assert 'multinet_cache_objects{kind="network_attachment_definitions"} 2' in metrics
    assert 'multinet_cache_objects{kind="pods"} 1' in metrics

    ns = sandbox.netns()
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
        ("kube-system/cluster", "eth0"),  # a NAD cluster network: namespace/name (Multus)
        ("default/extra", "net1"),
    ]

    kubeapi.reset_requests()
    delete = sandbox.shim("DEL", "c1", ns, conf, CNI_ARGS=pod_args)
    assert delete.returncode == 0, delete.stdout + delete.stderr
    assert _api_calls(kubeapi) == []
    sandbox.assert_clean(ns)


def test_api_down_during_add_is_try_again_later_and_attaches_nothing(
    sandbox: Sandbox, kubeapi: KubeAPIServer
) -> None:
    cd = _cluster_daemon(sandbox, kubeapi)
    ns = sandbox.netns()
    kubeapi.set_down(True)  # the caches are warm: only the status write needs the API
    add = sandbox.shim("ADD", "c1", ns, cd.conf, CNI_ARGS=cd.pod_args)
    assert add.returncode != 0
    error = json.loads(add.stdout)
    assert error["code"] == 11, error
    assert "network-status" in error["msg"] and "unreachable" in error["msg"]
    assert "in-process" not in add.stderr  # the daemon answered: it did not fall back
    assert sandbox.links(ns) == []
    assert sandbox.journals() == [] and sandbox.allocations() == []
    delete = sandbox.shim("DEL", "c1", ns, cd.conf, CNI_ARGS=cd.pod_args)
    assert delete.returncode == 0, delete.stdout
    sandbox.assert_clean(ns)


def test_api_down_during_del_succeeds_from_the_journal(
    sandbox: Sandbox, kubeapi: KubeAPIServer
) -> None:
    cd = _cluster_daemon(sandbox, kubeapi)
    ns = sandbox.netns()
    add = sandbox.shim("ADD", "c1", ns, cd.conf, CNI_ARGS=cd.pod_args)
    assert add.returncode == 0, add.stdout + add.stderr
    assert sandbox.links(ns) == ["eth0"] and sandbox.journals() != []
    kubeapi.set_down(True)
    kubeapi.reset_requests()
    delete = sandbox.shim("DEL", "c1", ns, cd.conf, CNI_ARGS=cd.pod_args)
    assert delete.returncode == 0, delete.stdout + delete.stderr
    # The informers may still get a re-watch in as the server goes down: not DEL's.
    assert _api_calls(kubeapi) == []
    sandbox.assert_clean(ns)
