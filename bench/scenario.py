"""The benchmarks' world, and its teardown (which runs even after Ctrl-C).

One `Scenario` per run owns everything the benchmarks create, all under unique
names: a directory `/tmp/mnb-*` (netconf files, host-local's dataDir, libcni's
results cache, multinet's cniDir per variant, daemon sockets and logs), bridges
`mnbb<hex>` created up front with fixed MACs and no address (their subnets
never reach the host's routing table; nothing is ever a gateway), one network
namespace `mnb-<hex>` per pod, the Kubernetes API test server on 127.0.0.1,
and the daemons. `close()` removes all of it, in order, and is idempotent.

The pod's networks are described in `bench.networks`; their macvlans sit on the
cluster bridge: no host interface is touched and no frame leaves the bridges
the benchmark created.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.daemon import BenchError, Daemon
from bench.networks import (
    CLUSTER,
    CNI_VERSION,
    NAD_NAMESPACE,
    SYSTEM_NAMESPACE,
    PodNetworks,
    PodRef,
    pod_networks,
)
from bench.report import timed
from multinet.cli import install
from tests.conformance.libcni import (
    CnitoolUnavailable,
    build_cnitool,
    container_id,
    run_cnitool,
    write_netconf,
)
from tests.support.kubeapi import KubeAPIServer

REFERENCE_PLUGINS = Path("/usr/lib/cni")
NODE = "mnb-node"
NETWORKS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"
FALLBACK_MARK = "in-process"  # the shim's stderr when it did not reach the daemon


def ip_json(*args: str) -> Any:
    proc = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout or "[]")


def require_environment() -> None:
    """Root, iproute2, the reference plugins and the driver's toolchain, or a clear error."""
    if os.geteuid() != 0:
        raise BenchError("run as root: the benchmarks create network namespaces and bridges")
    if shutil.which("ip") is None:
        raise BenchError("the ip command is missing (apt-get install iproute2)")
    if not (REFERENCE_PLUGINS / "bridge").is_file():
        raise BenchError(f"no reference plugins in {REFERENCE_PLUGINS} (make deps)")


