"""Graceful shutdown and a rolling upgrade (issue 22, Multus's #1525): two multinetd
processes, the old and the new version, in turn on one socket path, under a stream of
ADDs and DELs through the native shim. On SIGTERM the old one reports not ready first
(its metrics port still answers: /readyz 503, /healthz 200), finishes the request in
flight, and every call meanwhile goes to the shim's in-process fallback; the new one
serves once it has started, its socket left alone by the old one's exit. Every ADD is
attached or refused with code 11, every DEL succeeds, nothing leaks."""

from __future__ import annotations

import json
import signal
import socket
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import pytest

from tests.integration.daemon.sandbox import Sandbox


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@dataclass
class Stream:
    """Pods created and deleted one after the other through the shim, by a few workers,
    until `stop`; every answer kept."""

    sandbox: Sandbox
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    served: int = 0  # ADDs and DELs the daemon answered
    fallbacks: int = 0  # those the shim ran in-process
    refused: list[str] = field(default_factory=list)  # code 11 messages
    failures: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)

    def done(self) -> int:
        with self.lock:
            return self.served + self.fallbacks

    def _call(self, command: str, cid: str, ns: str) -> tuple[int, str]:
        r = self.sandbox.shim(command, cid, ns)
        with self.lock:
            if "in-process" in r.stderr:
                self.fallbacks += 1
            else:
                self.served += 1
        return r.returncode, r.stdout

    def worker(self, name: str) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            cid, ns = f"{name}-{n}", self.sandbox.netns()
            with self.lock:
                self.namespaces.append(ns)
            code, out = self._call("ADD", cid, ns)
            if code == 0:
                if self.sandbox.links(ns) != ["eth0"]:
                    self.failures.append(f"ADD {cid} answered success without eth0")
            else:
                error = json.loads(out)
                if error.get("code") != 11:
                    self.failures.append(f"ADD {cid}: {out}")
                with self.lock:
                    self.refused.append(error.get("msg", ""))
            # The runtime DELs the sandbox either way.
            code, out = self._call("DEL", cid, ns)
            if code != 0:
                self.failures.append(f"DEL {cid}: {out}")

    def wait_for_more(self, count: int) -> None:
        target = self.done() + count
        self.sandbox.wait_for(lambda: self.done() >= target, timeout=90)


@pytest.mark.timeout(300)
def test_a_rolling_upgrade_under_a_stream_of_pods_loses_none(sandbox: Sandbox) -> None:
    port = free_port()
    old = sandbox.daemon(
        maxConcurrentRequests=2, metricsAddress=f"127.0.0.1:{port}", generateConfig=False
    )
    stream = Stream(sandbox)
    workers = [threading.Thread(target=stream.worker, args=(f"w{i}",)) for i in range(2)]
    for w in workers:
        w.start()
    try:
        stream.wait_for_more(6)
        assert stream.served > 0
        assert http_get(port, "/readyz")[0] == 200

        # An ADD in flight in the old daemon when its SIGTERM comes.
        held_ns = sandbox.netns()
        sandbox.block()
        reply: dict[str, tuple[int, str]] = {}
        slow = json.dumps(sandbox.netconf(slow=True)).encode()
        held = threading.Thread(
            target=lambda: reply.setdefault(
                "add", old.cni(sandbox.env("ADD", "held", held_ns), slow)
            )
        )
        held.start()
        sandbox.wait_for(lambda: any(c.startswith("ADD held") for c in sandbox.calls()))
        old.proc.send_signal(signal.SIGTERM)

        # Not ready first; the probes still answer while it drains.
        sandbox.wait_for(lambda: http_get(port, "/readyz")[0] == 503)
        body = http_get(port, "/readyz")[1]
        assert "shutting down" in json.loads(body)["reasons"]
        assert http_get(port, "/healthz")[0] == 200
        # No daemon on the socket: the stream goes on in the shim's fallback.
        sandbox.wait_for(lambda: not (sandbox.run / "s" / "multinet.sock").exists())
        fallbacks = stream.fallbacks
        stream.wait_for_more(4)
        assert stream.fallbacks >= fallbacks + 2
        assert old.proc.poll() is None, "the old daemon waits for its ADD in flight"

        # The new version starts while the old one still drains, and serves.
        new = sandbox.daemon(maxConcurrentRequests=3, generateConfig=False)
        served = stream.served
        stream.wait_for_more(6)
        assert stream.served > served

        sandbox.unblock()
        held.join(60)
        code, stdout = reply["add"]
        assert code == 0, stdout
        assert old.proc.wait(30) == 0
        assert json.loads(stdout)["ips"] and sandbox.links(held_ns) == ["eth0"]
        # The old one's exit left the new one's socket alone.
        assert new.get("/healthz")[0] == 200
        served = stream.served
        stream.wait_for_more(4)
        assert stream.served > served
    finally:
        stream.stop.set()
        sandbox.unblock()
        for w in workers:
            w.join(120)
    assert stream.failures == []
    assert all("multinetd" in msg for msg in stream.refused), stream.refused
    assert sandbox.shim("DEL", "held", held_ns, sandbox.netconf(slow=True)).returncode == 0
    assert new.stop() == 0
    sandbox.assert_clean(held_ns, *stream.namespaces)


def test_a_stopping_daemon_leaves_another_daemons_socket_alone(sandbox: Sandbox) -> None:
    old = sandbox.daemon()
    (sandbox.run / "s" / "multinet.sock").unlink()  # gone under it (a cleanup, an upgrade)
    new = sandbox.daemon()
    assert old.stop() == 0
    assert new.get("/healthz")[0] == 200
    ns = sandbox.netns()
    add = sandbox.shim("ADD", "c1", ns)
    assert (add.returncode, add.stderr) == (0, ""), add
    assert sandbox.shim("DEL", "c1", ns).returncode == 0
    sandbox.assert_clean(ns)
