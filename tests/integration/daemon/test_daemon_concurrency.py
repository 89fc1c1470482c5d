"""Many requests at once: distinct containers run concurrently, the same one is serialized."""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.daemon.sandbox import Sandbox

PODS = 50


@pytest.mark.timeout(180)
def test_50_concurrent_add_and_del_of_distinct_containers(sandbox: Sandbox) -> None:
    d = sandbox.daemon()
    conf = sandbox.netconf()
    pods = [(f"c{i}", sandbox.netns()) for i in range(PODS)]

    def run(command: str, cid: str, ns: str) -> subprocess.CompletedProcess[str]:
        return sandbox.shim(command, cid, ns, conf)  # the native shim, as installed

    with ThreadPoolExecutor(PODS) as pool:
        adds = list(pool.map(lambda p: run("ADD", *p), pods))
    failed = [(a.stdout, a.stderr) for a in adds if a.returncode != 0 or a.stderr]
    assert failed == []
    addresses = {json.loads(a.stdout)["ips"][0]["address"] for a in adds}
    assert len(addresses) == PODS  # one distinct address per pod
    assert len(sandbox.allocations()) == PODS
    assert all(sandbox.links(ns) == ["eth0"] for _, ns in pods)
    assert len(d.get("/v1/attachments")[1]) == PODS  # the daemon lists what it attached

    with ThreadPoolExecutor(PODS) as pool:
        dels = list(pool.map(lambda p: run("DEL", *p), pods))
    assert [(x.stdout, x.stderr) for x in dels if x.returncode != 0 or x.stderr] == []
    sandbox.assert_clean(*(ns for _, ns in pods))
    metrics = d.get("/metrics")[1]
    assert f'multinet_requests_total{{command="ADD",result="success"}} {PODS}' in metrics
    assert f'multinet_requests_total{{command="DEL",result="success"}} {PODS}' in metrics


def test_same_container_added_twice_concurrently(sandbox: Sandbox) -> None:
    d = sandbox.daemon()
    ns = sandbox.netns()
    stdin = json.dumps(sandbox.netconf()).encode()
    env = sandbox.env("ADD", "twice", ns)
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: d.cni(env, stdin), range(2)))
    codes = sorted(code for code, _ in answers)
    assert codes == [0, 1], answers
    error = json.loads(next(out for code, out in answers if code == 1))
    assert error["code"] == 102 and "already has networks attached" in error["msg"]
    assert sandbox.links(ns) == ["eth0"]
    assert len(sandbox.allocations()) == 1

    code, out = d.cni(sandbox.env("DEL", "twice", ns), stdin)
    assert code == 0, out
    sandbox.assert_clean(ns)


def test_a_slow_container_does_not_hold_up_another(sandbox: Sandbox) -> None:
    d = sandbox.daemon()
    slow_ns, fast_ns = sandbox.netns(), sandbox.netns()
    sandbox.block()
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(
            d.cni,
            sandbox.env("ADD", "slow", slow_ns),
            json.dumps(sandbox.netconf(slow=True)).encode(),
        )
        sandbox.wait_for(lambda: len(sandbox.calls()) == 1)  # blocked in its second network
        fast = sandbox.shim("ADD", "fast", fast_ns)
        assert fast.returncode == 0, fast.stdout + fast.stderr
        assert not slow.done()
        sandbox.unblock()
        assert slow.result(timeout=30)[0] == 0
    conf = sandbox.netconf(slow=True)
    for cid, ns in (("slow", slow_ns), ("fast", fast_ns)):
        assert sandbox.shim("DEL", cid, ns, conf).returncode == 0
    sandbox.assert_clean(slow_ns, fast_ns)
