"""Helpers for thick-mode tests (imported as `tests.integration.daemon.sandbox`: a module named
`conftest` is ambiguous when pytest collects several directories)."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from multinet.cli import install
from multinet.shim import client as shim
from tests.support.kubeapi import KubeAPIServer

REFERENCE_PLUGINS = Path("/usr/lib/cni")
TEST_PLUGIN = r"""#!/bin/sh
# A delegate for tests: logs each call; ADD waits while the file 'block' exists,
# DEL while 'block-del' does.
d=$(dirname "$0")
cat >/dev/null
echo "$CNI_COMMAND $CNI_CONTAINERID $CNI_IFNAME args=$CNI_ARGS var=$MND_TEST_VAR" >> "$d/calls"
case "$CNI_COMMAND" in
ADD) while [ -e "$d/block" ]; do sleep 0.05; done; echo '{"cniVersion":"1.0.0"}' ;;
DEL) while [ -e "$d/block-del" ]; do sleep 0.05; done ;;
VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}' ;;
esac
"""


def replace(path: Path, text: str) -> None:
    """Rewrite `path` as the kubelet does: a new file, renamed over the old one."""
    new = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    new.write_text(text)
    os.rename(new, path)


class Kubelet(threading.Thread):
    """Rotates the token file as the kubelet does: a new token at 80% of the current
    one's lifetime, the file replaced by a rename. Once the token it replaced expired,
    the API server ends every watch (its request timeout): they watch again, with the
    token of the file."""

    def __init__(self, kubeapi: KubeAPIServer, token: Path, first: str, lifetime: float) -> None:
        super().__init__(name="kubelet", daemon=True)
        self.kubeapi, self.token, self.current = kubeapi, token, first
        self.lifetime = lifetime
        self.rotations = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.8 * self.lifetime):
            old, self.current = self.current, self.kubeapi.mint_token(self.lifetime)
            replace(self.token, self.current + "\n")
            self.rotations += 1
            expires = self.kubeapi.tokens.expires_in(old) or 0.0
            if self.stop.wait(max(expires, 0.0) + 0.1):
                return
            self.kubeapi.end_watches()


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: creates network namespaces and bridges")
    if shutil.which("ip") is None or not (REFERENCE_PLUGINS / "bridge").is_file():
        pytest.skip("needs iproute2 and the reference plugins (containernetworking-plugins)")


def ip_json(*args: str) -> Any:
    out = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True).stdout
    return json.loads(out or "[]")


class DaemonProc:
    def __init__(
        self,
        config_path: Path,
        socket_path: str,
        log_path: Path,
        prefix: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.socket = socket_path
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "multinet.daemon.main", "--config", str(config_path)],
            stdout=self._log,
            stderr=self._log,
            env={**os.environ, **(env or {})},
        )
        self.wait_healthy()

    def wait_healthy(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"multinetd exited {self.proc.returncode}: {self.log()}")
            with contextlib.suppress(shim.DaemonUnavailable):
                if shim.request(self.socket, "GET", "/healthz", timeout=2)[0] == 200:
                    return
            time.sleep(0.05)
        raise AssertionError(f"multinetd did not become healthy: {self.log()}")

    def get(self, path: str) -> tuple[int, Any]:
        status, body = shim.request(self.socket, "GET", path, timeout=10)
        text = body.decode()
        return status, (text if path == "/metrics" else json.loads(text))

    def cni(self, env: dict[str, str], stdin: bytes) -> tuple[int, str]:
        return shim.call_daemon(self.socket, env, stdin)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


class Sandbox:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.run = Path(tempfile.mkdtemp(prefix="mnd-", dir="/tmp"))
        self.socket = str(self.run / "s" / "multinet.sock")
        self.state, self.ipam, self.bin, self.net_d = (
            tmp_path / n for n in ("state", "ipam", "bin", "net.d")
        )
        for d in (self.bin, self.net_d):
            d.mkdir()
        plugin = self.bin / "mndtest"
        plugin.write_text(TEST_PLUGIN)
        plugin.chmod(0o755)
        # The host's CNI bin directory: the native shim, and the thin multinet it execs
        # when the daemon does not answer (what `multinetctl install-shim` installs).
        self.host_bin = tmp_path / "opt-cni-bin"
        self.host_bin.mkdir()
        paths = install.install(str(self.host_bin), sys.executable)
        self.shim_path, self.thin_path = paths[install.SHIM], paths[install.THIN]
        self.subnet = ipaddress.IPv4Network(f"10.250.{secrets.randbelow(256)}.0/24")
        self.bridge = f"mndb{secrets.token_hex(4)}"
        self.namespaces: list[str] = []
        self.daemons: list[DaemonProc] = []

    # -- setup ---------------------------------------------------------------

    def create_bridge(self) -> None:
        # A fixed MAC: otherwise the bridge takes its lowest port's and CHECK of
        # earlier containers fails with "Mac doesn't match".
        mac = "02:6d:64:" + ":".join(secrets.token_hex(3)[i : i + 2] for i in (0, 2, 4))
        subprocess.run(["ip", "link", "add", self.bridge, "type", "bridge"], check=True)
        subprocess.run(["ip", "link", "set", self.bridge, "address", mac, "up"], check=True)

    def netns(self) -> str:
        name = f"mnd-{secrets.token_hex(4)}"
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
        self.namespaces.append(name)
        return f"/var/run/netns/{name}"

    def netconf(self, slow: bool = False, **keys: Any) -> dict[str, Any]:
        gw = str(self.subnet.network_address + 1)
        cluster = {
            "cniVersion": "1.0.0",
            "name": "cluster",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.bridge,
                    "ipam": {
                        "type": "host-local",
                        "dataDir": str(self.ipam),
                        "ranges": [[{"subnet": str(self.subnet), "gateway": gw}]],
                        "routes": [{"dst": "0.0.0.0/0", "gw": gw}],
                    },
                }
            ],
        }
        delegates: list[dict[str, Any]] = [cluster]
        if slow:
            delegates.append({"cniVersion": "1.0.0", "name": "slow", "type": "mndtest"})
        return {
            "cniVersion": "1.0.0",
            "name": "mn",
            "type": "multinet-shim",
            "daemonSocketPath": self.socket,
            "cniDir": str(self.state),
            "binDir": str(self.bin),
            "delegates": delegates,
            **keys,
        }

    def env(self, command: str, cid: str = "", netns: str = "", **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
        env.update(
            CNI_COMMAND=command,
            CNI_CONTAINERID=cid,
            CNI_NETNS=netns,
            CNI_IFNAME="eth0",
            CNI_PATH=str(REFERENCE_PLUGINS),
            CNI_ARGS=f"IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=pod-{cid}",
        )
        env.update(extra)
        return env

    def daemon(
        self, prefix: tuple[str, ...] = (), env: dict[str, str] | None = None, **keys: Any
    ) -> DaemonProc:
        """multinetd with these config keys; `prefix`: a command it is started through
        (e.g. one that enters a cgroup, then execs it); `env`: added to its environment."""
        # cniDir: the daemon's own state (the shared cluster's status records) stays in
        # the test's directory, never the host's default /var/lib/cni/multinet.
        config = {
            "daemonSocketPath": self.socket,
            "cniConfigDir": str(self.net_d),
            "cniDir": str(self.state),
            **keys,
        }
        path = self.tmp / f"daemon{len(self.daemons)}.json"
        path.write_text(json.dumps(config))
        log = self.tmp / f"daemon{len(self.daemons)}.log"
        d = DaemonProc(path, self.socket, log, prefix, env)
        self.daemons.append(d)
        return d

    def shim(
        self,
        command: str,
        cid: str = "",
        netns: str = "",
        conf: dict[str, Any] | None = None,
        argv: list[str] | None = None,
        **extra: str,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv or [self.shim_path],
            input=json.dumps(conf if conf is not None else self.netconf()),
            env=self.env(command, cid, netns, **extra),
            capture_output=True,
            text=True,
            timeout=120,
        )

    def block(self, command: str = "ADD") -> None:
        (self.bin / ("block" if command == "ADD" else "block-del")).touch()

    def unblock(self) -> None:
        for name in ("block", "block-del"):
            with contextlib.suppress(FileNotFoundError):
                (self.bin / name).unlink()

    def calls(self) -> list[str]:
        path = self.bin / "calls"
        return path.read_text().splitlines() if path.exists() else []

    def wait_for(self, cond: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting")
            time.sleep(0.02)

    # -- leak checks ---------------------------------------------------------

    def links(self, netns: str) -> list[str]:
        names = [link["ifname"] for link in ip_json("-n", os.path.basename(netns), "link")]
        return [n for n in names if n != "lo"]

    def allocations(self) -> list[str]:
        """IPs host-local holds (every file but its bookkeeping)."""
        files = self.ipam.rglob("*") if self.ipam.exists() else []
        return [
            f.name
            for f in files
            if f.is_file() and f.name != "lock" and not f.name.startswith("last_reserved_ip")
        ]

    def journals(self) -> list[str]:
        d = self.state / "journal"
        return sorted(p.name for p in d.glob("*.json")) if d.exists() else []

    def bridge_ports(self) -> list[str]:
        return [link["ifname"] for link in ip_json("link", "show", "master", self.bridge)]

    def assert_clean(self, *namespaces: str) -> None:
        for ns in namespaces:
            assert self.links(ns) == [], f"{ns} still has interfaces"
        assert self.allocations() == [], "host-local still holds addresses"
        assert self.journals() == [], "journal entries left"
        assert self.bridge_ports() == [], "bridge still has ports"

    # -- teardown ------------------------------------------------------------

    def close(self) -> None:
        self.unblock()
        for d in self.daemons:
            d.stop(signal.SIGTERM, timeout=10)
        for name in self.namespaces:
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], check=False, capture_output=True)
        shutil.rmtree(self.run, ignore_errors=True)
