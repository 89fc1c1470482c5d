"""The shim forwards to the daemon; without a daemon it does the work itself."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.integration.daemon.sandbox import Sandbox


def test_add_check_del_through_the_daemon(sandbox: Sandbox) -> None:
    d = sandbox.daemon()
    ns = sandbox.netns()
    conf = sandbox.netconf(slow=True)

    add = sandbox.shim("ADD", "c1", ns, conf, MND_TEST_VAR="from-the-runtime")
    assert add.returncode == 0, add.stdout + add.stderr
    result = json.loads(add.stdout)
    assert result["cniVersion"] == "1.0.0"
    assert result["ips"][0]["address"].startswith(str(sandbox.subnet.network_address + 2))
    assert "in-process" not in add.stderr  # the daemon did it
    assert sandbox.links(ns) == ["eth0"]  # mndtest (net1) makes no interface
    # The whole environment reached the delegates, CNI_ARGS untouched.
    assert sandbox.calls() == [
        "ADD c1 net1 args=IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=pod-c1 "
        "var=from-the-runtime"
    ]

    check = sandbox.shim("CHECK", "c1", ns, conf)
    assert check.returncode == 0, check.stdout
    assert check.stdout == ""

    delete = sandbox.shim("DEL", "c1", ns, conf)
    assert delete.returncode == 0, delete.stdout
    assert delete.stdout == ""
    sandbox.assert_clean(ns)
    # Each line of the daemon's log about this request names the pod and container.
    lines = [line for line in d.log().splitlines() if "container=c1" in line]
    assert len(lines) >= 3
    assert all("pod=ns1/pod-c1" in line for line in lines)


def test_errors_come_back_as_cni_errors(sandbox: Sandbox) -> None:
    sandbox.daemon()
    ns = sandbox.netns()
    check = sandbox.shim("CHECK", "never-added", ns)
    assert check.returncode == 1
    assert json.loads(check.stdout)["code"] == 3  # unknown container
    bad = sandbox.shim("ADD", "c1", ns, conf={"cniVersion": "9.9.9", "name": "x", "type": "y"})
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["code"] == 1  # incompatible version


def test_daemon_down_add_and_del_run_in_process(sandbox: Sandbox) -> None:
    ns = sandbox.netns()  # no daemon was ever started: the socket does not exist
    add = sandbox.shim("ADD", "c1", ns)
    assert add.returncode == 0, add.stdout + add.stderr
    assert "running ADD in-process" in add.stderr
    assert sandbox.links(ns) == ["eth0"]
    delete = sandbox.shim("DEL", "c1", ns)
    assert delete.returncode == 0, delete.stdout + delete.stderr
    assert "running DEL in-process" in delete.stderr
    sandbox.assert_clean(ns)


def test_daemon_stopped_after_add_del_still_completes(sandbox: Sandbox) -> None:
    d = sandbox.daemon()
    ns = sandbox.netns()
    assert sandbox.shim("ADD", "c1", ns).returncode == 0
    assert d.stop() == 0
    delete = sandbox.shim("DEL", "c1", ns)
    assert delete.returncode == 0, delete.stdout + delete.stderr
    assert "in-process" in delete.stderr
    sandbox.assert_clean(ns)


def test_daemon_keys_override_the_request(sandbox: Sandbox) -> None:
    # The request names a binDir without the test plugin; the daemon's binDir wins.
    sandbox.daemon(binDir=str(sandbox.bin))
    ns = sandbox.netns()
    conf = sandbox.netconf(slow=True, binDir="/nonexistent")
    add = sandbox.shim("ADD", "c1", ns, conf)
    assert add.returncode == 0, add.stdout
    assert len(sandbox.calls()) == 1
    assert sandbox.shim("DEL", "c1", ns, conf).returncode == 0
    sandbox.assert_clean(ns)


def test_installed_shim_falls_back_to_the_installed_thin_executable(sandbox: Sandbox) -> None:
    """`multinetctl install-shim` puts both in the CNI bin dir: the shim needs no netconf
    key to find its fallback."""
    ns = sandbox.netns()
    with open(sandbox.shim_path, "rb") as f:
        assert f.read(4) == b"\x7fELF"  # the native shim
    add = sandbox.shim("ADD", "c1", ns)
    assert add.returncode == 0, add.stdout + add.stderr
    assert "running ADD in-process" in add.stderr
    assert sandbox.shim("DEL", "c1", ns).returncode == 0
    sandbox.assert_clean(ns)


def test_multinetctl_asks_the_daemon(sandbox: Sandbox) -> None:
    sandbox.daemon(cniDir=str(sandbox.state))
    ns = sandbox.netns()
    assert sandbox.shim("ADD", "c1", ns).returncode == 0

    def ctl(*args: str) -> subprocess.CompletedProcess[str]:
        code = "import sys; from multinet.cli.multinetctl import main; main(sys.argv[1:])"
        argv = [sys.executable, "-c", code, *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=30)

    health = ctl("daemon", "health", "--socket", sandbox.socket)
    assert health.returncode == 0 and json.loads(health.stdout) == {"status": "ok"}
    ready = ctl("daemon", "ready", "--socket", sandbox.socket)
    assert ready.returncode == 1  # no primary CNI config in cniConfigDir
    assert "primary network" in json.loads(ready.stdout)["reasons"][0]
    rows = json.loads(ctl("daemon", "attachments", "--socket", sandbox.socket).stdout)
    assert [(r["containerID"], r["ifname"], r["complete"]) for r in rows] == [("c1", "eth0", True)]
    assert "multinet_requests_total" in ctl("daemon", "metrics", "--socket", sandbox.socket).stdout
    down = ctl("daemon", "health", "--socket", str(sandbox.tmp / "none.sock"))
    assert down.returncode == 1 and "does not answer" in down.stderr
    assert sandbox.shim("DEL", "c1", ns).returncode == 0
    sandbox.assert_clean(ns)
