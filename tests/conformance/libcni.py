"""Build and run the cnitool-compatible driver (``cnitool/main.go``).

No pytest here: ``conftest.py`` wraps these in fixtures, and test modules import
``run_cnitool`` and ``container_id`` from this module (``from build import ...``).

The driver is built with Debian's Go toolchain against Debian's libcni sources,
offline (``GO111MODULE=off GOPATH=/usr/share/gocode``), into
``$XDG_CACHE_HOME/multinet/`` (default ``~/.cache/multinet/``) under a name
that carries a hash of main.go and of the Go version, so it is rebuilt only
when either changes.

``build_real_cnitool`` builds upstream's own cnitool the same way, from
``$GOPATH/src/github.com/containernetworking/cni/cnitool`` when that package
source is installed there (Debian's golang-github-appc-cni-dev 1.1.2 ships
libcni and pkg/ but not cnitool: then it raises CnitoolUnavailable).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).resolve().parent / "cnitool" / "main.go"
GOPATH = Path("/usr/share/gocode")
LIBCNI = GOPATH / "src/github.com/containernetworking/cni/libcni"
REAL_CNITOOL_PACKAGE = "github.com/containernetworking/cni/cnitool"
REAL_CNITOOL_SOURCE = GOPATH / "src" / REAL_CNITOOL_PACKAGE

StrPath = str | os.PathLike[str]

# Variables the driver reads; cleared from the inherited environment so the
# caller's shell cannot leak into a test.
DRIVER_ENV = ("NETCONFPATH", "CNI_PATH", "CNI_ARGS", "CAP_ARGS", "CNI_IFNAME", "CNI_CACHE_DIR")


class CnitoolUnavailable(Exception):
    """The toolchain or libcni sources are missing; the message says what to install."""


class CnitoolBuildError(Exception):
    """``go build`` failed: a bug in main.go or a broken toolchain, never a skip."""


def cache_root() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "multinet"
    try:
        return Path.home() / ".cache" / "multinet"
    except RuntimeError:  # no HOME and no passwd entry
        return Path(tempfile.gettempdir()) / "multinet-cache"


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise CnitoolUnavailable("go toolchain not found (apt-get install golang-go)")
    if not (LIBCNI / "api.go").is_file():
        raise CnitoolUnavailable(
            f"libcni sources not found in {LIBCNI} (apt-get install golang-github-appc-cni-dev)"
        )
    return go


def _go_build(
    go: str, prefix: str, sources: Sequence[Path], args: Sequence[str], cwd: Path, root: Path
) -> Path:
    """``go build -o <root>/<prefix>-<hash> ARGS`` unless that binary already exists.

    The hash covers ``sources`` and the Go version. Older ``<prefix>-<hash>``
    binaries are removed; other prefixes are left alone.
    """
    go_version = subprocess.run(
        [go, "version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    digest = hashlib.sha256(
        b"".join(p.read_bytes() for p in sorted(sources)) + go_version.encode()
    ).hexdigest()[:16]
    binary = root / f"{prefix}-{digest}"
    if binary.is_file():
        return binary

    root.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GO111MODULE="off", GOPATH=str(GOPATH), CGO_ENABLED="0", GOFLAGS="")
    env.setdefault("GOCACHE", str(root / "go-build"))
    # Build under a temporary name and rename: concurrent sessions never see
    # a half-written binary.
    fd, tmp = tempfile.mkstemp(prefix=f".{prefix}-", dir=root)
    os.close(fd)
    try:
        proc = subprocess.run(
            [go, "build", "-o", tmp, *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise CnitoolBuildError(f"go build {' '.join(args)} failed:\n{proc.stderr}")
        os.replace(tmp, binary)
    finally:
        Path(tmp).unlink(missing_ok=True)
    own = re.compile(rf"{re.escape(prefix)}-[0-9a-f]{{16}}")
    for stale in root.iterdir():
        if stale != binary and own.fullmatch(stale.name):
            stale.unlink(missing_ok=True)
    return binary


def build_cnitool(root: Path | None = None) -> Path:
    """Return the path of the built driver, building it first if needed."""
    go = _go()
    return _go_build(go, "cnitool", [SOURCE], [SOURCE.name], SOURCE.parent, root or cache_root())


def build_real_cnitool(root: Path | None = None) -> Path:
    """Return upstream's cnitool built from the installed sources, building it if needed.

    It uses libcni's default cache directory, /var/lib/cni (no CNI_CACHE_DIR).
    """
    go = _go()
    sources = sorted(REAL_CNITOOL_SOURCE.glob("*.go")) if REAL_CNITOOL_SOURCE.is_dir() else []
    if not sources:
        raise CnitoolUnavailable(
            f"cnitool sources not found in {REAL_CNITOOL_SOURCE}: Debian's "
            "golang-github-appc-cni-dev ships libcni and pkg/ but not cnitool"
        )
    return _go_build(
        go, "cnitool-real", sources, [REAL_CNITOOL_PACKAGE], GOPATH, root or cache_root()
    )


def container_id(netns_path: StrPath) -> str:
    """The container ID cnitool derives from an absolute netns path."""
    path = os.path.abspath(os.fspath(netns_path))
    return "cnitool-" + hashlib.sha512(path.encode()).hexdigest()[:20]


def run_cnitool(
    cnitool: StrPath,
    command: str,
    net: str,
    netns_path: StrPath,
    *,
    netconfpath: StrPath,
    cni_path: StrPath | Sequence[StrPath],
    cache_dir: StrPath,
    ifname: str = "eth0",
    cni_args: str | Mapping[str, str] | None = None,
    cap_args: Mapping[str, Any] | None = None,
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[str]:
    """Run ``cnitool COMMAND NET NETNS`` and return the finished process (text mode).

    ``cni_path`` is one directory or a list of them; ``cni_args`` is the raw
    ``K=V;K2=V2`` string or a mapping; ``cap_args`` is JSON-encoded into
    CAP_ARGS. On ADD, stdout is the result JSON; on failure the exit code is 1
    and the error is on stderr. The return code is not checked.
    """
    if isinstance(cni_path, str | os.PathLike):
        cni_path = [cni_path]
    env = {k: v for k, v in os.environ.items() if k not in DRIVER_ENV}
    env.update(
        NETCONFPATH=os.fspath(netconfpath),
        CNI_PATH=":".join(os.fspath(p) for p in cni_path),
        CNI_CACHE_DIR=os.fspath(cache_dir),
        CNI_IFNAME=ifname,
    )
    if cni_args is not None:
        if not isinstance(cni_args, str):
            cni_args = ";".join(f"{k}={v}" for k, v in cni_args.items())
        env["CNI_ARGS"] = cni_args
    if cap_args is not None:
        env["CAP_ARGS"] = json.dumps(cap_args)
    return subprocess.run(
        [os.fspath(cnitool), command, net, os.fspath(netns_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write_netconf(confdir: StrPath, conf: Mapping[str, Any]) -> Path:
    """Write a network config as ``<name>.conflist`` (has ``plugins``) or ``<name>.conf``."""
    suffix = ".conflist" if "plugins" in conf else ".conf"
    path = Path(confdir) / f"{conf['name']}{suffix}"
    path.write_text(json.dumps(conf, indent=2))
    return path


def ip_json(netns_path: StrPath, *args: str) -> Any:
    """``ip -n NS -j ARGS...`` parsed, e.g. ``ip_json(ns, "addr", "show", "dev", "eth0")``."""
    name = os.path.basename(os.fspath(netns_path))
    proc = subprocess.run(
        ["ip", "-n", name, "-j", *args], capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout or "[]")


@dataclass(frozen=True)
class StateDirs:
    """Where one test's plugins keep state (the ``dirs`` fixture; nothing made up front)."""

    state: Path  # multinet's cniDir
    ipam: Path  # host-local's dataDir
    tuning: Path  # tuning's dataDir

    @property
    def journal(self) -> Path:
        """multinet's journal: one file per (container, ifname) while attached."""
        return self.state / "journal"


