"""The daemon's own memory cgroup, v1 or v2: its limit and the memory charged to it.

In a pod, multinetd's container is a memory cgroup; the delegates it runs, and the
kernel memory of the interfaces they create, are charged to it too. Admission
(daemon.admission) reads it to start a request only when the headroom covers it.

| what          | v1 (memory controller)                  | v2                         |
|---|---|---|
| limit         | memory.limit_in_bytes (>= 2^62: none)   | memory.max ("max": none)   |
| usage         | memory.usage_in_bytes                   | memory.current             |
| reclaimable   | memory.stat total_inactive_file         | memory.stat inactive_file  |

The working set is usage less the inactive page cache, as the kubelet counts it: the
kernel reclaims those pages before it OOM-kills.

Where: the cgroup named by /proc/self/cgroup under the hierarchy's mount; when that
directory is not there, the mount itself (a container sees its own cgroup at the mount
root, through a cgroup namespace or a bind mount).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_NO_LIMIT = 2**62  # v1 writes "no limit" as a huge page-aligned number


def _keyed(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


class CgroupMemory:
    """One memory cgroup's files (`directory`, cgroup `version` 1 or 2)."""

    def __init__(self, directory: Path, version: int) -> None:
        if version not in (1, 2):
            raise ValueError(f"cgroup version {version}")
        self.directory = directory
        self.version = version

    @classmethod
    def of_self(
        cls, proc_cgroup: str | None = None, root: Path = CGROUP_ROOT
    ) -> CgroupMemory | None:
        """The calling process's memory cgroup, or None when there is none to read (no
        memory controller mounted, /proc/self/cgroup unreadable)."""
        if proc_cgroup is None:
            try:
                proc_cgroup = Path("/proc/self/cgroup").read_text()
            except OSError:
                return None
        v2 = (root / "cgroup.controllers").exists()
        mount = root if v2 else root / "memory"
        usage = "memory.current" if v2 else "memory.usage_in_bytes"
        for line in proc_cgroup.splitlines():
            hierarchy, _, rest = line.partition(":")
            controllers, _, path = rest.partition(":")
            mine = (
                (hierarchy == "0" and controllers == "")
                if v2
                else "memory" in controllers.split(",")
            )
            if not mine:
                continue
            for directory in (mount / path.lstrip("/"), mount):
                if (directory / usage).exists():
                    return cls(directory, 2 if v2 else 1)
        return None

    def _read(self, name: str) -> str:
        return (self.directory / name).read_text()

    def limit(self) -> int | None:
        """Bytes, or None: no limit."""
        if self.version == 2:
            value = self._read("memory.max").strip()
            return None if value == "max" else int(value)
        limit = int(self._read("memory.limit_in_bytes"))
        return None if limit >= V1_NO_LIMIT else limit

    def usage(self) -> int:
        return int(self._read("memory.current" if self.version == 2 else "memory.usage_in_bytes"))

    def working_set(self) -> int:
        """Usage less the inactive page cache (bytes): what the kernel cannot reclaim
        without paging the processes' working memory."""
        usage = self.usage()
        inactive = 0
        with contextlib.suppress(OSError):
            stat = _keyed(self._read("memory.stat"))
            key = "inactive_file" if self.version == 2 else "total_inactive_file"
            inactive = stat.get(key, 0)
        return max(0, usage - inactive)
