"""Credentials that rotate, as a node lives with them: multinetd (thick mode, through the
shim) and thin mode (the `multinet` executable) on a token file the test rotates as the
kubelet does, against the API test server's tokens that expire; a token file ending in
a newline; and DEL, which never fails over credentials."""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.daemon.sandbox import DaemonProc, Kubelet, Sandbox
from tests.support.kubeapi import KubeAPIServer

NODE = "node-1"
LIFETIME = 6.0  # seconds a token is valid (a real bound token: an hour, at least 10 min)


def nad(name: str, config: dict[str, Any], namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"config": json.dumps(config)},
    }


def extra(name: str) -> dict[str, Any]:
    return nad(name, {"cniVersion": "1.0.0", "name": name, "type": "mndtest"})


@dataclass
class Node:
    """multinetd on NODE with the API server's cluster network, and thin mode's netconf."""

    sandbox: Sandbox
    kubeapi: KubeAPIServer
    token: Path
    keys: dict[str, Any]  # what the daemon and thin mode both take
    daemon: DaemonProc | None = None

    def start_daemon(self) -> DaemonProc:
        self.daemon = self.sandbox.daemon(nodeName=NODE, generateConfig=False, **self.keys)
        self.sandbox.wait_for(lambda: self.ready(), timeout=30)
        return self.daemon

    def ready(self) -> bool:
        assert self.daemon is not None
        return self.daemon.get("/readyz")[0] == 200

    def pod(self, networks: str) -> str:
        """A new pod on NODE asking for `networks`: its CNI_ARGS."""
        name, uid = f"p-{secrets.token_hex(4)}", str(uuid.uuid4())
        self.kubeapi.add_pod(
            {
                "metadata": {
                    "name": name,
                    "namespace": "default",
                    "uid": uid,
                    "annotations": {"k8s.v1.cni.cncf.io/networks": networks},
                },
                "spec": {"nodeName": NODE, "containers": [{"name": "c", "image": "pause"}]},
            }
        )
        return f"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={name};K8S_POD_UID={uid}"

    def cni(self, mode: str, command: str, cid: str, netns: str, args: str) -> Any:
        """A CNI call through the shim to multinetd ("thick"), or to thin mode."""
        box = self.sandbox
        conf = {k: v for k, v in box.netconf().items() if k != "delegates"}
        if mode == "thin":
            conf = {**conf, "type": "multinet", **self.keys}
            return box.shim(command, cid, netns, conf, argv=[box.thin_path], CNI_ARGS=args)
        return box.shim(command, cid, netns, conf, CNI_ARGS=args)

    def daemon_log(self) -> str:
        return self.daemon.log()[-3000:] if self.daemon is not None else ""

    def nads_cached(self) -> int:
        assert self.daemon is not None
        metrics = self.daemon.get("/metrics")[1]
        found = re.search(
            r'multinet_cache_objects\{kind="network_attachment_definitions"\} (\d+)', metrics
        )
        return int(found.group(1)) if found else -1


def node(sandbox: Sandbox, kubeapi: KubeAPIServer, token: str, **cluster: Any) -> Node:
    """The cluster network (a NAD of the sandbox's bridge), a NAD `extra`, and a
    kubeconfig naming the token file `token` (and `cluster`'s keys)."""
    kubeapi.add_nad(nad("cluster", sandbox.netconf()["delegates"][0], "kube-system"))
    kubeapi.add_nad(extra("extra"))
    token_file = sandbox.tmp / "token"
    token_file.write_text(token)
    kc = Path(kubeapi.write_kubeconfig(str(sandbox.tmp / "kubeconfig")))
    doc = json.loads(kc.read_text())
    doc["users"][0]["user"] = {"tokenFile": "token"}
    doc["clusters"][0]["cluster"].update(cluster)
    kc.write_text(json.dumps(doc))
    keys = {"kubeconfig": str(kc), "clusterNetwork": "cluster", "multusNamespace": "kube-system"}
    return Node(sandbox, kubeapi, token_file, keys)


def add_and_del(n: Node, mode: str, netns: str, networks: str = "extra") -> None:
    args, cid = n.pod(networks), f"c{secrets.token_hex(4)}"
    add = n.cni(mode, "ADD", cid, netns, args)
    assert add.returncode == 0, f"{mode} ADD: {add.stdout} {add.stderr}"
    assert n.sandbox.links(netns) == ["eth0"]  # the cluster network's; `mndtest` logs only
    assert f"ADD {cid} net1" in [" ".join(c.split()[:3]) for c in n.sandbox.calls()]
    delete = n.cni(mode, "DEL", cid, netns, args)
    assert delete.returncode == 0, f"{mode} DEL: {delete.stdout} {delete.stderr}"
    assert n.sandbox.links(netns) == []


