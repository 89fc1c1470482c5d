"""Bounded work against a real multinetd: ADDs beyond maxConcurrentRequests wait in their
lane; DEL and CHECK never wait behind them; a queued ADD past queueTimeout, or one more
than the queue holds, is answered code 11 having done nothing."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

import pytest

from bench.cgroup import MIB, MemoryCgroup
from multinet.shim import protocol
from tests.integration.daemon.sandbox import Sandbox

TIMEOUT = 6  # queueTimeout: room for the checks made while the ADDs wait


def metric(text: str, series: str) -> float:
    found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    assert found, f"{series} not in the metrics"
    return float(found.group(1))


@pytest.mark.timeout(120)
def test_dels_served_while_the_add_queue_is_full_and_queued_adds_refused(
    sandbox: Sandbox,
) -> None:
    d = sandbox.daemon(maxConcurrentRequests=2, maxQueuedRequests=2, queueTimeout=TIMEOUT)
    slow = sandbox.netconf(slow=True)
    stdin = json.dumps(slow).encode()
    done_ns, kept_ns = sandbox.netns(), sandbox.netns()
    for cid, ns in (("done", done_ns), ("kept", kept_ns)):
        assert sandbox.shim("ADD", cid, ns, slow).returncode == 0

    sandbox.block()
    running = {f"run{i}": sandbox.netns() for i in range(2)}
    queued = {f"wait{i}": sandbox.netns() for i in range(2)}
    with ThreadPoolExecutor(4) as pool:
        executing = [
            pool.submit(d.cni, sandbox.env("ADD", c, ns), stdin) for c, ns in running.items()
        ]
        sandbox.wait_for(lambda: len([c for c in sandbox.calls() if c.startswith("ADD run")]) == 2)
        # One waits through the native shim, one through the Python client.
        waiting: list[Future[tuple[int, str]]] = [
            pool.submit(d.cni, sandbox.env("ADD", "wait0", queued["wait0"]), stdin),
            pool.submit(_shim_answer, sandbox, "wait1", queued["wait1"], slow),
        ]
        queued_at = time.monotonic()
        sandbox.wait_for(lambda: 'multinet_queued_requests{lane="add"} 2' in d.get("/metrics")[1])

        # The queue is full: the next ADD is refused at once, through the native shim,
        # which passes the answer on (it does not fall back to running it in-process).
        extra_ns = sandbox.netns()
        started = time.monotonic()
        full = sandbox.shim("ADD", "extra", extra_ns, slow)
        assert time.monotonic() - started < 3
        assert full.returncode == 1 and "in-process" not in full.stderr, full.stderr
        error = json.loads(full.stdout)
        assert error["code"] == 11 and error["cniVersion"] == "1.0.0"
        assert "busy" in error["msg"] and "queue (2) is full" in error["msg"], error
        status, ready = d.get("/readyz")
        assert status == 503 and any(r.startswith("queue full") for r in ready["reasons"])

        # DEL and CHECK are served while four ADDs hold and fill the ADD lane.
        started = time.monotonic()
        check = sandbox.shim("CHECK", "kept", kept_ns, slow)
        assert check.returncode == 0, check.stdout + check.stderr
        delete = sandbox.shim("DEL", "done", done_ns, slow)
        assert delete.returncode == 0, delete.stdout + delete.stderr
        assert time.monotonic() - started < TIMEOUT / 2
        assert sandbox.links(done_ns) == []
        assert not any(f.done() for f in executing + waiting)

        # Past queueTimeout, the waiting ADDs are answered "try again later".
        answers = [f.result(timeout=TIMEOUT + 30) for f in waiting]
        assert time.monotonic() - queued_at >= TIMEOUT - 0.5
        for code, stdout in answers:
            refused = json.loads(stdout)
            assert code == 1 and refused["code"] == 11, stdout
            assert re.search(r"\(\d+ requests ahead, waited \d+\.\d s\)", refused["msg"]), refused
        assert not any(f.done() for f in executing)
        metrics = d.get("/metrics")[1]
        sandbox.unblock()
        assert [f.result(timeout=30)[0] for f in executing] == [0, 0]

    # Nothing of the refused ADDs was done: no delegate ran, no journal, no interface.
    for cid, ns in (*queued.items(), ("extra", extra_ns)):
        assert not any(f" {cid} " in call for call in sandbox.calls())
        assert not any(name.startswith(f"{cid}@") for name in sandbox.journals())
        assert sandbox.links(ns) == []
    assert metric(metrics, 'multinet_queue_refusals_total{lane="add",reason="full"}') == 1
    assert metric(metrics, 'multinet_queue_refusals_total{lane="add",reason="deadline"}') == 2
    assert metric(metrics, 'multinet_request_errors_total{command="ADD",code="11"}') == 3
    assert metric(metrics, 'multinet_executing_requests{lane="add"}') == 2
    assert metric(metrics, 'multinet_queued_requests{lane="add"}') == 0
    assert metric(metrics, 'multinet_queue_wait_seconds_count{lane="other"}') == 2
    assert metric(metrics, 'multinet_queue_wait_seconds_count{lane="add"}') == 4
    assert not any(r.startswith("queue full") for r in d.get("/readyz")[1]["reasons"])

    for cid, ns in (*running.items(), ("kept", kept_ns)):
        assert sandbox.shim("DEL", cid, ns, slow).returncode == 0
    sandbox.assert_clean(done_ns, kept_ns, *running.values(), *queued.values(), extra_ns)


def _shim_answer(sandbox: Sandbox, cid: str, ns: str, conf: dict[str, object]) -> tuple[int, str]:
    answer: subprocess.CompletedProcess[str] = sandbox.shim("ADD", cid, ns, conf)
    assert "in-process" not in answer.stderr, answer.stderr
    return answer.returncode, answer.stdout


def test_multus_connection_limit_bounds_the_requests(sandbox: Sandbox) -> None:
    d = sandbox.daemon(connectionLimit=1, maxQueuedRequests=0)
    ns = sandbox.netns()
    stdin = json.dumps(sandbox.netconf(slow=True)).encode()
    sandbox.block()
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(d.cni, sandbox.env("ADD", "first", ns), stdin)
        sandbox.wait_for(lambda: len(sandbox.calls()) == 1)
        code, stdout = d.cni(sandbox.env("ADD", "second", sandbox.netns()), stdin)
        assert code == 1 and json.loads(stdout)["code"] == 11
        sandbox.unblock()
        assert first.result(timeout=30)[0] == 0
    assert sandbox.shim("DEL", "first", ns, sandbox.netconf(slow=True)).returncode == 0
    sandbox.assert_clean(ns)


def test_shutdown_refuses_the_waiting_and_finishes_the_executing(sandbox: Sandbox) -> None:
    wait_ns = sandbox.netns()
    with one_executing(sandbox) as held:
        d = held.daemon
        waiting = held.pool.submit(d.cni, sandbox.env("ADD", "wait", wait_ns), held.stdin)
        _waiting_add(d, sandbox)
        d.proc.send_signal(signal.SIGTERM)
        code, stdout = waiting.result(timeout=10)
        assert code == 1 and json.loads(stdout)["code"] == 11
        assert "shutting down" in json.loads(stdout)["msg"]
        assert d.proc.poll() is None and not held.executing.done()  # still finishing "run"
        sandbox.unblock()
        assert held.executing.result(timeout=30)[0] == 0
    assert d.proc.wait(30) == 0
    assert sandbox.links(wait_ns) == [] and sandbox.links(held.run_ns) == ["eth0"]
    assert not any(name.startswith("wait@") for name in sandbox.journals())
    assert sandbox.shim("DEL", "run", held.run_ns, held.conf).returncode == 0  # in-process now
    sandbox.assert_clean(held.run_ns, wait_ns)


class OneExecuting(NamedTuple):
    """A daemon whose one ADD slot an ADD of container "run" holds (its delegate blocked
    until `sandbox.unblock()`), and that ADD's answer to come."""

    daemon: Any
    pool: ThreadPoolExecutor
    executing: Future[tuple[int, str]]
    run_ns: str
    conf: dict[str, object]
    stdin: bytes


