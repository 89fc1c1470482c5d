"""Fixtures for the end-to-end matrix: a DHCP server, the DHCP client daemon, pod traffic.

``dhcp_lan`` -> DhcpLan
    A LAN with a DHCP server: a namespace ``mni-<token><n>`` holding Debian's dnsmasq
    (``--no-daemon``, ``--port=0``: no DNS, bound to its veth only, leases in a temp
    file, a 2 minute lease, option router = the server's address ``.1``), the veth's
    other end ``master`` in the host namespace (up, no address: the macvlan master), and
    the reference DHCP client daemon (``/usr/lib/cni/dhcp daemon -socketpath``) in the
    host namespace. ``ipam()`` is the dhcp IPAM object naming its socket; ``leases()``
    dnsmasq's lease file (MAC -> IP); ``kill_daemon()`` stops the client daemon,
    ``stop_server()``/``start_server()`` dnsmasq.
``echo`` -> Echo
    ``echo.check(server_ns, server_ip, client_ns)`` runs a TCP echo server inside one
    pod namespace and a client inside another (``ip netns exec``), and asserts the
    round trip; nothing leaves the test's namespaces.
``cni``: parametrized, ``thin`` (the multinet executable) and ``thick`` (the native shim
    forwarding to a multinetd of the test's own); ``cni.log()`` is the daemon's log.
``source``: the manifests source only (the matrix is about traffic, not the API).
``sriov``: tests/integration/plugins/sriov's (a fake NIC whose VFs are veths on a bridge,
    a fake kubelet), on this directory's ``k8s``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from multinet.cli import install
from tests.integration.conftest import (
    REFERENCE_PLUGINS,
    CniOutcome,
    CniRunner,
    Created,
    LeakChecker,
    State,
    multinet_executable,
)
from tests.integration.daemon.sandbox import DaemonProc
from tests.integration.networks.conftest import ManifestSource, Source, k8s  # noqa: F401
from tests.integration.plugins.sriov.conftest import sriov  # noqa: F401

if TYPE_CHECKING:
    from tests.integration.conftest import Confs

DHCP_PLUGIN = Path("/usr/lib/cni/dhcp")


OTHER_TESTS_LINK = re.compile(r"^mn[a-z]*[0-9a-f]{6}[0-9a-z]*$")


def _foreign(name: str, mine: set[str]) -> bool:
    """A host link another test run made meanwhile (this host runs several at once): a
    test-named link of another token, or a veth enslaved to a bridge that is not ours, or
    one already gone. Links of ours are still caught by the rest of the leak check (our
    bridges' ports, our namespaces' links, our token)."""
    if OTHER_TESTS_LINK.match(name):
        return True
    shown = subprocess.run(["ip", "-j", "link", "show", "dev", name], capture_output=True)
    if shown.returncode != 0:
        return True
    links = json.loads(shown.stdout or b"[]")
    return bool(links) and links[0].get("master") not in (None, *mine)


@pytest.fixture
def leaks(created: Created, state: State) -> LeakChecker:
    """The leak checker, blind to the host links other concurrent test runs make."""
    checker = LeakChecker(created, state)
    everything = checker.new_host_links

    def new_host_links() -> list[str]:
        mine = set(created.bridges)
        return [n for n in everything() if not _foreign(n, mine)]

    checker.new_host_links = new_host_links  # type: ignore[method-assign]
    return checker


class ThickRunner(CniRunner):
    """The runtime calling the native shim, which forwards to a real multinetd."""

    def __init__(self, shim_path: str, daemon: DaemonProc) -> None:
        super().__init__(shim_path, [REFERENCE_PLUGINS])
        self.daemon = daemon

    def __call__(self, command: str, conf: Any, **kw: Any) -> CniOutcome:
        if isinstance(conf, dict):
            conf = {**conf, "type": "multinet-shim", "daemonSocketPath": self.daemon.socket}
        return super().__call__(command, conf, **kw)

    def log(self) -> str:
        return self.daemon.log()

    def served(self) -> bool:
        """The daemon answered requests (the shim did not fall back to thin mode)."""
        return "multinet_requests_total{" in self.daemon.get("/metrics")[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`thin_only` tests run in thin mode alone: their thick variant is deselected (not
    skipped: CI counts a skip as missing setup)."""
    dropped = [
        item
        for item in items
        if item.get_closest_marker("thin_only") is not None
        and getattr(item, "callspec", None) is not None
        and item.callspec.params.get("cni") == "thick"  # type: ignore[attr-defined]
    ]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]


