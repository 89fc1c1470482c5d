"""Build and run the cnitool-compatible driver (``cnitool/main.go``).

No pytest here: ``conftest.py`` wraps these in fixtures, and test modules import
``run_cnitool`` and ``container_id`` from this module (``from build import ...``).

The driver is built with Debian's Go toolchain against Debian's libcni sources,
offline (``GO111MODULE=off GOPATH=/usr/share/gocode``), into
``$XDG_CACHE_HOME/multinet/`` (default ``~/.cache/multinet/``) under a name
that carries a hash of main.go and of the Go version, so it is rebuilt only
when either changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).resolve().parent / "cnitool" / "main.go"
GOPATH = Path("/usr/share/gocode")
LIBCNI = GOPATH / "src/github.com/containernetworking/cni/libcni"

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


def build_cnitool(root: Path | None = None) -> Path:
    """Return the path of the built driver, building it first if needed."""
    go = shutil.which("go")
    if go is None:
        raise CnitoolUnavailable("go toolchain not found (apt-get install golang-go)")
    if not (LIBCNI / "api.go").is_file():
        raise CnitoolUnavailable(
            f"libcni sources not found in {LIBCNI} (apt-get install golang-github-appc-cni-dev)"
        )
    go_version = subprocess.run(
        [go, "version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    digest = hashlib.sha256(SOURCE.read_bytes() + go_version.encode()).hexdigest()[:16]

    root = root or cache_root()
    binary = root / f"cnitool-{digest}"
    if binary.is_file():
        return binary

    root.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GO111MODULE="off", GOPATH=str(GOPATH), CGO_ENABLED="0", GOFLAGS="")
    env.setdefault("GOCACHE", str(root / "go-build"))
    # Build under a temporary name and rename: concurrent sessions never see
    # a half-written binary.
    fd, tmp = tempfile.mkstemp(prefix=".cnitool-", dir=root)
    os.close(fd)
    try:
        proc = subprocess.run(
            [go, "build", "-o", tmp, SOURCE.name],
            cwd=SOURCE.parent,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise CnitoolBuildError(f"go build of {SOURCE} failed:\n{proc.stderr}")
        os.replace(tmp, binary)
    finally:
        Path(tmp).unlink(missing_ok=True)
    for stale in root.glob("cnitool-*"):
        if stale != binary:
            stale.unlink(missing_ok=True)
    return binary


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
