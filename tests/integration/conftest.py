"""Fixtures for integration tests: the real ``multinet`` executable, real network
namespaces, Debian's reference plugins (/usr/lib/cni) and the real kernel.

Every test here is skipped, with the reason, when not run as root or when the
reference plugins are missing. Everything a test creates carries its unique
``token`` (6 hex digits) in its name and is removed afterwards; nothing else on
the host is touched. The host's ``net.ipv4.ip_forward`` is restored after the
session (tests must still never use ``isGateway: true``).

Fixtures (per test unless marked session):

``token`` -> str
    Six random hex digits naming everything this test creates.
``created`` -> Created
    What the factories below made (netns names, bridge names); the leak checker
    reads it.
``netns_factory`` -> Callable[[], str]
    Makes a fresh namespace ``mni-<token><n>`` and returns its path
    ``/var/run/netns/mni-<token><n>``; all are deleted afterwards, with whatever
    is left in them. ``delete_netns(path)`` removes one early (idempotent).
``netns`` -> str
    One such namespace path.
``bridge_factory`` -> Callable[..., str]
    ``bridge_factory(create=True)`` returns a free name ``mnb<token><n>``; with
    ``create=True`` the bridge is created up, with a fixed MAC and no address
    (a bridge otherwise takes the lowest MAC of its ports, so a later ADD would
    change it and the bridge plugin's CHECK fails earlier containers with "Mac
    doesn't match"). The link is deleted afterwards if it exists.
``bridge_name`` -> str
    A free bridge name, not created (the bridge plugin creates it).
``bridge`` -> str
    A bridge created up front (see above).
``state`` -> State
    Fresh directories, removed afterwards: ``cni_dir`` (multinet's ``cniDir``;
    journals in ``journal_dir``), ``ipam_dir`` (host-local ``dataDir``),
    ``tuning_dir`` (tuning's ``dataDir``), ``bin_dir`` (multinet's ``binDir``:
    searched before CNI_PATH=/usr/lib/cni, so a script written there with
    ``state.script(name, body)`` shadows or adds a plugin).
``confs`` -> Confs
    Config builders bound to ``state``: ``subnet()`` (an unused random
    10.x.y.0/24 for this test), ``bridge_net(name, bridge, subnet, *, version,
    plugins=(), routes=None)`` (bridge + host-local conflist, gateway .1, a
    default route via .1, optional extra chained plugins),
    ``macvlan_net(name, master, address, gateway, *, version, routes=())``
    (macvlan + static), ``tuning(mac=None, sysctl=None)`` (a tuning plugin for
    a chain) and ``multinet(delegates, *, version, **keys)`` (multinet's own
    netconf with ``cniDir``/``binDir`` from ``state``). Routes always get a
    gateway: Debian's bridge/macvlan CHECK fails on a route without one.
``cni`` -> CniRunner
    ``cni(command, conf, *, netns="", container_id="", ifname="eth0", args="",
    extra_env=None, stdin=None, timeout=60) -> CniOutcome(rc, out, err)`` runs
    the real ``multinet`` executable with CNI_PATH=/usr/lib/cni and a clean
    environment (no inherited ``CNI_*``). ``conf`` is JSON-encoded to stdin
    unless raw ``stdin`` bytes are given; ``extra_env`` values of ``None`` unset
    a variable. ``out`` is stdout parsed as JSON (None when empty); a stdout
    that is not JSON, or a Python traceback on stdout or stderr, fails the test.
``net`` -> NetInfo
    Reads a namespace with iproute2: ``links(ns)`` (name -> ``ip -j link``
    entry, ``lo`` excluded), ``addresses(ns, family="inet")`` (name -> CIDRs,
    link-local excluded), ``routes(ns)`` (``ip -j route`` entries),
    ``mac(ns, ifname)``, ``kind(ns, ifname)`` (veth, macvlan...),
    ``sysctl(ns, key)``. ``ns`` is a netns path. Changes by hand:
    ``ip(ns, *args)`` runs ``ip -n NS ...``; ``delete_netns(ns)`` deletes a
    namespace early (idempotent).
``leaks`` -> LeakChecker
    ``leaks.assert_clean(keep_links=None)`` asserts that this test left nothing behind: the
    namespaces it made (those still present) hold only ``lo``; its bridges have
    no ports; no host link other than its bridges carries its token;
    host-local holds no allocation (only ``last_reserved_ip.*`` and ``lock``);
    tuning holds no backup; the journal directory is empty. The pieces are
    there for partial checks: ``allocations()`` (network -> allocated IPs),
    ``journal_files()``, ``bridge_ports(bridge)``, ``pod_links(ns)`` (names
    but ``lo``), ``host_link_exists(name)``, ``tuning_backups()``.
``sandbox`` -> Sandbox (tests/integration/daemon/sandbox.py)
    Thick mode's world for one test: a real multinetd in a subprocess, the shim, its
    own directories (``run``: the socket's, a ``/tmp/mnd-*`` path since unix socket
    paths are limited to 108 bytes; ``state``: multinet's cniDir; ``ipam``:
    host-local's dataDir; ``bin``: binDir holding the test plugin ``mndtest``;
    ``net_d``: a CNI config dir), a bridge created up front with a fixed MAC
    (``bridge``, ``mndb<hex>``) and a random /24 (``subnet``); namespaces are
    ``mnd-<hex>``. ``netconf(slow=False)``: the shim netconf (static delegates: the
    cluster network bridge + host-local, and with ``slow`` a second network of type
    ``mndtest``). ``netns()``: a fresh namespace path. ``daemon(**keys)``: start
    multinetd with a config of ``keys`` (socket in ``run``); stopped after the test.
    ``shim(command, cid, netns, ...)``: run the shim as the runtime would.
    ``block("ADD"|"DEL")``/``unblock()``: make ``mndtest`` wait; ``calls()``: the
    lines ``mndtest`` logged (``COMMAND CONTAINERID IFNAME args=.. var=..``). Leak
    checks: ``allocations()``, ``journals()``, ``bridge_ports()``, ``links(netns)``,
    ``assert_clean(*netns)``. Used by tests/integration/daemon and the matrix's
    thick-mode tests.

Example::

    def test_x(cni, confs, netns, bridge, leaks):
        conf = confs.multinet([confs.bridge_net("cluster", bridge, confs.subnet())])
        rc, out, err = cni("ADD", conf, netns=netns, container_id="c1")
        assert rc == 0, out
        ...
        assert cni("DEL", conf, netns=netns, container_id="c1").rc == 0
        leaks.assert_clean()
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.integration.daemon.sandbox import Sandbox, require_root
from tests.support.kubeapi import KubeAPIServer
from tests.support.scripts import installed

REFERENCE_PLUGINS = Path("/usr/lib/cni")
NETNS_DIR = Path("/var/run/netns")
TRACEBACK = "Traceback (most recent call last)"


# -- requirements -------------------------------------------------------------


def missing_requirement() -> str | None:
    if os.geteuid() != 0:
        return "needs root: creates network namespaces, bridges and veths"
    if not (REFERENCE_PLUGINS / "bridge").is_file():
        return (
            f"reference CNI plugins not found in {REFERENCE_PLUGINS} "
            "(apt-get install containernetworking-plugins)"
        )
    if shutil.which("ip") is None:
        return "needs the ip command (apt-get install iproute2)"
    return None


@pytest.fixture(autouse=True)
def _requirements() -> None:
    reason = missing_requirement()
    if reason:
        pytest.skip(reason)


@pytest.fixture(autouse=True, scope="session")
def _preserve_ip_forward() -> Iterator[None]:
    path = Path("/proc/sys/net/ipv4/ip_forward")
    try:
        before = path.read_text()
    except OSError:
        yield
        return
    yield
    if os.geteuid() == 0 and path.read_text() != before:
        path.write_text(before)


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=check)


def _link_exists(name: str) -> bool:
    return _run("ip", "link", "show", "dev", name, check=False).returncode == 0


# -- names and namespaces -----------------------------------------------------


@dataclass
class Created:
    """What one test's factories made; the leak checker and the teardowns read it."""

    token: str
    netns: list[str] = field(default_factory=list)  # names under /var/run/netns
    bridges: list[str] = field(default_factory=list)


