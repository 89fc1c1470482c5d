"""Fixtures for conformance tests: a cnitool built on the real libcni, run for real.

The driver (``cnitool/main.go``) has cnitool's command line and environment
(``cnitool add|check|del <net> <netns>``; NETCONFPATH, CNI_PATH, CNI_ARGS,
CAP_ARGS, CNI_IFNAME) plus CNI_CACHE_DIR for libcni's results cache, which
libcni fills on ADD and hands to CHECK and DEL as ``prevResult``. Its container
ID is ``cnitool-`` + hex(sha512(netns path)[:10]) (``build.container_id``).

Fixtures (all but the session ones are per test and clean up after it):

``cnitool`` (session) -> Path
    The built driver; skips when go or libcni sources are missing.
``cni_bin_dir`` (session) -> Path
    Debian's reference plugins (/usr/lib/cni); skips when absent.
``netns`` -> str
    A fresh namespace ``mnt-<hex>``; its path ``/var/run/netns/<name>``.
    Deleted afterwards (with whatever interfaces are left in it).
``netns_factory`` -> Callable[[], str]
    Makes more such namespaces, all deleted afterwards.
``confdir`` -> Path
    An empty NETCONFPATH directory (``build.write_netconf`` fills it).
``cache_dir`` -> Path
    An empty CNI_CACHE_DIR; cached results land in ``<cache_dir>/results/``.
``bridge_name`` -> str
    A free name ``mnbr<hex>`` for a bridge a plugin will create; the link is
    deleted afterwards if it exists. Nothing else on the host is touched.
``bridge`` -> str
    That bridge created up front, up, with a fixed MAC. Use it when several
    containers share a bridge: a bridge takes the lowest MAC of its ports, so
    with a plugin-created bridge a later ADD changes it and the bridge
    plugin's CHECK (Debian 1.1.1) fails earlier containers with "Bridge
    interface ... Mac doesn't match". A set MAC stays.
``subnet`` -> IPv4Network
    A random 10.x.y.0/24. Safe as long as the bridge has no address
    (``isGateway: false``): it then never reaches the host routing table.
``subnets`` -> tuple of three IPv4Network
    ``subnet`` and the next two 10.x.y.0/24 (cluster network, net1, net2).
``multinet_exe`` (session) -> Path
    The installed ``multinet`` executable; skips when it is not installed.
``plugin_dir`` -> Path
    A CNI_PATH directory holding only a ``multinet`` symlink to it.
``dirs`` -> StateDirs
    multinet's cniDir, host-local's and tuning's dataDir, under tmp_path.

Helpers, imported from ``build``: ``StateDirs``, ``run_cnitool(cnitool, command, net,
netns_path, *, netconfpath, cni_path, cache_dir, ifname="eth0",
cni_args=None, cap_args=None) -> CompletedProcess[str]``, ``container_id``,
``write_netconf`` and ``ip_json`` (``from build import ...`` works under
pytest's default "prepend" import mode). Everything that needs the kernel skips
with "needs root" when not run as root.

Example::

    def test_x(cnitool, cni_bin_dir, netns, confdir, cache_dir):
        write_netconf(confdir, {"cniVersion": "1.0.0", "name": "n", "plugins": [...]})
        proc = run_cnitool(cnitool, "add", "n", netns, netconfpath=confdir,
                           cni_path=[multinet_bin, cni_bin_dir], cache_dir=cache_dir)
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conformance.libcni import (
    CnitoolUnavailable,
    StateDirs,
    build_cnitool,
    multinet_executable,
)

REFERENCE_PLUGINS = Path("/usr/lib/cni")


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: creates network namespaces and bridges")
    if shutil.which("ip") is None:
        pytest.skip("needs the ip command (apt-get install iproute2)")


def _link_exists(name: str) -> bool:
    proc = subprocess.run(["ip", "link", "show", "dev", name], capture_output=True, check=False)
    return proc.returncode == 0


@pytest.fixture(scope="session")
def cnitool() -> Path:
    try:
        return build_cnitool()
    except CnitoolUnavailable as exc:
        pytest.skip(f"cannot build the cnitool driver: {exc}")


@pytest.fixture(scope="session")
def cni_bin_dir() -> Path:
    if not (REFERENCE_PLUGINS / "bridge").is_file():
        pytest.skip(
            f"reference CNI plugins not found in {REFERENCE_PLUGINS} "
            "(apt-get install containernetworking-plugins)"
        )
    return REFERENCE_PLUGINS


@pytest.fixture
def netns_factory() -> Iterator[Callable[[], str]]:
    require_root()
    names: list[str] = []

    def make() -> str:
        name = f"mnt-{secrets.token_hex(4)}"
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
        names.append(name)
        return f"/var/run/netns/{name}"

    try:
        yield make
    finally:
        for name in names:
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


@pytest.fixture
def netns(netns_factory: Callable[[], str]) -> str:
    return netns_factory()


@pytest.fixture
def confdir(tmp_path: Path) -> Path:
    path = tmp_path / "net.d"
    path.mkdir()
    return path


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    path = tmp_path / "cni-cache"
    path.mkdir()
    return path


@pytest.fixture
def bridge_name() -> Iterator[str]:
    require_root()
    name = f"mnbr{secrets.token_hex(2)}"
    while _link_exists(name):
        name = f"mnbr{secrets.token_hex(2)}"
    try:
        yield name
    finally:
        # The name was free before the test: whatever holds it now is ours.
        if _link_exists(name):
            subprocess.run(["ip", "link", "del", "dev", name], check=False, capture_output=True)


@pytest.fixture
def bridge(bridge_name: str) -> str:
    """A bridge created up front with a fixed MAC (see the module docstring)."""
    mac = "02:6d:6e:" + ":".join(secrets.token_hex(3)[i : i + 2] for i in (0, 2, 4))
    subprocess.run(["ip", "link", "add", "name", bridge_name, "type", "bridge"], check=True)
    subprocess.run(["ip", "link", "set", bridge_name, "address", mac, "up"], check=True)
    return bridge_name


@pytest.fixture
def subnet() -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.0/24")


@pytest.fixture
def subnets(subnet: ipaddress.IPv4Network) -> tuple[ipaddress.IPv4Network, ...]:
    _, a, b, _ = subnet.network_address.packed
    return tuple(ipaddress.IPv4Network(f"10.{a}.{(b + i) % 256}.0/24") for i in (0, 1, 2))


@pytest.fixture(scope="session")
def multinet_exe() -> Path:
    exe = multinet_executable()
    if exe is None:
        pytest.skip("multinet is not installed (pip install -e .)")
    return exe


@pytest.fixture
def plugin_dir(tmp_path: Path, multinet_exe: Path) -> Path:
    path = tmp_path / "bin"
    path.mkdir()
    (path / "multinet").symlink_to(multinet_exe)
    return path


@pytest.fixture
def dirs(tmp_path: Path) -> StateDirs:
    return StateDirs(tmp_path / "state", tmp_path / "ipam", tmp_path / "tuning")
