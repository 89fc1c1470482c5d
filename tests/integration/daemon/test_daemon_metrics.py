"""Prometheus metrics: the text format, and the daemon's counters after real requests."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import pytest

from multinet.cni.exec import Invocation, invoke
from multinet.daemon.metrics import Counter, DaemonMetrics, Histogram
from tests.integration.daemon.sandbox import Sandbox


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_text_format() -> None:
    c = Counter("x_total", "Help.", ("a",))
    c.inc('q"uo\\te\n')
    c.inc('q"uo\\te\n', amount=2)
    assert c.render()[2] == 'x_total{a="q\\"uo\\\\te\\n"} 3'
    h = Histogram("d_seconds", "Help.", ("cmd",), buckets=(0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 7.0):
        h.observe(v, "ADD")
    assert h.render()[2:] == [
        'd_seconds_bucket{cmd="ADD",le="0.1"} 2',
        'd_seconds_bucket{cmd="ADD",le="1"} 3',
        'd_seconds_bucket{cmd="ADD",le="+Inf"} 4',
        'd_seconds_sum{cmd="ADD"} 7.65',
        'd_seconds_count{cmd="ADD"} 4',
    ]
    m = DaemonMetrics(lambda: {"network_attachment_definitions": 1000, "pods": 12})
    text = m.render(ready=True)
    assert 'multinet_cache_objects{kind="network_attachment_definitions"} 1000' in text
    assert "multinet_ready 1" in text


def test_delegate_observer_sees_each_plugin_run() -> None:
    m = DaemonMetrics()
    inv = Invocation("c1", "", "eth0", path=("/bin",), observer=m.observe_delegate)
    assert invoke("true", "DEL", {}, inv) is None
    assert m.delegate_latency.count("true", "DEL") == 1
    assert 'multinet_delegate_duration_seconds_count{plugin="true",command="DEL"} 1' in m.render(
        ready=False
    )


def test_daemon_counts_requests_by_command_and_result(sandbox: Sandbox) -> None:
    port = _free_port()
    d = sandbox.daemon(metricsAddress=f"127.0.0.1:{port}")
    ns = sandbox.netns()
    stdin = json.dumps(sandbox.netconf()).encode()
    assert d.cni(sandbox.env("ADD", "c1", ns), stdin)[0] == 0
    assert d.cni(sandbox.env("CHECK", "nope", ns), stdin)[0] == 1  # unknown container
    assert d.cni(sandbox.env("DEL", "c1", ns), stdin)[0] == 0

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    for line in (
        'multinet_requests_total{command="ADD",result="success"} 1',
        'multinet_requests_total{command="CHECK",result="error"} 1',
        'multinet_requests_total{command="DEL",result="success"} 1',
        'multinet_request_errors_total{command="CHECK",code="3"} 1',
        'multinet_request_duration_seconds_count{command="ADD"} 1',
        'multinet_cache_objects{kind="network_attachment_definitions"} 0',
        "multinet_inflight_requests 0",
    ):
        assert line in text, line
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
        assert json.load(r) == {"status": "ok"}
    # The CNI endpoint and the journal are not on the TCP port.
    for req in (
        urllib.request.Request(f"http://127.0.0.1:{port}/v1/cni", data=b"{}", method="POST"),
        urllib.request.Request(f"http://127.0.0.1:{port}/v1/attachments"),
    ):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == 404