@pytest.fixture
def token() -> str:
    return secrets.token_hex(3)


@pytest.fixture
def created(token: str) -> Created:
    return Created(token)


def ns_name(path: str) -> str:
    """The iproute2 name of a namespace path under /var/run/netns."""
    p = Path(path)
    assert p.parent == NETNS_DIR, f"{path} is not under {NETNS_DIR}"
    return p.name


def delete_netns(path: str) -> None:
    """Delete a namespace made by ``netns_factory`` now (no-op when already gone)."""
    name = ns_name(path)
    if (NETNS_DIR / name).exists():
        _run("ip", "netns", "del", name)


@pytest.fixture
def netns_factory(created: Created) -> Iterator[Callable[[], str]]:
    def make() -> str:
        name = f"mni-{created.token}{len(created.netns)}"
        _run("ip", "netns", "add", name)
        created.netns.append(name)
        _run("ip", "-n", name, "link", "set", "lo", "up")
        return str(NETNS_DIR / name)

    try:
        yield make
    finally:
        for name in created.netns:
            if (NETNS_DIR / name).exists():
                _run("ip", "netns", "del", name, check=False)


@pytest.fixture
def netns(netns_factory: Callable[[], str]) -> str:
    return netns_factory()


@pytest.fixture
def bridge_factory(created: Created) -> Iterator[Callable[..., str]]:
    def make(create: bool = True) -> str:
        name = f"mnb{created.token}{len(created.bridges)}"
        assert not _link_exists(name), f"{name} exists already"
        created.bridges.append(name)
        if create:
            mac = "02:6d:6e:" + ":".join(secrets.token_hex(3)[i : i + 2] for i in (0, 2, 4))
            _run("ip", "link", "add", "name", name, "address", mac, "type", "bridge")
            _run("ip", "link", "set", name, "up")
        return name

    try:
        yield make
    finally:
        # Each name was free before the test: whatever holds it now is ours.
        for name in created.bridges:
            if _link_exists(name):
                _run("ip", "link", "del", "dev", name, check=False)


