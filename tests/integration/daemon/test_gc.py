"""multinetd's GC from the runtime's own truth (`gc: true`), against a fake container
runtime serving the real CRI proto (tests/support/cri.py) and real host-local allocations
(Debian's /usr/lib/cni/host-local, in the test's dataDir) leaked on purpose: a sandbox
the runtime removed without its DEL, a delegate whose DEL failed. Both are reclaimed; and
nothing is touched when the runtime cannot be asked, within the grace period, or dry."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.integration.daemon.sandbox import DaemonProc, Sandbox
from tests.support.cri import FakeRuntime

# A host-local that cannot release while `fail-ipam-del` exists beside it (its store out
# of reach): the bridge's DEL fails, multinet's DEL still succeeds and skips the release.
FLAKY_IPAM = """#!/bin/sh
d=$(dirname "$0")
if [ "$CNI_COMMAND" = DEL ] && [ -e "$d/fail-ipam-del" ]; then
  cat >/dev/null
  echo '{"cniVersion":"1.0.0","code":11,"msg":"the IPAM store is out of reach"}'
  exit 1
fi
exec /usr/lib/cni/host-local
"""
# A CNI 1.1.0 delegate that keeps each GC's configuration (gc-<n>.json beside it), and
# whose DEL fails while `fail-gcnet-del` exists.
GC_PLUGIN = """#!/bin/sh
d=$(dirname "$0")
stdin=$(cat)
case "$CNI_COMMAND" in
ADD) echo '{"cniVersion":"1.1.0"}' ;;
DEL) if [ -e "$d/fail-gcnet-del" ]; then
       echo '{"cniVersion":"1.1.0","code":11,"msg":"gcnet is out of reach"}'; exit 1
     fi ;;
GC) n=$(ls "$d" | grep -c '^gc-'); printf '%s' "$stdin" > "$d/gc-$n.json" ;;
VERSION) echo '{"cniVersion":"1.1.0","supportedVersions":["1.0.0","1.1.0"]}' ;;
esac
"""


@pytest.fixture
def runtime(sandbox: Sandbox) -> Iterator[FakeRuntime]:
    """The runtime, running multinetd's own pod (on the node's network, as a DaemonSet's)."""
    with FakeRuntime(str(sandbox.run / "cri.sock")) as fake:
        fake.run("self", "kube-system", "multinet-x", host_network=True)
        yield fake


def gc_daemon(sandbox: Sandbox, runtime: FakeRuntime, **keys: Any) -> DaemonProc:
    settings = {
        "gc": True,
        "gcRuntimeSocket": runtime.socket_path,
        "gcInterval": 1,
        "gcGracePeriod": 0,
        "gcQuietPeriod": 0,
        **keys,
    }
    return sandbox.daemon(**settings)


def metric(d: DaemonProc, series: str) -> float:
    """The value of one series of multinetd's /metrics (0 when it is not there yet)."""
    _, text = d.get("/metrics")
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == series:
            return float(value)
    return 0.0


def action(result: str, what: str = "sandbox-del") -> str:
    return f'multinet_gc_actions_total{{action="{what}",result="{result}"}}'


def plugin(sandbox: Sandbox, name: str, script: str) -> None:
    path = sandbox.bin / name
    path.write_text(script)
    path.chmod(0o755)


def add(d: DaemonProc, sandbox: Sandbox, cid: str, netns: str, conf: dict[str, Any]) -> None:
    code, out = d.cni(sandbox.env("ADD", cid, netns), json.dumps(conf).encode())
    assert code == 0, out


def delete(d: DaemonProc, sandbox: Sandbox, cid: str, netns: str, conf: dict[str, Any]) -> None:
    code, out = d.cni(sandbox.env("DEL", cid, netns), json.dumps(conf).encode())
    assert (code, out) == (0, ""), out


def records(sandbox: Sandbox) -> list[Path]:
    return sorted((sandbox.state / "releases").glob("*.json"))


