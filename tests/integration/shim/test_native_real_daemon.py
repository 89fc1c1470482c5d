"""The native shim against the real multinetd: VERSION for every CNI version, and
ADD/CHECK/DEL of a real bridge network in a fresh namespace; the answers equal the
daemon's own for the same requests (through the Python client of the protocol), and
DEL still succeeds once the daemon is gone."""

from __future__ import annotations

import ipaddress
import json
import secrets
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from multinet.shim import client, protocol
from tests.integration.shim.shimkit import CNI_VERSIONS, Daemon, base_env, netconf, run

pytestmark = pytest.mark.root


def same_answer(shim_bin: Path, stdin: bytes, env: dict[str, str]) -> tuple[int, bytes]:
    """The native shim's (code, stdout), checked equal to what the daemon answers the same
    request sent by multinet.shim.client (the protocol's Python side)."""
    native = run([shim_bin], stdin, env)
    assert native.stderr == b"", native.stderr  # the daemon answered: no fallback
    code, stdout = client.call_daemon(protocol.socket_path(stdin), dict(env), stdin)
    if env.get("CNI_COMMAND") != "ADD" or code != 0:  # a second ADD would be refused
        assert (native.returncode, native.stdout) == (code, stdout.encode())
    return native.returncode, native.stdout


@pytest.mark.parametrize("version", CNI_VERSIONS)
def test_version_through_the_daemon(
    shim_bin: Path, multinetd: Callable[[], Daemon], version: str
) -> None:
    d = multinetd()
    code, stdout = same_answer(
        shim_bin, netconf(cniVersion=version, daemonSocketPath=d.socket), base_env("VERSION")
    )
    assert code == 0
    answer = json.loads(stdout)
    assert answer["cniVersion"] == version
    assert set(CNI_VERSIONS) <= set(answer["supportedVersions"])


@dataclass
class Pod:
    netns: str  # the name under /var/run/netns
    bridge: str
    subnet: ipaddress.IPv4Network
    ipam: Path

    def env(self, command: str) -> dict[str, str]:
        return base_env(
            command,
            CNI_CONTAINERID=f"ctr-{self.netns}",
            CNI_NETNS=f"/var/run/netns/{self.netns}",
            CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=pod",
        )

    def netconf(self, version: str, d: Daemon) -> bytes:
        gw = str(self.subnet.network_address + 1)
        bridge = {
            "cniVersion": "1.0.0",
            "name": "c",
            "type": "bridge",
            "bridge": self.bridge,
            "ipam": {
                "type": "host-local",
                "subnet": str(self.subnet),
                "dataDir": str(self.ipam),
                "routes": [{"dst": "192.0.2.0/24", "gw": gw}],
            },
        }
        return netconf(
            cniVersion=version,
            daemonSocketPath=d.socket,
            cniDir=str(d.state),  # the in-process fallback finds the daemon's journal
            binDir="/usr/lib/cni",
            delegates=[bridge],
        )

    def addresses(self) -> list[str]:
        out = subprocess.run(
            ["ip", "-j", "-n", self.netns, "addr", "show"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return [a["local"] for link in json.loads(out) for a in link.get("addr_info", [])]

    def allocated(self) -> list[str]:
        net = self.ipam / "c"
        return sorted(p.name for p in net.iterdir() if p.name[0].isdigit()) if net.is_dir() else []


@pytest.fixture
def pod(workdir: Path) -> Iterator[Pod]:
    token = secrets.token_hex(3)
    subnet = ipaddress.IPv4Network(
        f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(256)}.0/24"
    )
    p = Pod(f"mnshim-{token}", f"mnshimb{token}", subnet, workdir / "ipam")
    subprocess.run(["ip", "netns", "add", p.netns], check=True, capture_output=True)
    try:
        yield p
    finally:
        subprocess.run(["ip", "netns", "del", p.netns], check=False, capture_output=True)
        subprocess.run(["ip", "link", "del", p.bridge], check=False, capture_output=True)


def add(shim_bin: Path, pod: Pod, version: str, d: Daemon) -> str:
    result = run([shim_bin], pod.netconf(version, d), pod.env("ADD"))
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert result.stderr == b""
    answer = json.loads(result.stdout)
    assert answer["cniVersion"] == version
    ips = [ipaddress.ip_interface(ip["address"]) for ip in answer["ips"]]
    assert [ip.ip in pod.subnet for ip in ips] == [True]
    address = str(ips[0].ip)
    assert address in pod.addresses()
    assert pod.allocated() == [address]
    return address


@pytest.mark.parametrize("version", ["0.4.0", "1.0.0"])
def test_add_check_del_through_the_daemon(
    shim_bin: Path, multinetd: Callable[[], Daemon], pod: Pod, version: str
) -> None:
    d = multinetd()
    stdin = pod.netconf(version, d)
    address = add(shim_bin, pod, version, d)
    assert same_answer(shim_bin, stdin, pod.env("CHECK")) == (0, b"")
    # A second ADD of the same container: the same answer from both shims.
    code, _ = same_answer(shim_bin, stdin, pod.env("ADD"))
    assert code != 0
    assert address in pod.addresses()

    result = run([shim_bin], stdin, pod.env("DEL"))
    assert (result.returncode, result.stderr) == (0, b"")
    assert address not in pod.addresses()
    assert pod.allocated() == []
    assert same_answer(shim_bin, stdin, pod.env("DEL")) == (0, result.stdout)

    # The daemon stops after an ADD: DEL falls back to the thin multinet beside the
    # shim, and still completes.
    address = add(shim_bin, pod, version, d)
    d.stop()
    result = run([shim_bin], stdin, pod.env("DEL"))
    assert "running DEL in-process" in result.stderr.decode(), result.stderr
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert address not in pod.addresses()
    assert pod.allocated() == []
