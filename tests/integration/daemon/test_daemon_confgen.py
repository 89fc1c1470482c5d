"""Generation of 00-multinet.conflist from the primary CNI config."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from multinet.daemon import confgen, config
from tests.integration.daemon.sandbox import Sandbox

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


def test_writer_writes_regenerates_and_removes(tmp_path: Path) -> None:
    indicator = tmp_path / "ready"
    writer = confgen.ConfigWriter(_conf(tmp_path, readinessindicatorfile=str(indicator)))
    assert not writer.sync() and "readiness indicator" in writer.problem
    indicator.touch()
    assert not writer.sync() and "primary network" in writer.problem
    assert not os.path.exists(writer.path)

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

    primary.unlink()  # the file stays (DELs must keep reaching multinet); not ready
    assert not writer.sync() and not writer.current and os.path.exists(writer.path)
    writer.remove()
    assert not os.path.exists(writer.path)


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
    assert d.get("/readyz") == (200, {"ready": True, "reasons": []})
    assert d.stop(signal.SIGTERM) == 0
    assert (sandbox.net_d / confgen.OWN_NAME).exists()