def test_at_start_up_a_sandbox_the_runtime_no_longer_has_is_deleted_with_its_cached_result(
    sandbox: Sandbox, runtime: FakeRuntime
) -> None:
    conf = sandbox.netconf()
    kept, gone = sandbox.netns(), sandbox.netns()
    runtime.run("kept", "ns1", "pod-kept")
    runtime.run("gone", "ns1", "pod-gone")
    plain = sandbox.daemon()  # no GC: the leak happens as it does today
    add(plain, sandbox, "kept", kept, conf)
    add(plain, sandbox, "gone", gone, conf)
    plain.stop()
    assert len(sandbox.allocations()) == 2
    runtime.remove("gone")  # removed without its CNI DEL: the runtime lost it

    d = gc_daemon(sandbox, runtime, gcInterval=3600)  # the start-up pass only
    sandbox.wait_for(lambda: sandbox.journals() == ["kept@eth0.json"])

    assert len(sandbox.allocations()) == 1
    assert sandbox.links(gone) == [] and sandbox.links(kept) == ["eth0"]
    assert len(sandbox.bridge_ports()) == 1
    sandbox.wait_for(lambda: metric(d, 'multinet_gc_runs_total{result="done"}') == 1)
    assert metric(d, action("done")) == 1
    assert re.search(r"GC: DELed gone/eth0: .*pod=ns1/pod-gone", d.log())
    assert "ListPodSandbox" in runtime.calls
    delete(d, sandbox, "kept", kept, conf)
    sandbox.assert_clean(kept, gone)


def test_a_release_a_del_skipped_is_retried_until_its_delegate_succeeds(
    sandbox: Sandbox, runtime: FakeRuntime
) -> None:
    plugin(sandbox, "flakyipam", FLAKY_IPAM)
    conf = sandbox.netconf()
    conf["delegates"][0]["plugins"][0]["ipam"]["type"] = "flakyipam"
    ns = sandbox.netns()
    runtime.run("c1", "ns1", "pod-c1")
    d = gc_daemon(sandbox, runtime)
    add(d, sandbox, "c1", ns, conf)
    (sandbox.bin / "fail-ipam-del").touch()

    delete(d, sandbox, "c1", ns, conf)  # succeeds: the pod's deletion must not hang
    runtime.remove("c1")
    assert sandbox.links(ns) == [] and sandbox.journals() == []  # the leak guard
    assert len(sandbox.allocations()) == 1  # ...but the address is still held
    assert len(records(sandbox)) == 1
    sandbox.wait_for(lambda: metric(d, action("failed", "release-retry")) >= 2)
    assert len(sandbox.allocations()) == 1
    assert metric(d, "multinet_gc_pending_releases") == 1
    [rec] = records(sandbox)
    assert json.loads(rec.read_text())["attempts"] >= 3  # the DEL's own, then the retries

    (sandbox.bin / "fail-ipam-del").unlink()  # the IPAM store is back
    sandbox.wait_for(lambda: sandbox.allocations() == [])
    sandbox.wait_for(lambda: metric(d, action("done", "release-retry")) == 1)
    assert records(sandbox) == []
    assert metric(d, "multinet_gc_pending_releases") == 0
    assert re.search(r"GC: released c1/eth0 \(cluster\)", d.log())
    sandbox.assert_clean(ns)


def _break(runtime: FakeRuntime, how: str) -> None:
    if how == "down":
        runtime.stop()
    elif how == "failing":
        runtime.fail = grpc.StatusCode.INTERNAL
    elif how == "partial":
        runtime.empty_id = True
    else:  # lists nothing at all, not even multinetd's own pod
        runtime.remove("self")


def _mend(runtime: FakeRuntime, how: str) -> None:
    if how == "down":
        runtime.start()
    runtime.fail, runtime.empty_id = None, False
    runtime.run("self", "kube-system", "multinet-x", host_network=True)


@pytest.mark.parametrize("how", ["down", "failing", "partial", "empty"])
def test_nothing_is_deleted_when_the_runtime_cannot_be_asked(
    sandbox: Sandbox, runtime: FakeRuntime, how: str
) -> None:
    conf = sandbox.netconf()
    ns = sandbox.netns()
    _break(runtime, how)
    d = gc_daemon(sandbox, runtime)
    add(d, sandbox, "c1", ns, conf)  # a sandbox the runtime does not (seem to) have

    unavailable = 'multinet_gc_runs_total{result="runtime-unavailable"}'
    sandbox.wait_for(lambda: metric(d, unavailable) >= 3)
    assert sandbox.journals() == ["c1@eth0.json"]
    assert len(sandbox.allocations()) == 1 and sandbox.links(ns) == ["eth0"]
    assert metric(d, action("done")) == 0
    assert "GC skipped, nothing is deleted" in d.log()

    # The runtime answers whole again, and does not have c1: now it goes.
    _mend(runtime, how)
    sandbox.wait_for(lambda: sandbox.journals() == [])
    sandbox.assert_clean(ns)