@contextlib.contextmanager
def one_executing(sandbox: Sandbox) -> Iterator[OneExecuting]:
    d = sandbox.daemon(maxConcurrentRequests=1)
    run_ns = sandbox.netns()
    conf = sandbox.netconf(slow=True)
    stdin = json.dumps(conf).encode()
    sandbox.block()
    with ThreadPoolExecutor(2) as pool:
        executing = pool.submit(d.cni, sandbox.env("ADD", "run", run_ns), stdin)
        sandbox.wait_for(lambda: len(sandbox.calls()) == 1)
        yield OneExecuting(d, pool, executing, run_ns, conf, stdin)


def _waiting_add(d: Any, sandbox: Sandbox) -> None:
    sandbox.wait_for(lambda: 'multinet_queued_requests{lane="add"} 1' in d.get("/metrics")[1])


def test_a_queued_add_whose_del_came_meanwhile_is_not_run(sandbox: Sandbox) -> None:
    """The kubelet gave up on the ADD (its deadline) and tore the sandbox down: the ADD,
    let in after that DEL, would leave its interfaces behind. It is answered code 11."""
    late_ns = sandbox.netns()
    with one_executing(sandbox) as held:
        d = held.daemon
        late = held.pool.submit(d.cni, sandbox.env("ADD", "late", late_ns), held.stdin)
        _waiting_add(d, sandbox)
        assert d.cni(sandbox.env("DEL", "late", late_ns), held.stdin)[0] == 0  # not waiting
        sandbox.unblock()
        code, stdout = late.result(timeout=30)
        assert held.executing.result(timeout=30)[0] == 0
    refused = json.loads(stdout)
    assert code == 1 and refused["code"] == 11, stdout
    assert "was not started (its DEL came while it waited)" in refused["msg"], refused
    assert not any(" late " in call and call.startswith("ADD") for call in sandbox.calls())
    assert not any(name.startswith("late@") for name in sandbox.journals())
    assert sandbox.links(late_ns) == []
    metrics = d.get("/metrics")[1]
    assert metric(metrics, 'multinet_queue_refusals_total{lane="add",reason="withdrawn"}') == 1
    assert sandbox.shim("DEL", "run", held.run_ns, held.conf).returncode == 0
    sandbox.assert_clean(held.run_ns, late_ns)


