"""bench.cgroup against the kernel: a process started through the wrapper is in the
cgroup with every child it spawns, the limit OOM-kills and is counted, remove() takes
the cgroup away even with a process still in it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.cgroup import MIB, MemoryCgroup

pytestmark = pytest.mark.root

HOG = "import time; x = bytearray(256 * 2**20); x[::4096] = b'x' * len(x[::4096]); time.sleep(5)"


def test_the_wrapper_puts_a_process_and_its_children_in_the_cgroup() -> None:
    cg = MemoryCgroup(64 * MIB, prefix="mnt-cg")
    try:
        assert cg.limit() == 64 * MIB
        proc = subprocess.Popen([*cg.wrapper(), "/bin/sh", "-c", "sleep 30 & exec sleep 30"])
        try:
            for _ in range(100):
                if len(cg.pids()) == 2:
                    break
                subprocess.run(["sleep", "0.05"], check=True)
            assert proc.pid in cg.pids()  # exec kept the wrapper's pid
            assert len(cg.pids()) == 2  # and the child it forked is charged too
            assert cg.usage() > 0
        finally:
            cg.remove(timeout=0.5)  # kills what is left in it
            proc.wait(5)
        assert not cg.path.exists()
        cg.remove()  # idempotent
    finally:
        cg.remove()


def test_the_limit_oom_kills_and_is_counted() -> None:
    cg = MemoryCgroup(64 * MIB, prefix="mnt-cg")
    try:
        assert cg.oom_kills() == 0
        proc = subprocess.run(
            [*cg.wrapper(), sys.executable, "-c", HOG], capture_output=True, timeout=60
        )
        assert proc.returncode == -9  # SIGKILL from the kernel
        assert cg.oom_kills() == 1
        assert cg.limit_hits() > 0
        assert 32 * MIB < cg.peak() <= 64 * MIB
    finally:
        cg.remove()
    assert not cg.path.exists()
