"""A memory cgroup of the benchmark's own, as a pod's container has one (v1 or v2).

The cgroup is a uniquely named child (`mnb-burst-<hex>`) of the cgroup the benchmark
itself runs in (v2: of its nearest ancestor that enables the memory controller), so
every limit above it still holds. A process enters it through
`wrapper()`: a shell that writes its own pid into the cgroup, then execs the command,
so the command and every process it spawns (a daemon's delegates) are charged to it
from their first page. `remove()` waits for its processes to exit (killing those left:
they are the command's own descendants) and removes the directory; it is idempotent.

| what                 | v1 (memory controller)              | v2                       |
|---|---|---|
| limit                | memory.limit_in_bytes               | memory.max               |
| usage                | memory.usage_in_bytes               | memory.current           |
| peak                 | memory.max_usage_in_bytes           | memory.peak              |
| OOM kills            | memory.oom_control: oom_kill        | memory.events: oom_kill  |
| times at the limit   | memory.failcnt                      | memory.events: max       |

No swap is charged: v2's memory.swap.max is set to 0 where it exists; v1 charges
swap only to memsw, and its swappiness is set to 0 so the limit OOM-kills rather
than pages out, as a container without swap does.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from pathlib import Path

from bench.daemon import BenchError

ROOT = Path("/sys/fs/cgroup")
V1_MEMORY = ROOT / "memory"
MIB = 2**20


def parse_keyed(text: str) -> dict[str, int]:
    """A flat keyed file (memory.events, memory.oom_control, memory.stat): {key: int}."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def parse_bytes(text: str) -> int | None:
    """A byte count as a memory file holds it; None for v2's "max" (no limit)."""
    value = text.strip()
    return None if value == "max" else int(value)


def own_path(proc_cgroup: str, version: int) -> str:
    """The cgroup (relative to its hierarchy's root) of a process, from /proc/PID/cgroup:
    the memory controller's line on v1, the unified line ("0::") on v2."""
    for line in proc_cgroup.splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        if version == 2 and hierarchy == "0" and controllers == "":
            return path
        if version == 1 and "memory" in controllers.split(","):
            return path
    raise BenchError(f"no cgroup v{version} memory line in /proc/self/cgroup: {proc_cgroup!r}")


def detect(root: Path = ROOT) -> int:
    """2 when the unified hierarchy at `root` has the memory controller, 1 when v1's memory
    hierarchy is mounted, else a clear error."""
    controllers = root / "cgroup.controllers"
    if controllers.exists() and "memory" in controllers.read_text().split():
        return 2
    if (root / "memory" / "memory.limit_in_bytes").exists():
        return 1
    raise BenchError(f"no memory cgroup controller under {root} (v1 or v2)")


def v2_parent(root: Path, own: Path) -> Path:
    """Where a v2 child with the memory controller can be made: the nearest of `own` and
    its ancestors that enables memory for its children (systemd's slices do), or the
    root, enabling it there (v2 forbids it in a non-root cgroup holding processes, as
    `own` does: the benchmark runs in it)."""
    here = own
    while True:
        if "memory" in (here / "cgroup.subtree_control").read_text().split():
            return here
        if here == root or root not in here.parents:
            break
        here = here.parent
    try:
        (root / "cgroup.subtree_control").write_text("+memory")
    except OSError as e:
        raise BenchError(
            f"cannot enable the memory controller for children of {root}: {e}"
        ) from None
    return root


