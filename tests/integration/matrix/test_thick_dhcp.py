"""Thick mode: multinetd supervises the real DHCP client daemon; pods get DHCP leases
through the native shim, talk over net1, survive the client daemon's death (restarted),
and leave nothing when deleted."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from tests.integration.daemon.sandbox import Sandbox
from tests.integration.matrix.conftest import DHCP_PLUGIN, DhcpLan, Echo


def supervised_pids(socket: str) -> list[int]:
    """The dhcp daemons serving `socket` (by their command line)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[:1] == [str(DHCP_PLUGIN).encode()] and socket.encode() in argv:
            stat = Path(f"/proc/{pid}/stat").read_text().split()
            if stat[2] != "Z":
                out.append(int(pid))
    return out


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in the metrics")


def test_multinetd_supervises_the_dhcp_daemon_and_pods_talk_over_dhcp(
    sandbox: Sandbox, dhcp_lan: DhcpLan, echo: Echo
) -> None:
    dhcp_lan.kill_daemon()  # multinetd runs its own on the same socket
    d = sandbox.daemon(
        dhcpDaemon=True,
        dhcpDaemonSocketPath=dhcp_lan.socket,
        dhcpDaemonBinary=str(DHCP_PLUGIN),
        generateConfig=False,
    )
    sandbox.wait_for(lambda: metric(d.get("/metrics")[1], "multinet_dhcp_daemon_up") == 1)
    assert not any("DHCP" in r for r in d.get("/readyz")[1].get("reasons", []))
    dhcp_net = {
        "cniVersion": "1.0.0",
        "name": "dhcp",
        "type": "macvlan",
        "master": dhcp_lan.master,
        "mode": "bridge",
        "ipam": dhcp_lan.ipam(),
    }
    conf = sandbox.netconf()
    conf["delegates"].append(dhcp_net)
    pods = [(f"c{i}", sandbox.netns()) for i in range(2)]
    addresses = []
    for cid, ns in pods:
        p = sandbox.shim("ADD", cid, ns, conf=conf)
        assert p.returncode == 0, (p.stdout, p.stderr, d.log())
        net1 = json.loads(os.popen(f"ip -j -n {os.path.basename(ns)} -4 addr show dev net1").read())
        addresses.append(net1[0]["addr_info"][0]["local"])
    assert set(addresses) <= set(dhcp_lan.leases().values())
    echo.check(pods[0][1], addresses[0], pods[1][1])

    # The client daemon dies: multinetd restarts it; the pods keep their leases.
    (pid,) = supervised_pids(dhcp_lan.socket)
    os.kill(pid, signal.SIGKILL)
    sandbox.wait_for(
        lambda: (
            metric(d.get("/metrics")[1], "multinet_dhcp_daemon_restarts_total") >= 1
            and metric(d.get("/metrics")[1], "multinet_dhcp_daemon_up") == 1
        )
    )
    for cid, ns in pods:
        p = sandbox.shim("DEL", cid, ns, conf=conf)
        assert p.returncode == 0, (p.stdout, p.stderr)
    sandbox.assert_clean(*(ns for _, ns in pods))
    assert d.stop() == 0
    deadline = time.monotonic() + 5
    while supervised_pids(dhcp_lan.socket) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert supervised_pids(dhcp_lan.socket) == [], "multinetd left its DHCP daemon running"
