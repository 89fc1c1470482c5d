"""Generation of 00-multinet.conflist from the primary CNI config."""

from __future__ import annotations

import http.server
import json
import os
import signal
import socketserver
import threading
import time
from pathlib import Path
from typing import Any

from multinet.daemon import confgen, config
from multinet.daemon.metrics import DaemonMetrics
from tests.integration.daemon.sandbox import Sandbox
from tests.support.kubeapi import KubeAPIServer

FLANNEL = {
    "cniVersion": "0.3.1",
    "name": "cbr0",
    "plugins": [
        {"type": "flannel", "delegate": {"isDefaultGateway": True}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}


def _write(path: Path, conf: Any) -> None:
    path.write_text(json.dumps(conf) if not isinstance(conf, str) else conf)


def _conf(net_d: Path, **raw: Any) -> config.DaemonConfig:
    return config.load({"cniConfigDir": str(net_d), "daemonSocketPath": "/run/x.sock", **raw}, {})


def test_primary_is_the_first_usable_config_by_name(tmp_path: Path) -> None:
    _write(tmp_path / "00-multinet.conflist", {"name": "x", "plugins": [{"type": "multinet-shim"}]})
    _write(tmp_path / "01-multus.conf", {"name": "m", "type": "multus"})
    _write(tmp_path / "05-broken.conf", "{not json")
    _write(tmp_path / ".10-hidden.conflist", FLANNEL)
    _write(tmp_path / "10-notes.txt", FLANNEL)
    _write(tmp_path / "20-flannel.conflist", FLANNEL)
    _write(tmp_path / "30-other.conf", {"cniVersion": "1.0.0", "name": "o", "type": "bridge"})
    found = confgen.find_primary(str(tmp_path))
    assert found is not None and found[0] == str(tmp_path / "20-flannel.conflist")
    named = confgen.find_primary(str(tmp_path), "30-other.conf")
    assert named is not None and named[1]["name"] == "o"
    absolute = confgen.find_primary(str(tmp_path), str(tmp_path / "30-other.conf"))
    assert absolute == named
    assert confgen.find_primary(str(tmp_path), "missing.conf") is None
    assert confgen.find_primary(str(tmp_path / "nonexistent")) is None


def test_render_points_at_the_primary_with_the_daemon_keys(tmp_path: Path) -> None:
    conf = _conf(tmp_path, kubeconfig="/etc/k.conf", cniDir="/var/lib/x", metricsAddress=":9")
    out = confgen.render(conf, "/etc/cni/net.d/20-flannel.conflist", FLANNEL)
    assert out == {
        "cniVersion": "0.3.1",  # the primary's: the runtime calls us in that version
        "name": "multinet-cni-network",
        "plugins": [
            {
                "type": "multinet-shim",
                "daemonSocketPath": "/run/x.sock",
                "kubeconfig": "/etc/k.conf",
                "cniDir": "/var/lib/x",
                "clusterNetwork": "/etc/cni/net.d/20-flannel.conflist",
                "capabilities": {"portMappings": True},
            }
        ],
    }
    static = _conf(tmp_path, delegates=[FLANNEL], cniVersion="1.0.0", name="mine")
    out = confgen.render(static, "/p", FLANNEL)
    assert "clusterNetwork" not in out["plugins"][0]
    assert (out["cniVersion"], out["name"]) == ("1.0.0", "mine")


class Healthz:
    """Something answering GET /healthz on a unix socket, as a serving multinetd does."""

    def __init__(self, path: str) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200 if self.path == "/healthz" else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.server = Server(path, Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _writer(tmp_path: Path, **raw: Any) -> confgen.ConfigWriter:
    conf = _conf(tmp_path, daemonSocketPath=str(tmp_path / "d.sock"), **raw)
    return confgen.ConfigWriter(conf, DaemonMetrics())


def test_writer_writes_only_while_the_daemon_serves(tmp_path: Path) -> None:
    indicator = tmp_path / "ready"
    writer = _writer(tmp_path, readinessindicatorfile=str(indicator))
    assert not writer.sync() and "readiness indicator" in writer.problem
    indicator.touch()
    assert not writer.sync() and "primary network" in writer.problem
    primary = tmp_path / "20-flannel.conflist"
    _write(primary, FLANNEL)
    # The primary is there but nothing serves the socket: the runtime would call a shim
    # with no daemon behind it (multus-cni #1387).
    assert (
        not writer.sync() and writer.problem == f"waiting for multinetd to serve {tmp_path}/d.sock"
    )
    assert not os.path.exists(writer.path)
    healthz = Healthz(str(tmp_path / "d.sock"))
    try:
        assert writer.sync() and writer.current
    finally:
        healthz.close()
    assert json.loads(Path(writer.path).read_text())["plugins"][0]["clusterNetwork"] == str(primary)
    assert writer.sync()  # current: kept while the daemon does not answer (a restart)


def test_writer_writes_regenerates_withdraws_and_removes(tmp_path: Path) -> None:
    healthz = Healthz(str(tmp_path / "d.sock"))
    try:
        writer = _writer(tmp_path)
        primary = tmp_path / "20-flannel.conflist"
        _write(primary, FLANNEL)
        assert writer.sync() and writer.current
        written = json.loads(Path(writer.path).read_text())
        assert written["plugins"][0]["clusterNetwork"] == str(primary)
        assert oct(os.stat(writer.path).st_mode & 0o777) == "0o644"
        mtime = os.stat(writer.path).st_mtime_ns
        time.sleep(0.01)
        assert writer.sync()
        assert os.stat(writer.path).st_mtime_ns == mtime  # unchanged: not rewritten

        _write(primary, dict(FLANNEL, cniVersion="1.0.0"))
        assert writer.sync()
        assert json.loads(Path(writer.path).read_text())["cniVersion"] == "1.0.0"
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
        assert writer.metrics.config_restored.value("modified") == 0  # ours to change

        primary.unlink()  # withdrawn: never a config naming a cluster network not there
        for _ in range(confgen.WITHDRAW_POLLS - 1):  # ...once it stays gone
            assert not writer.sync() and os.path.exists(writer.path)
        assert not writer.sync() and not writer.current
        assert not os.path.exists(writer.path)
        _write(primary, FLANNEL)  # back: written again, and not taken for a removal
        assert writer.sync() and os.path.exists(writer.path)
        assert writer.metrics.config_restored.value("removed") == 0
        writer.remove()
        assert not os.path.exists(writer.path)
    finally:
        healthz.close()


def test_a_primary_being_written_keeps_the_config_and_a_gone_one_is_withdrawn_later(
    tmp_path: Path,
) -> None:
    """flannel's `cp -f` writes its config in place: a poll may read half of it. Only a
    primary absent WITHDRAW_POLLS polls in a row withdraws multinet's config."""
    healthz = Healthz(str(tmp_path / "d.sock"))
    try:
        writer = _writer(tmp_path)
        primary = tmp_path / "20-flannel.conflist"
        _write(primary, FLANNEL)
        assert writer.sync()
        written = Path(writer.path).read_bytes()
        primary.write_text(json.dumps(FLANNEL)[:20])  # half a file
        for _ in range(confgen.WITHDRAW_POLLS + 2):
            assert writer.sync() and writer.current
        assert Path(writer.path).read_bytes() == written
        primary.unlink()
        assert not writer.sync() and os.path.exists(writer.path)  # one poll: kept
        _write(primary, FLANNEL)  # the agent's remove-then-write: nothing was withdrawn
        assert writer.sync() and Path(writer.path).read_bytes() == written
    finally:
        healthz.close()


def test_a_running_daemon_writes_its_config_again_without_the_socket_probe(
    tmp_path: Path,
) -> None:
    """The gate is the first start's: a loaded daemon whose /healthz probe times out
    must not keep its config withdrawn once the primary is back."""
    healthz = Healthz(str(tmp_path / "d.sock"))
    writer = _writer(tmp_path)
    primary = tmp_path / "20-flannel.conflist"
    _write(primary, FLANNEL)
    try:
        assert writer.sync()
    finally:
        healthz.close()  # nothing answers on the socket from now on
    first = writer.current_since()
    assert first is not None
    primary.unlink()
    for _ in range(confgen.WITHDRAW_POLLS):
        writer.sync()
    assert not os.path.exists(writer.path) and writer.current_since() is None
    back = time.time()
    _write(primary, FLANNEL)
    assert writer.sync() and writer.current
    since = writer.current_since()  # the break seen: GC's clock starts again (daemon.gc)
    assert since is not None and since >= back > first
    writer.remove()  # shutdown: the gate is back
    assert not writer.sync() and "waiting for multinetd to serve" in writer.problem


class Recorded:
    """The node's Events, as CachedCluster would post them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, bool]] = []

    def emit_node_event(self, node: str, reason: str, message: str, warning: bool = False) -> None:
        self.events.append((node, reason, message, warning))


def test_a_config_renamed_or_rewritten_by_another_agent_is_put_back(tmp_path: Path) -> None:
    healthz = Healthz(str(tmp_path / "d.sock"))
    try:
        events = Recorded()
        conf = _conf(tmp_path, daemonSocketPath=str(tmp_path / "d.sock"), nodeName="node-1")
        writer = confgen.ConfigWriter(conf, DaemonMetrics(), events)
        _write(tmp_path / "05-cilium.conflist", FLANNEL)
        assert writer.sync()
        ours = Path(writer.path).read_bytes()

        # Cilium's exclusive mode (multus-cni #972).
        os.rename(writer.path, writer.path + ".cilium_bak")
        assert writer.sync() and Path(writer.path).read_bytes() == ours
        assert writer.metrics.config_restored.value("removed") == 1
        [(node, reason, message, warning)] = events.events
        assert (node, reason, warning) == ("node-1", "CNIConfigRestored", True)
        assert "renamed to 00-multinet.conflist.cilium_bak" in message

        Path(writer.path).write_text("{}")  # rewritten
        assert writer.sync() and Path(writer.path).read_bytes() == ours
        assert writer.metrics.config_restored.value("modified") == 1
        os.unlink(writer.path)  # removed, again within a minute: counted, no second Event
        assert writer.sync() and Path(writer.path).read_bytes() == ours
        assert writer.metrics.config_restored.value("removed") == 2
        assert len(events.events) == 1
        metrics = writer.metrics.render(True)
        assert 'multinet_cni_config_restored_total{change="removed"} 2' in metrics
    finally:
        healthz.close()


def test_daemon_is_ready_once_the_config_is_written(sandbox: Sandbox) -> None:
    d = sandbox.daemon(confPollInterval=0.1, cleanupConfigOnExit=True)
    status, body = d.get("/readyz")
    assert status == 503 and "primary network" in body["reasons"][0]
    assert "multinet_ready 0" in d.get("/metrics")[1]
    _write(sandbox.net_d / "10-bridge.conflist", {**FLANNEL, "cniVersion": "1.0.0"})
    sandbox.wait_for(lambda: d.get("/readyz")[0] == 200, timeout=10)
    generated = sandbox.net_d / confgen.OWN_NAME
    assert json.loads(generated.read_text())["plugins"][0]["daemonSocketPath"] == sandbox.socket
    assert d.stop(signal.SIGTERM) == 0
    assert not generated.exists()  # cleanupConfigOnExit


def test_config_is_kept_on_exit_by_default(sandbox: Sandbox) -> None:
    _write(sandbox.net_d / "10-bridge.conflist", FLANNEL)
    d = sandbox.daemon()
    sandbox.wait_for(lambda: d.get("/readyz") == (200, {"ready": True, "reasons": []}))
    assert d.stop(signal.SIGTERM) == 0
    assert (sandbox.net_d / confgen.OWN_NAME).exists()


def test_daemon_withdraws_and_restores_its_config(sandbox: Sandbox, kubeapi: KubeAPIServer) -> None:
    """The running daemon: the primary goes, the conflist is withdrawn (not ready); it
    comes back, the conflist is back. Then Cilium's exclusive mode renames it: put back,
    logged, counted, and an Event on the node."""
    primary = sandbox.net_d / "05-cilium.conflist"
    _write(primary, FLANNEL)
    kubeconfig = kubeapi.write_kubeconfig(str(sandbox.tmp / "kubeconfig"))
    d = sandbox.daemon(confPollInterval=0.1, kubeconfig=kubeconfig, nodeName="node-1")
    generated = sandbox.net_d / confgen.OWN_NAME
    sandbox.wait_for(generated.exists)
    ours = generated.read_bytes()

    primary.unlink()
    sandbox.wait_for(lambda: not generated.exists())
    status, body = d.get("/readyz")
    assert status == 503 and any("primary network" in r for r in body["reasons"])
    assert "withdrew" in d.log()
    _write(primary, FLANNEL)
    sandbox.wait_for(generated.exists)
    assert generated.read_bytes() == ours

    os.rename(generated, sandbox.net_d / (confgen.OWN_NAME + ".cilium_bak"))
    sandbox.wait_for(lambda: generated.exists() and "was renamed to" in d.log())
    assert generated.read_bytes() == ours
    metrics = d.get("/metrics")[1]
    assert 'multinet_cni_config_restored_total{change="removed"} 1' in metrics

    def node_events() -> list[dict[str, Any]]:
        return [e for e in kubeapi.events() if e["involvedObject"]["kind"] == "Node"]

    sandbox.wait_for(lambda: len(node_events()) == 1)
    [event] = node_events()
    assert event["involvedObject"]["name"] == "node-1"
    assert event["metadata"]["namespace"] == "default"
    assert (event["reason"], event["type"]) == ("CNIConfigRestored", "Warning")
    assert "renamed to 00-multinet.conflist.cilium_bak" in event["message"]
    assert d.stop(signal.SIGTERM) == 0
