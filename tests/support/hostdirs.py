"""The host's default CNI state directories, watched: no test may write there.

Every test gives multinet and the reference plugins directories of its own (cniDir,
host-local's and tuning's dataDir, binDir, confDir, the daemon's socket); a plugin that
runs with its default instead writes on the host, where the next run, or a node, finds
it. `snapshot()` records every path under `ROOTS` with its modification time, `changes()`
names what differs between two: paths created or removed, and files or directories
modified (a directory's mtime moves when an entry came and went: a plugin that wrote a
file there and removed it again still used the host's directory).

tests/conftest.py checks around every test (the test is named: anything created, removed
or modified fails it) and over the whole session (between tests too: anything created or
removed fails the run). A test that uses a default on purpose and restores it (libcni's
/var/lib/cni cache in docs/cnitool.md's walk-through) is marked
`@pytest.mark.host_dirs("why")`: only what it leaves fails it.

The cost: one lstat per root and one scandir per directory found, about 50 microseconds a
snapshot (two a test) on a host whose defaults hold little.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

# Each root holds defaults of multinet (multinet/config/netconf.py, multinet/daemon/
# config.py, ...) or of the reference plugins; a root that does not exist costs one lstat
# and shows when something creates it.
ROOTS = (
    # host-local's dataDir (networks/), multinet's cniDir (multinet/), Multus's cniDir
    # (multus/), sriov-cni's cache (sriov/), libcni's result cache (results/, cache/).
    Path("/var/lib/cni"),
    # tuning's dataDir (/run/cni/tuning), the reference dhcp daemon's socket.
    Path("/run/cni"),
    # multinetd's socket (/run/multinet/multinet.sock).
    Path("/run/multinet"),
    # The NPWG device-info files (/var/run/k8s.cni.cncf.io/devinfo).
    Path("/run/k8s.cni.cncf.io"),
    # confDir (/etc/cni/multus/net.d), multinetd's cniConfigDir (/etc/cni/net.d).
    Path("/etc/cni"),
    # multinetd's configuration file (/etc/multinet/daemon.json).
    Path("/etc/multinet"),
    # binDir (/opt/cni/bin): where `multinet install` copies binaries.
    Path("/opt/cni"),
)
# Beyond this many entries under one root the rest is not recorded (a real node's
# /var/lib/cni, say): the check stays cheap, and still sees the top levels.
LIMIT = 2000

Snapshot = dict[str, int]  # path -> st_mtime_ns (-1: a directory that cannot be read)


def snapshot(roots: Iterable[Path] = ROOTS, limit: int = LIMIT) -> Snapshot:
    """Every path under `roots` (symlinks not followed), the roots included."""
    out: Snapshot = {}
    for root in roots:
        try:
            out[str(root)] = root.lstat().st_mtime_ns
        except OSError:
            continue
        pending, seen = [str(root)], 0
        while pending and seen < limit:
            directory = pending.pop()
            try:
                with os.scandir(directory) as entries:
                    for entry in entries:
                        if seen == limit:
                            break
                        seen += 1
                        try:
                            out[entry.path] = entry.stat(follow_symlinks=False).st_mtime_ns
                        except OSError:
                            continue  # removed meanwhile
                        if entry.is_dir(follow_symlinks=False):
                            pending.append(entry.path)
            except OSError:  # not root: /run/cni is root's alone
                out[directory] = -1
    return out


def changes(
    before: Mapping[str, int], after: Mapping[str, int], *, modified: bool = True
) -> list[str]:
    """What differs, one line a path: "created P", "removed P", "modified P" (not with
    `modified=False`: only what is left, or gone)."""
    lines = [f"created {p}" for p in after if p not in before]
    lines += [f"removed {p}" for p in before if p not in after]
    if modified:
        lines += [f"modified {p}" for p in after if p in before and before[p] != after[p]]
    return sorted(lines, key=lambda line: line.split(" ", 1)[1])


def report(what: str, found: list[str]) -> str:
    shown = found[:20] + ([f"... and {len(found) - 20} more"] if len(found) > 20 else [])
    return (
        f"{what} wrote in the host's default CNI directories (a plugin or multinet ran "
        "with its default instead of the test's directory; or another process on this "
        "host wrote there meanwhile):\n  " + "\n  ".join(shown)
    )