class MemoryCgroup:
    def __init__(self, limit_bytes: int | None, prefix: str = "mnb-burst") -> None:
        self.version = detect()
        with open("/proc/self/cgroup") as f:
            parent_rel = own_path(f.read(), self.version).lstrip("/")
        # Whether this run enabled v2's memory controller at the root (undone by remove).
        self._enabled_at_root = False
        if self.version == 2:
            had = "memory" in (ROOT / "cgroup.subtree_control").read_text().split()
            parent = v2_parent(ROOT, ROOT / parent_rel)
            self._enabled_at_root = parent == ROOT and not had
        else:
            parent = V1_MEMORY / parent_rel
        self._usage_max = 0  # for kernels without v2's memory.peak (before 5.19)
        self.path = parent / f"{prefix}-{secrets.token_hex(4)}"
        try:
            self.path.mkdir()
        except OSError as e:
            raise BenchError(f"cannot create the cgroup {self.path}: {e}") from None
        self._removed = False
        try:
            if self.version == 2:
                with contextlib.suppress(FileNotFoundError):
                    self._write("memory.swap.max", "0")
                if limit_bytes is not None:
                    self._write("memory.max", str(limit_bytes))
            else:
                with contextlib.suppress(OSError):
                    self._write("memory.swappiness", "0")
                if limit_bytes is not None:
                    self._write("memory.limit_in_bytes", str(limit_bytes))
        except BaseException:
            self.remove()
            raise

    def _read(self, name: str) -> str:
        return (self.path / name).read_text()

    def _write(self, name: str, value: str) -> None:
        (self.path / name).write_text(value)

    @property
    def procs_file(self) -> Path:
        return self.path / "cgroup.procs"

    def wrapper(self) -> list[str]:
        """A command prefix: the process joins the cgroup, then execs the rest (same pid)."""
        return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.procs_file)]

    def limit(self) -> int | None:
        if self.version == 2:
            return parse_bytes(self._read("memory.max"))
        value = int(self._read("memory.limit_in_bytes"))
        return None if value >= 2**62 else value  # v1's "no limit" is a huge page-aligned number

    def usage(self) -> int:
        value = int(self._read("memory.current" if self.version == 2 else "memory.usage_in_bytes"))
        self._usage_max = max(self._usage_max, value)
        return value

    def peak(self) -> int:
        """The highest usage since the cgroup was created: the kernel's own record, or
        on v2 kernels before 5.19 (no memory.peak) the highest usage sampled."""
        try:
            return int(
                self._read("memory.peak" if self.version == 2 else "memory.max_usage_in_bytes")
            )
        except FileNotFoundError:
            return max(self._usage_max, self.usage())

    def oom_kills(self) -> int:
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        return parse_keyed(self._read(name)).get("oom_kill", 0)

    def limit_hits(self) -> int:
        """How often usage hit the limit (reclaim, then possibly an OOM kill)."""
        if self.version == 2:
            return parse_keyed(self._read("memory.events")).get("max", 0)
        return int(self._read("memory.failcnt"))

    def stat(self) -> dict[str, int]:
        return parse_keyed(self._read("memory.stat"))

    def breakdown(self) -> dict[str, int]:
        """Usage by kind, bytes: anonymous (the processes' heaps), file (page cache, which
        the kernel reclaims before it OOM-kills) and kernel (slab, stacks, sockets, the
        network devices the delegates created: charged until freed)."""
        stat = self.stat()
        if self.version == 2:
            kernel = stat.get("kernel")
            if kernel is None:  # before Linux 5.18
                kernel = sum(stat.get(k, 0) for k in ("kernel_stack", "slab", "sock", "percpu"))
            return {"anon": stat.get("anon", 0), "file": stat.get("file", 0), "kernel": kernel}
        try:
            kernel = int(self._read("memory.kmem.usage_in_bytes"))
        except OSError:
            kernel = 0
        return {
            "anon": stat.get("total_rss", stat.get("rss", 0)),
            "file": stat.get("total_cache", stat.get("cache", 0)),
            "kernel": kernel,
        }

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in self._read("cgroup.procs").split()]
        except FileNotFoundError:
            return []

    def remove(self, timeout: float = 15.0) -> None:
        """Wait for the processes inside to exit, SIGKILL those left after `timeout` (ours:
        started through `wrapper()`), then remove the directory. Idempotent."""
        if self._removed:
            return
        deadline = time.monotonic() + timeout
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5.0
        while True:
            try:
                self.path.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError as e:  # EBUSY until the killed processes are reaped
                if time.monotonic() > deadline:
                    raise BenchError(f"cannot remove the cgroup {self.path}: {e}") from None
                time.sleep(0.1)
        self._removed = True
        if self._enabled_at_root:  # leave the host's hierarchy as found
            with contextlib.suppress(OSError):
                (ROOT / "cgroup.subtree_control").write_text("-memory")
