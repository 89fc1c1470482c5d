"""Fixtures for conformance tests: a cnitool built on the real libcni, run for real.

The driver (``cnitool/main.go``) has cnitool's command line and environment
(``cnitool add|check|del <net> <netns>``; NETCONFPATH, CNI_PATH, CNI_ARGS,
CAP_ARGS, CNI_IFNAME) plus CNI_CACHE_DIR for libcni's results cache, which
libcni fills on ADD and hands to CHECK and DEL as ``prevResult``. Its container
ID is ``cnitool-`` + hex(sha512(netns path)[:10]) (``build.container_id``).

Most tests take one bundled fixture (types in ``rig.py``):

``rig`` -> Rig
    The driver on the real libcni with an empty NETCONFPATH (``rig.write(conf)``) and
    CNI_CACHE_DIR, CNI_PATH the reference plugins (``rig.with_path(dir)`` puts more
    ahead), ``rig.run(command, net, ...)`` -> CompletedProcess, ``rig.cached(net)``;
    and everything of ``lab``. Skips when go, libcni or the plugins are missing.
``lab`` -> Lab
    The kernel side: ``netns`` (a fresh ``mnt-<hex>``; ``new_netns()`` makes more),
    ``bridge`` (a free name ``mnbr<hex>`` for a bridge a plugin will create;
    ``make_bridge()`` creates it up front with a fixed MAC), ``subnets`` (three
    random 10.x.y.0/24: cluster network, net1, net2; ``subnet`` is the first),
    ``dirs`` (multinet's cniDir, host-local's and tuning's dataDir), ``cni_bin_dir``,
    ``tmp_path``. Namespaces and the bridge are deleted afterwards; nothing else on the
    host is touched. A subnet is safe as long as the bridge has no address
    (``isGateway: false``): it then never reaches the host routing table.

Their parts, also fixtures: ``cnitool`` (session: the built driver), ``cni_bin_dir``
(session: Debian's reference plugins, /usr/lib/cni), ``netns_factory``,
``confdir``, ``cache_dir`` (cached results land in ``<cache_dir>/results/``),
``bridge_name``, ``subnets``, ``dirs``; ``multinet_exe`` (session: the installed
``multinet``; skips when it is not installed) and ``plugin_dir`` (a CNI_PATH directory
holding only a ``multinet`` symlink to it).

Helpers, in ``libcni``: ``StateDirs``, ``run_cnitool(cnitool, command, net,
netns_path, *, netconfpath, cni_path, cache_dir, ifname="eth0", cni_args=None,
cap_args=None) -> CompletedProcess[str]``, ``container_id``, ``write_netconf`` and
``ip_json``. Everything that needs the kernel skips with "needs root" when not run as
root.

Example::

    def test_x(rig: Rig) -> None:
        rig.write({"cniVersion": "1.0.0", "name": "n", "plugins": [...]})
        proc = rig.run("add", "n")
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from multinet.cli import install
from tests.conformance.libcni import CnitoolUnavailable, StateDirs, build_cnitool
from tests.conformance.rig import Lab, Rig

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
def subnets() -> tuple[ipaddress.IPv4Network, ...]:
    a, b = secrets.randbelow(256), secrets.randbelow(256)
    return tuple(ipaddress.IPv4Network(f"10.{a}.{(b + i) % 256}.0/24") for i in (0, 1, 2))


@pytest.fixture(scope="session")
def multinet_exe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The thin `multinet` as `multinetctl install-shim` writes it: the launcher a node runs."""
    try:
        return Path(install.install_thin(str(tmp_path_factory.mktemp("bin")), sys.executable))
    except (OSError, ValueError) as e:
        pytest.skip(f"cannot install the thin launcher: {e}")


@pytest.fixture
def plugin_dir(tmp_path: Path, multinet_exe: Path) -> Path:
    path = tmp_path / "bin"
    path.mkdir()
    (path / "multinet").symlink_to(multinet_exe)
    return path


@pytest.fixture
def dirs(tmp_path: Path) -> StateDirs:
    return StateDirs(tmp_path / "state", tmp_path / "ipam", tmp_path / "tuning")


@pytest.fixture
def lab(
    cni_bin_dir: Path,
    netns_factory: Callable[[], str],
    bridge_name: str,
    subnets: tuple[ipaddress.IPv4Network, ...],
    dirs: StateDirs,
    tmp_path: Path,
) -> Lab:
    return Lab(cni_bin_dir, netns_factory(), netns_factory, bridge_name, subnets, dirs, tmp_path)


@pytest.fixture
def rig(lab: Lab, cnitool: Path, confdir: Path, cache_dir: Path) -> Rig:
    parts = {f.name: getattr(lab, f.name) for f in dataclasses.fields(lab)}
    return Rig(
        **parts, cnitool=cnitool, confdir=confdir, cache_dir=cache_dir, cni_path=(lab.cni_bin_dir,)
    )