class Scenario:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mnb-", dir="/tmp"))  # short: socket paths
        self.ipam = self.root / "ipam"
        self.confdir = self.root / "net.d"
        self.multus_confdir = self.root / "multus.d"
        self.bin = self.root / "bin"
        self.cache_dir = self.root / "cni-cache"
        for d in (self.confdir, self.multus_confdir, self.bin, self.cache_dir):
            d.mkdir()
        self.bridges: list[str] = []
        self.namespaces: list[str] = []
        self.daemons: dict[str, Daemon] = {}
        self.pods_on_node = 0
        self._every_netns: set[str] = set()
        self._server: KubeAPIServer | None = None
        self._networks: PodNetworks | None = None
        self._cnitool: Path | None = None
        self._shim: Path | None = None
        self._closed = False

    # -- tools ---------------------------------------------------------------

    @property
    def cnitool(self) -> Path:
        """The cnitool-compatible driver on the real libcni (built once, then cached)."""
        if self._cnitool is None:
            try:
                self._cnitool = build_cnitool()
            except CnitoolUnavailable as e:
                raise BenchError(f"cannot build the cnitool driver: {e}") from None
        return self._cnitool

    @property
    def python(self) -> str:
        """The interpreter running the benchmarks, as it was started: a venv's `bin/python`
        is a link, and resolving it would leave the venv (where multinet is installed)."""
        return sys.executable

    def shim(self) -> Path:
        """The thick-mode executable as installed on a host: the native multinet-shim (and
        the thin launcher it falls back to, beside it)."""
        if self._shim is None:
            self._shim = Path(install.install(str(self.bin), self.python)[install.SHIM])
        return self._shim

    def thin(self) -> Path:
        """The thin `multinet` as `multinetctl install-shim` writes it beside the shim (the
        launcher a node runs, not pip's console script)."""
        return self.shim().parent / install.THIN

    # -- kernel objects --------------------------------------------------------

    def bridge(self) -> str:
        """A bridge created up front, up, with a fixed MAC (a bridge otherwise takes its
        lowest port's MAC, which changes as pods come and go)."""
        name = f"mnbb{secrets.token_hex(3)}"
        mac = "02:6d:62:" + ":".join(secrets.token_hex(3)[i : i + 2] for i in (0, 2, 4))
        subprocess.run(
            ["ip", "link", "add", "name", name, "type", "bridge"], check=True, capture_output=True
        )
        self.bridges.append(name)
        subprocess.run(["ip", "link", "set", name, "address", mac, "up"], check=True)
        return name

    def netns(self) -> str:
        """A fresh namespace for one pod; its path."""
        name = f"mnb-{secrets.token_hex(4)}"
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
        self.namespaces.append(name)
        self._every_netns.add(f"/var/run/netns/{name}")
        return f"/var/run/netns/{name}"

    def drop_netns(self, path: str) -> None:
        name = os.path.basename(path)
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
        with contextlib.suppress(ValueError):
            self.namespaces.remove(name)

    def links(self, netns_path: str) -> list[str]:
        """Interfaces in a pod's namespace, loopback aside."""
        names = [link["ifname"] for link in ip_json("-n", os.path.basename(netns_path), "link")]
        return sorted(n for n in names if n != "lo")

    def host_leftovers(self) -> list[str]:
        """Host-side links still hanging off our bridges (veth ends, stray macvlans)."""
        out = []
        for br in self.bridges:
            out += [f"{br} port {p['ifname']}" for p in ip_json("link", "show", "master", br)]
        out += [
            f"{link['ifname']} on {link['link']}"
            for link in ip_json("link", "show")
            if link.get("link") in self.bridges
        ]
        return out

    def allocations(self) -> list[str]:
        """Addresses host-local holds (every file of its dataDir but its bookkeeping)."""
        if not self.ipam.exists():
            return []
        return sorted(
            f"{f.parent.name}/{f.name}"
            for f in self.ipam.rglob("*")
            if f.is_file() and f.name != "lock" and not f.name.startswith("last_reserved_ip")
        )

    def cached_results(self) -> list[str]:
        """libcni's cached ADD results (removed by each DEL)."""
        results = self.cache_dir / "results"
        return sorted(p.name for p in results.iterdir()) if results.exists() else []

    # -- the cluster -----------------------------------------------------------

    def kubeapi(self) -> KubeAPIServer:
        if self._server is None:
            server = KubeAPIServer(token=uuid.uuid4().hex)
            server.start()
            self._server = server
            server.write_kubeconfig(str(self.kubeconfig))
        return self._server

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    def add_pod(
        self, namespace: str, name: str, annotation: str | None, node: str = NODE
    ) -> PodRef:
        pod = PodRef(namespace, name, str(uuid.uuid4()))
        annotations = {NETWORKS_ANNOTATION: annotation} if annotation else {}
        self.kubeapi().add_pod(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "uid": pod.uid,
                    "annotations": annotations,
                },
                "spec": {
                    "nodeName": node,
                    "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.9"}],
                },
            }
        )
        if node == NODE:
            self.pods_on_node += 1
        return pod

    def add_nad(self, namespace: str, name: str, config: dict[str, Any]) -> None:
        self.kubeapi().add_nad(
            {
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"config": json.dumps(config)},
            }
        )

    def networks(self) -> PodNetworks:
        """The four networks of issue 4's pod: conflist files (the driver's NETCONFPATH,
        for the floor) and the same configs as NADs on the API server."""
        if self._networks is not None:
            return self._networks
        nets = pod_networks(self.ipam, self.bridge(), self.bridge())
        for net in nets.all:
            write_netconf(self.confdir, net.conflist)
            namespace = SYSTEM_NAMESPACE if net is nets.cluster else NAD_NAMESPACE
            self.add_nad(namespace, net.name, net.conflist)
        self._networks = nets
        return nets

    # -- multinet's configurations ---------------------------------------------

    def multinet_keys(self, variant: str) -> dict[str, Any]:
        """The thin keys every multinet variant runs with (its own cniDir)."""
        return {
            "kubeconfig": str(self.kubeconfig),
            "clusterNetwork": CLUSTER,
            "multusNamespace": SYSTEM_NAMESPACE,
            "cniDir": str(self.cni_dir(variant)),
            "binDir": str(REFERENCE_PLUGINS),
            "confDir": str(self.multus_confdir),
        }

    def cni_dir(self, variant: str) -> Path:
        return self.root / f"state-{variant}"

    def thin_netconf(self) -> str:
        """`mnb-thin`: the thin multinet with a kubeconfig and the cluster network NAD."""
        self.thin()
        self.kubeapi()
        name = "mnb-thin"
        write_netconf(
            self.confdir,
            {"cniVersion": CNI_VERSION, "name": name, "type": "multinet"}
            | self.multinet_keys("thin"),
        )
        return name

    def daemon(
        self,
        variant: str,
        keys: dict[str, Any],
        node: str = NODE,
        wait: float = 60.0,
        prefix: Sequence[str] = (),
    ) -> Daemon:
        """Start (once) the daemon `variant` with these keys (they override the defaults),
        through `prefix` if any (see `Daemon`); ready when returned."""
        if variant in self.daemons:
            return self.daemons[variant]
        config = {
            "daemonSocketPath": str(self.root / f"run-{variant}" / "multinet.sock"),
            "nodeName": node,
            "generateConfig": False,
            "cniConfigDir": str(self.confdir),
            **keys,
        }
        d = Daemon(variant, self.root, config, prefix)
        self.daemons[variant] = d
        d.wait_ready(wait)
        return d

    def thick_netconf(self, parallel: bool) -> tuple[str, Daemon]:
        """`mnb-thick-seq`/`mnb-thick-par`: the shim's netconf, and its running daemon
        (multinet keys from its config file; `parallelAttach` for the second)."""
        self.shim()
        variant = "thick-par" if parallel else "thick-seq"
        keys = self.multinet_keys(variant) | {"parallelAttach": parallel}
        daemon = self.daemon(variant, keys)
        name = f"mnb-{variant}"
        write_netconf(
            self.confdir,
            {
                "cniVersion": CNI_VERSION,
                "name": name,
                "type": "multinet-shim",
                "daemonSocketPath": daemon.socket,
            },
        )
        return name, daemon

    # -- the driver ------------------------------------------------------------

    def drive(
        self,
        command: str,
        net: str,
        netns_path: str,
        *,
        ifname: str = "eth0",
        cni_args: str | None = None,
    ) -> tuple[subprocess.CompletedProcess[str], float]:
        """One run of the driver (`cnitool COMMAND NET NETNS`): the process and wall seconds.

        CNI_PATH is the same for every variant: the multinet executables, then the
        reference plugins.
        """
        return timed(
            lambda: run_cnitool(
                self.cnitool,
                command,
                net,
                netns_path,
                netconfpath=self.confdir,
                cni_path=[self.bin, REFERENCE_PLUGINS],
                cache_dir=self.cache_dir,
                ifname=ifname,
                cni_args=cni_args,
            )
        )

    @staticmethod
    def container_id(netns_path: str) -> str:
        return container_id(netns_path)

    # -- teardown --------------------------------------------------------------

    def _strays(self) -> list[int]:
        """Processes still working on one of our pods: delegates run in a session of
        their own, so an interrupted driver or thin multinet can leave one behind."""
        pids = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/environ", "rb") as f:
                    env = f.read().split(b"\0")
            except OSError:
                continue
            for var in env:
                if var.startswith(b"CNI_NETNS=") and var[10:].decode(errors="replace") in (
                    self._every_netns
                ):
                    pids.append(int(entry.name))
        return pids

    def _wait_for_strays(self, timeout: float = 15.0) -> None:
        """Let them finish (never kill what we did not start): a bridge plugin still
        running would otherwise create its bridge again after we deleted it."""
        deadline = time.monotonic() + timeout
        while (pids := self._strays()) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pids:
            print(f"bench: delegates still running after {timeout:.0f} s: {pids}", file=sys.stderr)

    def close(self) -> None:
        """Remove everything, in order; a second Ctrl-C meanwhile is ignored."""
        if self._closed:
            return
        self._closed = True
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for d in self.daemons.values():
                d.stop()
            self._wait_for_strays()
            # Deleting a namespace deletes its interfaces, and with them the host
            # ends of their veth pairs; then the bridges can go.
            for name in list(self.namespaces):
                subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
            self.namespaces.clear()
            for br in self.bridges:
                subprocess.run(["ip", "link", "del", br], check=False, capture_output=True)
            if self._server is not None:
                self._server.stop()
            shutil.rmtree(self.root, ignore_errors=True)
        finally:
            signal.signal(signal.SIGINT, previous)