def test_thick_and_thin_across_three_token_lifetimes(
    sandbox: Sandbox, kubeapi: KubeAPIServer
) -> None:
    first = kubeapi.mint_token(LIFETIME)
    n = node(sandbox, kubeapi, first)
    kubeapi.token = secrets.token_hex(16)  # the static token unknown to the node
    start = time.monotonic()
    n.start_daemon()
    kubelet = Kubelet(kubeapi, n.token, first, LIFETIME)
    kubelet.start()
    namespaces = {"thick": sandbox.netns(), "thin": sandbox.netns()}
    calls, seen, made = 0, 0, 0
    try:
        while time.monotonic() - start < 3 * LIFETIME + 1:
            for mode, netns in namespaces.items():
                add_and_del(n, mode, netns)
                calls += 2
            if kubelet.rotations > seen:  # a NAD made after a rotation: seen by the watch
                seen, made = kubelet.rotations, made + 1
                kubeapi.add_nad(extra(f"after-{seen}"))
                deadline = time.monotonic() + 15
                while n.nads_cached() != 2 + made:
                    assert time.monotonic() < deadline, f"after-{seen} not seen: {n.daemon_log()}"
                    time.sleep(0.05)
                for mode, netns in namespaces.items():
                    add_and_del(n, mode, netns, f"after-{seen}")
                    calls += 2
    finally:
        kubelet.stop.set()
        kubelet.join()
    assert kubelet.rotations >= 3 and calls >= 12
    assert n.ready()
    assert n.daemon is not None
    log = n.daemon.log()  # the watches never refused: the newest token read before
    assert "watch failed: 401" not in log and "refused access" not in log
    sandbox.assert_clean(*namespaces.values())


@pytest.mark.parametrize(
    "cluster",
    [{}, {"tls-server-name": "localhost"}],  # the second: the official client's
    ids=["standard-library", "kubernetes-client"],
)
def test_a_token_file_ending_in_a_newline(
    sandbox: Sandbox, kubeapi: KubeAPIServer, cluster: dict[str, Any]
) -> None:
    """As `echo` writes it: the official client sent it whole, and every thick-mode ADD
    and DEL failed with code 999 (`ValueError: Invalid header value`)."""
    n = node(sandbox, kubeapi, kubeapi.token + "\n", **cluster)
    n.start_daemon()
    netns = sandbox.netns()
    for mode in ("thick", "thin"):
        add_and_del(n, mode, netns)
    sandbox.assert_clean(netns)


@pytest.mark.parametrize("mode", ["thick", "thin"])
def test_del_never_fails_over_credentials(
    sandbox: Sandbox, kubeapi: KubeAPIServer, mode: str
) -> None:
    """Refused (401 after the token was read again) or without credentials at all: a
    DEL with a journal removes what it holds, one without has nothing to do; an ADD is
    a clear error, code 101."""
    n = node(sandbox, kubeapi, kubeapi.token)
    if mode == "thick":
        n.start_daemon()
    netns = sandbox.netns()
    args, cid = n.pod("extra"), f"c{secrets.token_hex(4)}"
    assert n.cni(mode, "ADD", cid, netns, args).returncode == 0
    kubeapi.token = secrets.token_hex(16)  # the node's token refused from now on
    delete = n.cni(mode, "DEL", cid, netns, args)
    assert delete.returncode == 0, delete.stdout + delete.stderr
    assert sandbox.links(netns) == []
    never_added = n.cni(mode, "DEL", "never-added", netns, n.pod("extra"))
    assert never_added.returncode == 0, never_added.stdout + never_added.stderr
    add = n.cni(mode, "ADD", "refused", netns, n.pod("extra"))
    error = json.loads(add.stdout)
    assert (add.returncode, error["code"]) == (1, 101), error
    assert "refused access" in error["msg"] and "Traceback" not in add.stderr
    if mode == "thin":
        n.token.unlink()  # no credentials at all
        gone = n.cni(mode, "DEL", "no-credentials", netns, n.pod("extra"))
        assert gone.returncode == 0, gone.stdout + gone.stderr
    sandbox.assert_clean(netns)
