"""daemon.dhcpd: the DHCP client daemon supervised (a fake daemon: a Python listener)."""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from multinet.daemon import config as daemon_config
from multinet.daemon.dhcpd import DhcpSupervisor, find_binary
from multinet.daemon.lifecycle import Daemon
from multinet.daemon.metrics import DaemonMetrics

# Listens on the socket path it is given (argv: daemon -socketpath P), as the dhcp daemon.
FAKE = """#!{python}
import os, socket, sys, time
path = sys.argv[3]
s = socket.socket(socket.AF_UNIX); s.bind(path); s.listen(8)
open(path + ".pids", "a").write(f"{{os.getpid()}}\\n")
while True:
    c, _ = s.accept(); c.close()
"""


@pytest.fixture
def tmp() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="mnd-") as d:
        yield Path(d)


@pytest.fixture
def fake(tmp: Path) -> str:
    path = tmp / "dhcp"
    path.write_text(FAKE.format(python=sys.executable))
    path.chmod(0o755)
    return str(path)


def wait(cond: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def pids(sock: str) -> list[int]:
    p = Path(sock + ".pids")
    return [int(x) for x in p.read_text().split()] if p.exists() else []


def test_starts_restarts_with_backoff_and_stops(tmp: Path, fake: str) -> None:
    sock = str(tmp / "run" / "dhcp.sock")
    sup = DhcpSupervisor(fake, sock, backoff_initial=0.05)
    assert sup.reason() is not None and not sup.up()
    stopping = threading.Event()
    t = threading.Thread(target=sup.run, args=(stopping,), daemon=True)
    t.start()
    try:
        wait(sup.up)
        assert sup.reason() is None
        os.kill(pids(sock)[0], 9)
        wait(lambda: not sup.up())
        wait(lambda: sup.up() and len(pids(sock)) == 2)
        assert sup.restarts == 1
    finally:
        stopping.set()
        t.join(5)
        sup.stop()
    assert not sup.up() and not os.path.exists(sock)
    for pid in pids(sock):
        wait(lambda pid=pid: not Path(f"/proc/{pid}").exists() or _zombie(pid))


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def test_a_missing_binary_is_a_reason_and_is_retried(tmp: Path) -> None:
    sup = DhcpSupervisor(str(tmp / "nope"), str(tmp / "dhcp.sock"), backoff_initial=0.01)
    stopping = threading.Event()
    t = threading.Thread(target=sup.run, args=(stopping,), daemon=True)
    t.start()
    wait(lambda: sup.restarts >= 2)
    stopping.set()
    t.join(5)
    assert "cannot run" in (sup.reason() or "")


def test_find_binary_prefers_the_configured_then_the_first_found(tmp: Path, fake: str) -> None:
    assert find_binary("/x/dhcp", [str(tmp)]) == "/x/dhcp"
    assert find_binary("", ["/nonexistent", str(tmp)]) == fake


def test_config_keys_and_defaults() -> None:
    c = daemon_config.load({}, {})
    assert (c.dhcp_daemon, c.dhcp_socket_path) == (False, "/run/cni/dhcp.sock")
    c = daemon_config.load(
        {"dhcpDaemon": True, "dhcpDaemonSocketPath": "/s.sock", "binDir": "/b"}, {}
    )
    assert (c.dhcp_daemon, c.dhcp_socket_path) == (True, "/s.sock")
    assert c.dhcp_bin_dirs[0] == "/b"
    assert "dhcpDaemon" not in c.overrides


def test_metric_only_when_supervised() -> None:
    m = DaemonMetrics()
    assert "multinet_dhcp_daemon_up" not in m.render(True)
    m.dhcp_daemon_up = lambda: True
    assert "multinet_dhcp_daemon_up 1" in m.render(True)


def test_the_daemon_reports_it_in_readiness(tmp: Path) -> None:
    conf = daemon_config.load(
        {
            "dhcpDaemon": True,
            "dhcpDaemonSocketPath": str(tmp / "dhcp.sock"),
            "dhcpDaemonBinary": str(tmp / "nope"),
            "generateConfig": False,
            "cniDir": str(tmp / "cni"),
        },
        {},
    )
    d = Daemon(conf)
    ready, reasons = d.readiness()
    assert not ready and any("DHCP client daemon" in r for r in reasons)
    assert "multinet_dhcp_daemon_up 0" in d.metrics_text()