@pytest.fixture(params=["thin", "thick"])
def cni(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CniRunner]:
    """Each row in thin mode (the multinet executable) and in thick mode (the native
    shim and multinetd, tests/integration/daemon/sandbox.py's)."""
    if request.param == "thin":
        runner = CniRunner(multinet_executable(), [REFERENCE_PLUGINS])
        runner.log = lambda: ""  # type: ignore[attr-defined]
        yield runner
        return
    run = Path(tempfile.mkdtemp(prefix="mnd-", dir="/tmp"))
    host_bin = tmp_path / "opt-cni-bin"
    host_bin.mkdir()
    shim_path = install.install(str(host_bin), sys.executable)[install.SHIM]
    (tmp_path / "net.d").mkdir()
    config = {
        "daemonSocketPath": str(run / "s" / "multinet.sock"),
        "cniConfigDir": str(tmp_path / "net.d"),
        "generateConfig": False,
    }
    (tmp_path / "daemon.json").write_text(json.dumps(config))
    daemon = DaemonProc(tmp_path / "daemon.json", config["daemonSocketPath"], tmp_path / "d.log")
    thick = ThickRunner(shim_path, daemon)
    try:
        yield thick
        assert thick.served(), f"multinetd served nothing: {daemon.log()}"
    finally:
        daemon.stop()
        shutil.rmtree(run, ignore_errors=True)


@pytest.fixture
def source(state: State) -> Iterator[Source]:
    src = ManifestSource(state.root, state.cni_dir)
    try:
        yield src
    finally:
        src.close()


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def wait_for_socket(path: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(path)
                return
            except OSError:
                time.sleep(0.05)
    raise AssertionError(f"nothing listens on {path} after {timeout}s")


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class DhcpLan:
    def __init__(self, tmp: Path, ns: str, master: str, subnet: ipaddress.IPv4Network) -> None:
        self.tmp, self.ns, self.master, self.subnet = tmp, ns, master, subnet
        self.gateway = str(subnet.network_address + 1)
        self.socket = str(tmp / "dhcp.sock")
        self.lease_file = tmp / "dnsmasq.leases"
        self.server: subprocess.Popen[bytes] | None = None
        self.daemon: subprocess.Popen[bytes] | None = None

    def start_server(self) -> None:
        lo, hi = subnet_host(self.subnet, 50), subnet_host(self.subnet, 150)
        self.server = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.ns,
                "dnsmasq",
                "--no-daemon",
                "--port=0",
                "--conf-file=/dev/null",
                "--interface=srv",
                "--except-interface=lo",
                "--bind-interfaces",
                "--user=root",
                "--group=root",
                "--pid-file",
                f"--dhcp-range={lo},{hi},255.255.255.0,2m",
                f"--dhcp-leasefile={self.lease_file}",
                f"--dhcp-option=option:router,{self.gateway}",
                "--dhcp-authoritative",
                "--no-ping",  # no ICMP probe before an offer: seconds per ADD
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(self.tmp / "dnsmasq.log", "wb"),
        )

    def stop_server(self) -> None:
        """No DHCP server on the LAN any more (the client daemon stays up)."""
        _stop(self.server)
        self.server = None

    def start_daemon(self, *flags: str) -> None:
        """The client daemon on ``socket``, with the daemon's ``flags`` (``-timeout``...)."""
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        self.daemon = subprocess.Popen(
            [str(DHCP_PLUGIN), "daemon", "-socketpath", self.socket, *flags],
            stdout=subprocess.DEVNULL,
            stderr=open(self.tmp / "dhcp-daemon.log", "wb"),
        )
        wait_for_socket(self.socket)

    def kill_daemon(self) -> None:
        if self.daemon is not None:
            self.daemon.kill()
            self.daemon.wait()

    def keep(self) -> dict[str, set[str]]:
        """For ``leaks.assert_clean(keep_links=...)``: the server's own veth end."""
        return {f"/var/run/netns/{self.ns}": {"srv"}}

    def ipam(self) -> dict[str, Any]:
        return {"type": "dhcp", "daemonSocketPath": self.socket}

    def leases(self) -> dict[str, str]:
        """dnsmasq's leases: MAC -> IP."""
        return {mac: ip for _, mac, ip in self._lease_rows()}

    def _lease_rows(self) -> list[tuple[int, str, str]]:
        """(expiry, MAC, IP) of each line of dnsmasq's lease file."""
        if not self.lease_file.exists():
            return []
        rows = []
        for line in self.lease_file.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3:
                rows.append((int(parts[0]), parts[1].lower(), parts[2]))
        return rows

    def wait_forgotten(self, macs: set[str], timeout: float = 5) -> dict[str, str]:
        """dnsmasq's leases once none of `macs` has one (DEL's release is asynchronous on
        the server's side), or as they are after `timeout`."""
        deadline = time.monotonic() + timeout
        while macs & set(self.leases()) and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.leases()

    def expiries(self) -> dict[str, int]:
        """dnsmasq's leases: MAC -> expiry time (epoch seconds)."""
        return {mac: expiry for expiry, mac, _ in self._lease_rows()}

    def stop(self) -> None:
        _stop(self.daemon)
        _stop(self.server)