def test_a_journal_younger_than_the_grace_period_is_left_alone(
    sandbox: Sandbox, runtime: FakeRuntime
) -> None:
    conf = sandbox.netconf()
    ns = sandbox.netns()
    d = gc_daemon(sandbox, runtime, gcGracePeriod=3600)
    add(d, sandbox, "c1", ns, conf)  # not listed: as while RunPodSandbox is still running
    sandbox.wait_for(lambda: metric(d, action("young")) >= 2)
    assert sandbox.journals() == ["c1@eth0.json"] and len(sandbox.allocations()) == 1

    # The same journal written two hours ago: the grace period alone kept it.
    journal = sandbox.state / "journal" / "c1@eth0.json"
    old = time.time() - 7200
    os.utime(journal, (old, old))
    sandbox.wait_for(lambda: sandbox.journals() == [])
    sandbox.assert_clean(ns)


def test_an_attachment_that_is_not_a_pods_is_left_alone(
    sandbox: Sandbox, runtime: FakeRuntime
) -> None:
    """No K8S_POD_NAME in its CNI_ARGS: not a kubelet's sandbox (nerdctl, podman), which
    the CRI does not list: the runtime's answer says nothing about it."""
    conf = sandbox.netconf()
    ns = sandbox.netns()
    d = gc_daemon(sandbox, runtime)
    env = sandbox.env("ADD", "c1", ns, CNI_ARGS="IgnoreUnknown=1")
    assert d.cni(env, json.dumps(conf).encode())[0] == 0
    sandbox.wait_for(lambda: metric(d, action("not-a-pod")) >= 2)
    assert sandbox.journals() == ["c1@eth0.json"] and len(sandbox.allocations()) == 1
    env = sandbox.env("DEL", "c1", ns, CNI_ARGS="IgnoreUnknown=1")
    assert d.cni(env, json.dumps(conf).encode())[0] == 0
    sandbox.assert_clean(ns)


def test_a_dry_run_only_says_what_it_would_do(sandbox: Sandbox, runtime: FakeRuntime) -> None:
    conf = sandbox.netconf()
    ns = sandbox.netns()
    d = gc_daemon(sandbox, runtime, gcDryRun=True)
    add(d, sandbox, "c1", ns, conf)
    sandbox.wait_for(lambda: metric(d, action("dry-run")) >= 2)
    assert sandbox.journals() == ["c1@eth0.json"]
    assert len(sandbox.allocations()) == 1 and sandbox.links(ns) == ["eth0"]
    assert metric(d, 'multinet_gc_runs_total{result="dry-run"}') >= 2
    assert "GC (dry run): would DEL c1/eth0" in d.log()
    delete(d, sandbox, "c1", ns, conf)
    sandbox.assert_clean(ns)


def _gcnet_conf(sandbox: Sandbox) -> dict[str, Any]:
    plugin(sandbox, "gcnet", GC_PLUGIN)
    conf = sandbox.netconf()
    conf["delegates"].append({"cniVersion": "1.1.0", "name": "gcnet", "type": "gcnet"})
    return conf


def _gcs(sandbox: Sandbox) -> list[dict[str, Any]]:
    found = sorted(sandbox.bin.glob("gc-*.json"), key=lambda p: int(p.stem[3:]))
    return [json.loads(p.read_text()) for p in found]