def bridge_conflist(
    version: str,
    name: str,
    bridge: str,
    subnet: ipaddress.IPv4Network,
    ipam_dir: Path,
    *extra: dict[str, Any],
) -> dict[str, Any]:
    """bridge + host-local on ``subnet`` (gateway .1), then ``extra`` chained plugins."""
    gateway = str(subnet[1])
    bridge_plugin = {
        "type": "bridge",
        "bridge": bridge,
        # No address on the bridge: nothing reaches the host routing table.
        "isGateway": False,
        "ipMasq": False,
        "ipam": {
            "type": "host-local",
            "dataDir": str(ipam_dir),
            "ranges": [[{"subnet": str(subnet), "gateway": gateway}]],
            # Routes need a gw: Debian's bridge CHECK fails on gw-less routes.
            "routes": [{"dst": "0.0.0.0/0", "gw": gateway}],
        },
    }
    return {"cniVersion": version, "name": name, "plugins": [bridge_plugin, *extra]}


def addresses(netns: str, ifname: str) -> set[str]:
    """``addr/prefix`` of every IPv4 address on ``ifname`` in ``netns``."""
    links = ip_json(netns, "addr", "show", "dev", ifname)
    return {
        f"{a['local']}/{a['prefixlen']}"
        for link in links
        for a in link["addr_info"]
        if a["family"] == "inet"
    }
