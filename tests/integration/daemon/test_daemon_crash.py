"""The daemon dies or is stopped in the middle of an ADD."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import pytest

from multinet.shim import client as shim
from tests.integration.daemon.sandbox import Sandbox


def _adds_started(sandbox: Sandbox) -> int:
    return sum(1 for line in sandbox.calls() if line.startswith("ADD "))


def test_sigkill_during_add_then_del_through_the_shim_cleans_everything(sandbox: Sandbox) -> None:
    d = sandbox.daemon()
    ns = sandbox.netns()
    conf = sandbox.netconf(slow=True)
    sandbox.block()
    answer: dict[str, object] = {}

    def add() -> None:
        try:
            answer["reply"] = d.cni(sandbox.env("ADD", "c1", ns), json.dumps(conf).encode())
        except shim.DaemonUnavailable as e:
            answer["error"] = e

    t = threading.Thread(target=add)
    t.start()
    # The cluster network (bridge) is attached; the second delegate hangs.
    sandbox.wait_for(lambda: _adds_started(sandbox) == 1)
    assert sandbox.links(ns) == ["eth0"]
    d.proc.send_signal(signal.SIGKILL)
    t.join(10)
    assert isinstance(answer.get("error"), shim.DaemonUnavailable)  # the shim would fall back
    sandbox.unblock()

    delete = sandbox.shim("DEL", "c1", ns, conf)  # the socket is stale: in-process
    assert delete.returncode == 0, delete.stdout + delete.stderr
    assert "in-process" in delete.stderr
    sandbox.assert_clean(ns)


def test_shim_add_survives_a_daemon_killed_midway(sandbox: Sandbox) -> None:
    d = sandbox.daemon()
    ns = sandbox.netns()
    conf = sandbox.netconf(slow=True)
    sandbox.block()
    stdin = sandbox.tmp / "add.json"
    stdin.write_text(json.dumps(conf))
    with stdin.open() as f:
        proc = subprocess.Popen(
            [sandbox.shim_path],
            stdin=f,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=sandbox.env("ADD", "c1", ns),
            text=True,
        )
    sandbox.wait_for(lambda: _adds_started(sandbox) == 1)
    d.proc.send_signal(signal.SIGKILL)
    # The shim re-runs the ADD in-process: the journal rolls back the half-done ADD
    # (DEL of both networks), then adds again.
    sandbox.wait_for(lambda: _adds_started(sandbox) == 2)
    sandbox.unblock()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    assert "running ADD in-process" in err
    assert json.loads(out)["ips"][0]["address"]
    assert [c.split()[0] for c in sandbox.calls()] == ["ADD", "DEL", "ADD"]
    assert sandbox.links(ns) == ["eth0"]
    assert len(sandbox.allocations()) == 1  # the first address was released

    delete = sandbox.shim("DEL", "c1", ns, conf)
    assert delete.returncode == 0, delete.stdout + delete.stderr
    sandbox.assert_clean(ns)


def test_shim_del_survives_a_daemon_killed_midway(sandbox: Sandbox) -> None:
    d = sandbox.daemon()
    ns = sandbox.netns()
    conf = sandbox.netconf(slow=True)
    assert sandbox.shim("ADD", "c1", ns, conf).returncode == 0
    sandbox.block("DEL")
    stdin = sandbox.tmp / "del.json"
    stdin.write_text(json.dumps(conf))
    with stdin.open() as f:
        proc = subprocess.Popen(
            [sandbox.shim_path],
            stdin=f,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=sandbox.env("DEL", "c1", ns),
            text=True,
        )
    sandbox.wait_for(lambda: any(c.startswith("DEL ") for c in sandbox.calls()))
    d.proc.send_signal(signal.SIGKILL)
    sandbox.unblock()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    assert "running DEL in-process" in err
    sandbox.assert_clean(ns)


@pytest.mark.timeout(60)
def test_sigterm_finishes_the_request_in_flight(sandbox: Sandbox) -> None:
    d = sandbox.daemon(cleanupConfigOnExit=True)
    ns = sandbox.netns()
    conf = sandbox.netconf(slow=True)
    sandbox.block()
    answer: dict[str, tuple[int, str]] = {}
    t = threading.Thread(
        target=lambda: answer.setdefault(
            "reply", d.cni(sandbox.env("ADD", "c1", ns), json.dumps(conf).encode())
        )
    )
    t.start()
    sandbox.wait_for(lambda: _adds_started(sandbox) == 1)

    d.proc.send_signal(signal.SIGTERM)
    sandbox.wait_for(lambda: not os.path.exists(sandbox.socket), timeout=5)
    time.sleep(0.3)
    assert d.proc.poll() is None, "the daemon must wait for the ADD in flight"
    # Meanwhile a new request does not queue behind the shutdown: it runs in-process.
    other = sandbox.netns()
    late = sandbox.shim("ADD", "c2", other)
    assert late.returncode == 0, late.stdout + late.stderr
    assert "in-process" in late.stderr

    sandbox.unblock()
    t.join(30)
    code, stdout = answer["reply"]
    assert code == 0, stdout
    assert json.loads(stdout)["ips"]
    assert d.proc.wait(15) == 0
    assert "shutting down" in d.log() and "stopped" in d.log()

    for cid, netns in (("c1", ns), ("c2", other)):
        assert sandbox.shim("DEL", cid, netns, conf).returncode == 0
    sandbox.assert_clean(ns, other)