def test_cni_gc_goes_to_the_delegates_that_speak_it_naming_the_live_attachments(
    sandbox: Sandbox, runtime: FakeRuntime
) -> None:
    conf = _gcnet_conf(sandbox)
    a, b, c = sandbox.netns(), sandbox.netns(), sandbox.netns()
    for cid in ("a", "b", "c"):
        runtime.run(cid, "ns1", f"pod-{cid}")
    plain = sandbox.daemon()
    for cid, ns in (("a", a), ("b", b), ("c", c)):
        add(plain, sandbox, cid, ns, conf)
    (sandbox.bin / "fail-gcnet-del").touch()
    delete(plain, sandbox, "c", c, conf)  # gcnet's release skipped
    plain.stop()
    runtime.remove("c")
    runtime.remove("b")  # gone without its DEL
    assert len(records(sandbox)) == 1

    d = gc_daemon(sandbox, runtime, gcInterval=3600)
    sandbox.wait_for(lambda: metric(d, 'multinet_gc_runs_total{result="done"}') == 1)

    # b was DELed (its gcnet release skipped too), the retries failed, then gcnet's own
    # GC (CNI 1.1.0; the 1.0.0 cluster network gets none) was told what is still valid.
    assert sandbox.journals() == ["a@eth0.json"]
    assert len(sandbox.allocations()) == 1
    [gc] = _gcs(sandbox)
    assert (gc["name"], gc["cniVersion"], gc["type"]) == ("gcnet", "1.1.0", "gcnet")
    assert gc["cni.dev/valid-attachments"] == [{"containerID": "a", "ifname": "net1"}]
    # Its GC reclaimed what the skipped releases held: they are done.
    assert records(sandbox) == []
    assert metric(d, action("collected", "release-retry")) == 2
    assert metric(d, action("done", "cni-gc")) == 1

    (sandbox.bin / "fail-gcnet-del").unlink()
    delete(d, sandbox, "a", a, conf)
    sandbox.assert_clean(a, b, c)


def test_no_cni_gc_while_a_ready_sandbox_on_the_pod_network_has_no_journal(
    sandbox: Sandbox, runtime: FakeRuntime
) -> None:
    """A pod attached before multinet was (or by Multus): its attachments are unknown, so
    a network's GC would take its addresses. DELs of gone sandboxes still happen."""
    conf = _gcnet_conf(sandbox)
    a = sandbox.netns()
    runtime.run("a", "ns1", "pod-a")
    runtime.run("foreign", "ns1", "pod-before-multinet")
    d = gc_daemon(sandbox, runtime)
    add(d, sandbox, "a", a, conf)
    sandbox.wait_for(lambda: metric(d, action("skipped", "cni-gc")) >= 2)
    assert _gcs(sandbox) == []
    assert "ns1/pod-before-multinet" in d.log()

    runtime.stop_sandbox("foreign")  # stopped: its network is torn down
    sandbox.wait_for(lambda: len(_gcs(sandbox)) >= 1)
    assert _gcs(sandbox)[0]["cni.dev/valid-attachments"] == [{"containerID": "a", "ifname": "net1"}]
    delete(d, sandbox, "a", a, conf)
    sandbox.assert_clean(a)


def _mapped(pid: int) -> str:
    """The files mapped into a process: a loaded extension module (grpc's cygrpc) is one."""
    return Path(f"/proc/{pid}/maps").read_text()


def test_grpc_is_never_loaded_into_multinetd_by_a_pass(
    sandbox: Sandbox, runtime: FakeRuntime
) -> None:
    """The CRI is asked in a child process: grpcio (~17 MiB for the process's life) never
    enters multinetd, neither with the list nor with a sandbox status asked."""
    runtime.run("foreign", "ns1", "pod-before-multinet")  # asks PodSandboxStatus too
    d = gc_daemon(sandbox, runtime, gcInterval=3600)
    sandbox.wait_for(lambda: metric(d, 'multinet_gc_runs_total{result="done"}') == 1)
    assert runtime.calls.count("ListPodSandbox") == 1
    assert runtime.calls.count("PodSandboxStatus") == 2  # the foreign pod, multinetd's own
    maps = _mapped(d.proc.pid)
    assert "cygrpc" not in maps and "/grpc/" not in maps
    assert "/google/protobuf/" not in maps


def test_a_pass_waits_for_the_cni_requests_to_pause(sandbox: Sandbox, runtime: FakeRuntime) -> None:
    """A pass (the start-up one included: a node that reboots starts every pod at once)
    starts only once the admission lanes have been idle gcQuietPeriod seconds."""
    conf = sandbox.netconf(slow=True)
    a = sandbox.netns()
    runtime.run("a", "ns1", "pod-a")
    sandbox.block()
    d = gc_daemon(sandbox, runtime, gcInterval=3600, gcQuietPeriod=2)
    adding = threading.Thread(target=add, args=(d, sandbox, "a", a, conf))
    adding.start()
    try:
        sandbox.wait_for(lambda: "ADD" in " ".join(sandbox.calls()))
        time.sleep(3)  # past the quiet period: the ADD still executes
        assert runtime.calls == []
    finally:
        sandbox.unblock()
        adding.join()
    sandbox.wait_for(lambda: metric(d, 'multinet_gc_runs_total{result="done"}') == 1)
    delete(d, sandbox, "a", a, conf)
    sandbox.assert_clean(a)