def subnet_host(subnet: ipaddress.IPv4Network, n: int) -> str:
    return str(subnet.network_address + n)


def veth_lan(
    netns_factory: Callable[[], str], bridge_factory: Callable[..., str]
) -> tuple[str, str]:
    """A veth whose host end (up, no address) is a macvlan master with carrier, its peer
    ``srv`` (up) in a namespace of its own; returns (that namespace's name, the master)."""
    ns = Path(netns_factory()).name
    master = bridge_factory(create=False)  # a name the teardown deletes: our veth's end
    _ip("link", "add", master, "type", "veth", "peer", "name", "srv", "netns", ns)
    _ip("link", "set", master, "up")
    _ip("-n", ns, "link", "set", "srv", "up")
    return ns, master


@pytest.fixture
def lan_master(
    netns_factory: Callable[[], str], bridge_factory: Callable[..., str]
) -> tuple[str, str]:
    """``veth_lan``: (the peer's netns path, the master)."""
    ns, master = veth_lan(netns_factory, bridge_factory)
    return f"/var/run/netns/{ns}", master


@pytest.fixture
def dhcp_lan(
    netns_factory: Callable[[], str],
    bridge_factory: Callable[..., str],
    confs: Confs,
) -> Iterator[DhcpLan]:
    if shutil.which("dnsmasq") is None or not DHCP_PLUGIN.is_file():
        pytest.skip("needs dnsmasq (apt-get install dnsmasq-base) and /usr/lib/cni/dhcp")
    ns, master = veth_lan(netns_factory, bridge_factory)
    tmp = Path(tempfile.mkdtemp(prefix="mni-dhcp-"))
    subnet = confs.subnet()
    lan = DhcpLan(tmp, ns, master, subnet)
    try:
        _ip("-n", ns, "addr", "add", f"{lan.gateway}/{subnet.prefixlen}", "dev", "srv")
        _ip("-n", ns, "link", "set", "srv", "up")
        lan.start_server()
        lan.start_daemon()
        yield lan
    finally:
        lan.stop()
        shutil.rmtree(tmp, ignore_errors=True)


ECHO_SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 7007)); s.listen(1); print("ready", flush=True)
s.settimeout(15); c, _ = s.accept(); c.sendall(b"echo:" + c.recv(100)); c.close()
"""
ECHO_CLIENT = """
import socket, sys
c = socket.create_connection((sys.argv[1], 7007), timeout=10)
c.sendall(sys.argv[2].encode()); print(c.recv(100).decode())
"""


class Echo:
    def check(self, server_ns: str, server_ip: str, client_ns: str) -> None:
        """A TCP round trip from client_ns to server_ip:7007 in server_ns."""
        srv = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                Path(server_ns).name,
                sys.executable,
                "-c",
                ECHO_SERVER,
                server_ip,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert srv.stdout is not None
            assert srv.stdout.readline().strip() == "ready", srv.stderr and srv.stderr.read()
            out = subprocess.run(
                [
                    "ip",
                    "netns",
                    "exec",
                    Path(client_ns).name,
                    sys.executable,
                    "-c",
                    ECHO_CLIENT,
                    server_ip,
                    "hello",
                ],
                capture_output=True,
                text=True,
                timeout=20,
            )
            assert out.stdout.strip() == "echo:hello", out.stderr
        finally:
            _stop(srv)  # type: ignore[arg-type]


@pytest.fixture
def echo() -> Echo:
    return Echo()