def test_a_queued_add_whose_client_left_is_not_run(sandbox: Sandbox) -> None:
    """A shim killed while its ADD waited (the runtime's timeout): nobody reads the
    answer, so the slot goes to the next request instead of to work nobody wants."""
    gone_ns = sandbox.netns()
    with one_executing(sandbox) as held:
        d = held.daemon
        body = protocol.encode_request(sandbox.env("ADD", "gone", gone_ns), held.stdin)
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(d.socket)
            client.sendall(
                f"POST {protocol.CNI_ROUTE} HTTP/1.1\r\nHost: multinetd\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            _waiting_add(d, sandbox)
        sandbox.unblock()  # the client is gone: its ADD is let in, and withdrawn
        assert held.executing.result(timeout=30)[0] == 0
        sandbox.wait_for(
            lambda: (
                'multinet_queue_refusals_total{lane="add",reason="withdrawn"} 1'
                in d.get("/metrics")[1]
            )
        )
    assert not any(" gone " in call for call in sandbox.calls())
    assert not any(name.startswith("gone@") for name in sandbox.journals())
    assert sandbox.links(gone_ns) == []
    assert sandbox.shim("DEL", "run", held.run_ns, held.conf).returncode == 0
    sandbox.assert_clean(held.run_ns, gone_ns)


def test_shutdown_still_serves_a_waiting_del(sandbox: Sandbox) -> None:
    """At shutdown the waiting ADDs are refused, but a DEL that waits in its own lane is
    served as the executing requests finish: deletions are never turned away."""
    d = sandbox.daemon(maxConcurrentRequests=1, maxConcurrentOtherRequests=1)
    a_ns, b_ns = sandbox.netns(), sandbox.netns()
    conf = sandbox.netconf(slow=True)
    stdin = json.dumps(conf).encode()
    for cid, ns in (("a", a_ns), ("b", b_ns)):
        assert sandbox.shim("ADD", cid, ns, conf).returncode == 0
    sandbox.block("DEL")
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(d.cni, sandbox.env("DEL", "a", a_ns), stdin)
        sandbox.wait_for(lambda: any(c.startswith("DEL a") for c in sandbox.calls()))
        second = pool.submit(d.cni, sandbox.env("DEL", "b", b_ns), stdin)
        sandbox.wait_for(lambda: 'multinet_queued_requests{lane="other"} 1' in d.get("/metrics")[1])
        d.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert not second.done()
        sandbox.unblock()
        assert first.result(timeout=30)[0] == 0
        assert second.result(timeout=30)[0] == 0
    assert d.proc.wait(30) == 0
    sandbox.assert_clean(a_ns, b_ns)


def test_the_other_lane_is_wider_than_the_add_lane(sandbox: Sandbox) -> None:
    """Two DELs execute at once beside an ADD lane of one: deletions, latency-bound and
    freeing memory, have a limit of their own (default 4 x maxConcurrentRequests)."""
    d = sandbox.daemon(maxConcurrentRequests=1)
    a_ns, b_ns = sandbox.netns(), sandbox.netns()
    conf = sandbox.netconf(slow=True)
    stdin = json.dumps(conf).encode()
    for cid, ns in (("a", a_ns), ("b", b_ns)):
        assert sandbox.shim("ADD", cid, ns, conf).returncode == 0
    sandbox.block("DEL")
    with ThreadPoolExecutor(2) as pool:
        dels = [
            pool.submit(d.cni, sandbox.env("DEL", c, ns), stdin)
            for c, ns in (("a", a_ns), ("b", b_ns))
        ]
        sandbox.wait_for(lambda: len([c for c in sandbox.calls() if c.startswith("DEL")]) == 2)
        metrics = d.get("/metrics")[1]
        assert metric(metrics, 'multinet_executing_requests{lane="other"}') == 2
        sandbox.unblock()
        assert [f.result(timeout=30)[0] for f in dels] == [0, 0]
    sandbox.assert_clean(a_ns, b_ns)


def test_a_request_waits_for_memory_with_a_slot_free(sandbox: Sandbox) -> None:
    """memoryBudget below what the daemon's cgroup (read from /proc/self/cgroup) already
    uses: no headroom, so each lane runs one request at a time whatever its limit; the
    second ADD waits for memory, a DEL is still served, and the metrics say so."""
    d = sandbox.daemon(maxConcurrentRequests=2, memoryBudget=1, queueTimeout=TIMEOUT)
    conf = sandbox.netconf(slow=True)
    stdin = json.dumps(conf).encode()
    kept_ns, first_ns, second_ns = sandbox.netns(), sandbox.netns(), sandbox.netns()
    assert sandbox.shim("ADD", "kept", kept_ns, conf).returncode == 0
    sandbox.block()
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(d.cni, sandbox.env("ADD", "first", first_ns), stdin)
        sandbox.wait_for(lambda: any(c.startswith("ADD first") for c in sandbox.calls()))
        second = pool.submit(d.cni, sandbox.env("ADD", "second", second_ns), stdin)
        sandbox.wait_for(lambda: 'multinet_queued_requests{lane="add"} 1' in d.get("/metrics")[1])
        metrics = d.get("/metrics")[1]
        assert metric(metrics, 'multinet_executing_requests{lane="add"}') == 1  # of 2
        assert metric(metrics, 'multinet_memory_deferred_requests_total{lane="add"}') == 1
        assert metric(metrics, "multinet_memory_limit_bytes") == 2**20
        assert metric(metrics, "multinet_memory_headroom_bytes") < 0
        assert metric(metrics, "multinet_memory_request_cost_bytes") == 2.5 * 2**20
        assert sandbox.shim("DEL", "kept", kept_ns, conf).returncode == 0  # its lane's first
        assert not second.done()
        sandbox.unblock()
        assert first.result(timeout=30)[0] == 0
        assert second.result(timeout=30)[0] == 0  # started when the first ended
    assert not any("second" in call for call in sandbox.calls()[:2])
    for cid, ns in (("first", first_ns), ("second", second_ns)):
        assert sandbox.shim("DEL", cid, ns, conf).returncode == 0
    sandbox.assert_clean(kept_ns, first_ns, second_ns)


def test_the_budget_is_the_limit_of_the_daemons_own_cgroup(sandbox: Sandbox) -> None:
    """multinetd started inside a memory cgroup of its own (v1 or v2, as a container is)
    finds it from /proc/self/cgroup and keeps its requests under its limit; with
    memoryBudget 0 it does not."""
    cgroup = MemoryCgroup(256 * MIB, prefix="mnd-queue")
    try:
        d = sandbox.daemon(tuple(cgroup.wrapper()))
        metrics = d.get("/metrics")[1]
        assert metric(metrics, "multinet_memory_limit_bytes") == 256 * MIB
        working_set = metric(metrics, "multinet_memory_working_set_bytes")
        assert 0 < working_set <= cgroup.usage() + 4 * MIB  # the daemon's, not the host's
        assert metric(metrics, "multinet_memory_headroom_bytes") == 256 * MIB - working_set
        assert "memory_budget_mib=256" in d.log()
        d.stop()
        d = sandbox.daemon(tuple(cgroup.wrapper()), memoryBudget=0)
        assert "multinet_memory_" not in d.get("/metrics")[1]
        assert "memory_budget_mib=off" in d.log()
        d.stop()
    finally:
        cgroup.remove()