@pytest.fixture
def bridge_name(bridge_factory: Callable[..., str]) -> str:
    return bridge_factory(create=False)


@pytest.fixture
def bridge(bridge_factory: Callable[..., str]) -> str:
    return bridge_factory(create=True)


# -- state directories and configs ---------------------------------------------


@dataclass(frozen=True)
class State:
    root: Path
    cni_dir: Path
    ipam_dir: Path
    tuning_dir: Path
    bin_dir: Path

    @property
    def journal_dir(self) -> Path:
        return self.cni_dir / "journal"

    def script(self, name: str, body: str) -> Path:
        """An executable ``/bin/sh`` plugin ``name`` in ``bin_dir``."""
        path = self.bin_dir / name
        path.write_text("#!/bin/sh\n" + body.strip() + "\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return path


@pytest.fixture
def state() -> Iterator[State]:
    root = Path(tempfile.mkdtemp(prefix="mni-state-"))
    dirs = {n: root / n for n in ("cni", "ipam", "tuning", "bin")}
    for d in dirs.values():
        d.mkdir()
    try:
        yield State(root, dirs["cni"], dirs["ipam"], dirs["tuning"], dirs["bin"])
    finally:
        shutil.rmtree(root, ignore_errors=True)


class Confs:
    """Network configuration builders bound to one test's ``State``."""

    def __init__(self, state: State) -> None:
        self.state = state
        self._subnets: set[ipaddress.IPv4Network] = set()

    def subnet(self, prefix: int = 24) -> ipaddress.IPv4Network:
        """A random 10.x.y.0/prefix not yet used by this test.

        Safe on the host: test bridges carry no address, so these subnets never
        reach the host's routing table.
        """
        while True:
            net = ipaddress.IPv4Network(
                f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.0/{prefix}"
            )
            if not any(net.overlaps(s) for s in self._subnets):
                self._subnets.add(net)
                return net

    def bridge_net(
        self,
        name: str,
        bridge: str,
        subnet: ipaddress.IPv4Network,
        *,
        version: str = "1.0.0",
        plugins: Sequence[Mapping[str, Any]] = (),
        routes: Sequence[Mapping[str, str]] | None = None,
    ) -> dict[str, Any]:
        gw = str(subnet.network_address + 1)
        if routes is None:
            routes = [{"dst": "0.0.0.0/0", "gw": gw}]
        return {
            "cniVersion": version,
            "name": name,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": bridge,
                    "ipam": {
                        "type": "host-local",
                        "dataDir": str(self.state.ipam_dir),
                        "ranges": [[{"subnet": str(subnet), "gateway": gw}]],
                        "routes": [dict(r) for r in routes],
                    },
                },
                *(dict(p) for p in plugins),
            ],
        }

    def macvlan_net(
        self,
        name: str,
        master: str,
        address: str,
        gateway: str,
        *,
        version: str = "1.0.0",
        routes: Sequence[Mapping[str, str]] = (),
    ) -> dict[str, Any]:
        return {
            "cniVersion": version,
            "name": name,
            "type": "macvlan",
            "master": master,
            "mode": "bridge",
            "ipam": {
                "type": "static",
                "addresses": [{"address": address, "gateway": gateway}],
                "routes": [dict(r) for r in routes],
            },
        }

    def tuning(
        self, mac: str | None = None, sysctl: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        plugin: dict[str, Any] = {"type": "tuning", "dataDir": str(self.state.tuning_dir)}
        if mac is not None:
            plugin["mac"] = mac
        if sysctl is not None:
            plugin["sysctl"] = dict(sysctl)
        return plugin

    def multinet(
        self, delegates: Sequence[Mapping[str, Any]], *, version: str = "1.0.0", **keys: Any
    ) -> dict[str, Any]:
        return {
            "cniVersion": version,
            "name": "multinet-test",
            "type": "multinet",
            "cniDir": str(self.state.cni_dir),
            "binDir": str(self.state.bin_dir),
            "delegates": [dict(d) for d in delegates],
            **keys,
        }


@pytest.fixture
def confs(state: State) -> Confs:
    return Confs(state)


# -- running multinet ------------------------------------------------------------


class CniOutcome(NamedTuple):
    rc: int
    out: Any  # stdout parsed as JSON, None when empty
    err: str


def multinet_executable() -> str:
    found = installed("multinet")  # not a pyenv shim: `kill $PPID` must hit multinet itself
    if found is None:
        pytest.skip("the multinet console script is not installed (pip install -e .)")
    return found


class CniRunner:
    def __init__(self, executable: str, cni_path: Sequence[Path]) -> None:
        self.executable = executable
        self.cni_path = ":".join(str(p) for p in cni_path)

    def __call__(
        self,
        command: str,
        conf: Any,
        *,
        netns: str = "",
        container_id: str = "",
        ifname: str = "eth0",
        args: str = "",
        extra_env: Mapping[str, str | None] | None = None,
        stdin: bytes | None = None,
        timeout: float = 60,
    ) -> CniOutcome:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
        env.update(
            CNI_COMMAND=command,
            CNI_CONTAINERID=container_id,
            CNI_NETNS=netns,
            CNI_IFNAME=ifname,
            CNI_ARGS=args,
            CNI_PATH=self.cni_path,
        )
        for key, value in (extra_env or {}).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        data = stdin if stdin is not None else json.dumps(conf).encode()
        proc = subprocess.run(
            [self.executable],
            input=data,
            capture_output=True,
            env=env,
            timeout=timeout,
            check=False,
        )
        text = proc.stdout.decode(errors="replace")
        err = proc.stderr.decode(errors="replace")
        assert TRACEBACK not in text and TRACEBACK not in err, (
            f"multinet {command} printed a traceback:\n{text}\n{err}"
        )
        try:
            out = json.loads(text) if text.strip() else None
        except ValueError:
            pytest.fail(f"multinet {command} printed non-JSON on stdout: {text!r}")
        return CniOutcome(proc.returncode, out, err)


@pytest.fixture
def cni() -> CniRunner:
    return CniRunner(multinet_executable(), [REFERENCE_PLUGINS])


# -- reading namespaces ----------------------------------------------------------


def ip_json(netns: str, *args: str) -> Any:
    proc = _run("ip", "-n", ns_name(netns), "-j", *args)
    return json.loads(proc.stdout or "[]")


class NetInfo:
    """What iproute2 sees in a namespace (``ns`` is a path under /var/run/netns), plus
    the two changes tests make by hand: ``ip(ns, *args)`` and ``delete_netns(ns)``."""

    delete_netns = staticmethod(delete_netns)

    @staticmethod
    def ip(ns: str, *args: str) -> None:
        _run("ip", "-n", ns_name(ns), *args)

    @staticmethod
    def links(ns: str) -> dict[str, dict[str, Any]]:
        return {link["ifname"]: link for link in ip_json(ns, "link") if link["ifname"] != "lo"}

    @staticmethod
    def addresses(ns: str, family: str = "inet") -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for link in ip_json(ns, "addr"):
            cidrs = [
                f"{a['local']}/{a['prefixlen']}"
                for a in link.get("addr_info", [])
                if a.get("family") == family and a.get("scope") != "link"
            ]
            if link["ifname"] != "lo":
                out[link["ifname"]] = cidrs
        return out

    @staticmethod
    def routes(ns: str) -> list[dict[str, Any]]:
        routes: list[dict[str, Any]] = ip_json(ns, "route")
        return routes

    @staticmethod
    def mac(ns: str, ifname: str) -> str:
        return str(NetInfo.links(ns)[ifname]["address"])

    @staticmethod
    def kind(ns: str, ifname: str) -> str:
        """The link's kind (veth, macvlan, bridge...), "" for a plain device."""
        (link,) = ip_json(ns, "-d", "link", "show", "dev", ifname)
        return str(link.get("linkinfo", {}).get("info_kind", ""))

    @staticmethod
    def sysctl(ns: str, key: str) -> str:
        path = "/proc/sys/" + key.replace(".", "/")
        return _run("ip", "netns", "exec", ns_name(ns), "cat", path).stdout.strip()


@pytest.fixture
def net() -> NetInfo:
    return NetInfo()


# -- leak checks --------------------------------------------------------------------

HOST_LOCAL_BOOKKEEPING = ("last_reserved_ip.", "lock")


def host_links() -> set[str]:
    return {str(link["ifname"]) for link in json.loads(_run("ip", "-j", "link").stdout or "[]")}


# Links the kernel makes by itself when a plugin loads a module (bandwidth: ifb).
KERNEL_LINKS = frozenset({"ifb0", "ifb1"})


class LeakChecker:
    def __init__(self, created: Created, state: State) -> None:
        self.created = created
        self.state = state
        # The host's links before the test: a plugin pointed at the host by mistake
        # (the bridge plugin's default cni0, say) shows as a new one.
        self.host_before = host_links()

    def new_host_links(self) -> list[str]:
        """Links that appeared on the host and are no test's: every test names its links
        `mn*` and the bridge plugin's host ends are `veth*` (other test runs on the
        machine make those too); anything else, like the bridge plugin's default `cni0`,
        is a plugin that was pointed at the host."""
        return sorted(
            n
            for n in host_links() - self.host_before - KERNEL_LINKS
            if not n.startswith(("mn", "veth"))
        )

    @staticmethod
    def host_link_exists(name: str) -> bool:
        return _link_exists(name)

    def pod_links(self, ns: str) -> set[str]:
        return set(NetInfo.links(ns))

    def bridge_ports(self, bridge: str) -> list[str]:
        if not _link_exists(bridge):
            return []
        links = json.loads(_run("ip", "-j", "link", "show", "master", bridge).stdout or "[]")
        return [str(link["ifname"]) for link in links]

    def host_links_with_token(self) -> list[str]:
        links = json.loads(_run("ip", "-j", "link", "show").stdout or "[]")
        return [
            str(link["ifname"])
            for link in links
            if self.created.token in link["ifname"] and link["ifname"] not in self.created.bridges
        ]

    def allocations(self) -> dict[str, list[str]]:
        """host-local network name -> allocated addresses (files other than bookkeeping).

        The network is the directory holding the files, relative to the IPAM root (a
        `dataDir` below it gives a deeper one)."""
        out: dict[str, list[str]] = {}
        for f in sorted(p for p in self.state.ipam_dir.rglob("*") if p.is_file()):
            if f.name.startswith(HOST_LOCAL_BOOKKEEPING[0]) or f.name == HOST_LOCAL_BOOKKEEPING[1]:
                continue
            out.setdefault(str(f.parent.relative_to(self.state.ipam_dir)), []).append(f.name)
        return out

    def journal_files(self) -> list[str]:
        d = self.state.journal_dir
        return sorted(f.name for f in d.iterdir()) if d.exists() else []

    def tuning_backups(self) -> list[str]:
        return sorted(f.name for f in self.state.tuning_dir.iterdir())

    def assert_clean(self, *, keep_links: Mapping[str, set[str]] | None = None) -> None:
        """Nothing this test created is left; ``keep_links`` maps a netns path to
        interfaces the test itself put there."""
        keep = keep_links or {}
        for name in self.created.netns:
            path = str(NETNS_DIR / name)
            if (NETNS_DIR / name).exists():
                assert self.pod_links(path) == keep.get(path, set()), f"links left in {name}"
        for bridge in self.created.bridges:
            assert self.bridge_ports(bridge) == [], f"ports left on bridge {bridge}"
        assert self.host_links_with_token() == [], "host links left"
        assert self.new_host_links() == [], "links created on the host"
        assert self.allocations() == {}, "host-local addresses not released"
        assert self.tuning_backups() == [], "tuning backups left"
        assert self.journal_files() == [], "journal files left"


@pytest.fixture
def leaks(created: Created, state: State) -> LeakChecker:
    return LeakChecker(created, state)


@pytest.fixture
def kubeapi() -> Iterator[KubeAPIServer]:  # tests/integration/networks has its own
    """The Kubernetes API test server (tests/support), with a random bearer token."""
    server = KubeAPIServer(token=secrets.token_hex(16))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """Thick mode's sandbox (see above): the daemon tests' and the matrix's."""
    require_root()
    box = Sandbox(tmp_path)
    box.create_bridge()
    try:
        yield box
    finally:
        box.close()
