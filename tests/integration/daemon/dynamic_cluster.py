"""The dynamic-networks tests' cluster: the API test server's NADs and pods, a multinetd
with `dynamicNetworks`, and the pods' sandboxes ADDed through the shim (used by
test_dynamic_networks.py and the properties of tests/integration/properties)."""

from __future__ import annotations

import ipaddress
import json
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from tests.integration.daemon.sandbox import DaemonProc, Sandbox, ip_json
from tests.support.kubeapi import KubeAPIServer

NODE = "node-1"
NETWORKS = "k8s.v1.cni.cncf.io/networks"
STATUS = "k8s.v1.cni.cncf.io/network-status"
INTERVAL = 0.2  # dynamicNetworksInterval of these daemons


@dataclass
class Pod:
    name: str
    uid: str
    netns: str
    cid: str

    @property
    def args(self) -> str:
        pod = f"K8S_POD_NAMESPACE=default;K8S_POD_NAME={self.name};K8S_POD_UID={self.uid}"
        return f"IgnoreUnknown=1;{pod}"


class Cluster:
    """The test's cluster: NADs on the sandbox's bridge (each its own subnet), pods."""

    def __init__(self, sandbox: Sandbox, kubeapi: KubeAPIServer) -> None:
        self.sandbox, self.kubeapi = sandbox, kubeapi
        self.subnets: dict[str, ipaddress.IPv4Network] = {}
        self.nad("kube-system", "cluster", sandbox.netconf()["delegates"][0])
        for i, name in enumerate(("blue", "green")):
            subnet = ipaddress.IPv4Network(f"10.{240 + i}.{secrets.randbelow(256)}.0/24")
            self.subnets[name] = subnet
            self.nad("default", name, self.bridge(name, subnet))
        self.nad("default", "slow", {"cniVersion": "1.0.0", "name": "slow", "type": "mndtest"})
        self.nad(
            "default",
            "static",
            {
                "cniVersion": "1.0.0",
                "name": "static",
                "type": "bridge",
                "bridge": sandbox.bridge,
                "capabilities": {"ips": True, "mac": True},
                "ipam": {"type": "static"},
            },
        )
        self.kubeconfig = kubeapi.write_kubeconfig(str(sandbox.tmp / "kubeconfig"))

    def bridge(self, name: str, subnet: ipaddress.IPv4Network) -> dict[str, Any]:
        return {
            "cniVersion": "1.0.0",
            "name": name,
            "type": "bridge",
            "bridge": self.sandbox.bridge,
            "ipam": {
                "type": "host-local",
                "dataDir": str(self.sandbox.ipam),
                "ranges": [[{"subnet": str(subnet)}]],
            },
        }

    def nad(self, namespace: str, name: str, config: dict[str, Any]) -> None:
        self.kubeapi.add_nad(
            {
                "apiVersion": "k8s.cni.cncf.io/v1",
                "kind": "NetworkAttachmentDefinition",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"config": json.dumps(config)},
            }
        )

    def daemon(self, interval: float = INTERVAL, **keys: Any) -> DaemonProc:
        d = self.sandbox.daemon(
            kubeconfig=self.kubeconfig,
            nodeName=NODE,
            generateConfig=False,
            clusterNetwork="cluster",
            multusNamespace="kube-system",
            dynamicNetworks=True,
            dynamicNetworksInterval=interval,
            **keys,
        )
        self.sandbox.wait_for(lambda: d.get("/readyz")[0] == 200, timeout=20)
        return d

    @property
    def conf(self) -> dict[str, Any]:
        return {k: v for k, v in self.sandbox.netconf().items() if k != "delegates"}

    def pod(self, networks: str = "") -> Pod:
        name = f"pod-{secrets.token_hex(3)}"
        annotations = {NETWORKS: networks} if networks else {}
        uid = str(uuid.uuid4())
        self.kubeapi.add_pod(
            {
                "metadata": {
                    "name": name,
                    "namespace": "default",
                    "uid": uid,
                    "annotations": annotations,
                },
                "spec": {"nodeName": NODE, "containers": [{"name": "app", "image": "pause"}]},
            }
        )
        return Pod(name, uid, self.sandbox.netns(), f"c{secrets.token_hex(4)}")

    def add(self, pod: Pod) -> None:
        out = self.sandbox.shim("ADD", pod.cid, pod.netns, self.conf, CNI_ARGS=pod.args)
        assert out.returncode == 0, out.stdout + out.stderr

    def delete(self, pod: Pod) -> None:
        out = self.sandbox.shim("DEL", pod.cid, pod.netns, self.conf, CNI_ARGS=pod.args)
        assert out.returncode == 0, out.stdout + out.stderr

    def running(self, networks: str = "") -> Pod:
        """A pod asking for `networks`, its sandbox ADDed."""
        pod = self.pod(networks)
        self.add(pod)
        return pod

    def finish(self, *pods: Pod) -> None:
        """DEL the pods' sandboxes; nothing of them may be left."""
        for pod in pods:
            self.delete(pod)
        self.sandbox.assert_clean(*(pod.netns for pod in pods))

    def annotate(self, pod: Pod, networks: str | list[dict[str, Any]]) -> None:
        value = networks if isinstance(networks, str) else json.dumps(networks)
        self.kubeapi.patch_pod(
            "default", pod.name, {"metadata": {"annotations": {NETWORKS: value}}}
        )

    def links(self, pod: Pod) -> list[str]:
        return sorted(self.sandbox.links(pod.netns))

    def wait_links(self, pod: Pod, expected: list[str], timeout: float = 20) -> None:
        try:
            self.sandbox.wait_for(lambda: self.links(pod) == sorted(expected), timeout)
        except AssertionError:
            raise AssertionError(
                f"{pod.name}: links {self.links(pod)}, expected {expected}"
            ) from None

    def status(self, pod: Pod) -> list[tuple[str, str]]:
        annotations = self.kubeapi.get_pod("default", pod.name)["metadata"]["annotations"]
        return [(s["name"], s["interface"]) for s in json.loads(annotations.get(STATUS, "[]"))]

    def wait_status(self, pod: Pod, expected: list[tuple[str, str]]) -> None:
        self.sandbox.wait_for(lambda: sorted(self.status(pod)) == sorted(expected), 20)

    def events(self, pod: Pod) -> list[tuple[str, str, str]]:
        return [
            (e.get("type", ""), e.get("reason", ""), e.get("message", "") or e.get("note", ""))
            for e in self.kubeapi.events()
            if (e.get("involvedObject") or e.get("regarding") or {}).get("name") == pod.name
        ]

    def addresses(self, pod: Pod, ifname: str) -> list[str]:
        ns = pod.netns.rsplit("/", 1)[-1]
        (link,) = ip_json("-n", ns, "addr", "show", "dev", ifname)
        return [
            f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"] if a["family"] == "inet"
        ]
