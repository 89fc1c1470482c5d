"""Memory-aware admission: a fake cgroup directory (v1 and v2 files) whose usage the
test sets decides whether a queued request starts; each lane's first request always
starts; the other lane's own limit."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from multinet.daemon.admission import (
    ADD,
    MIB,
    OTHER,
    Admission,
    Busy,
    MemoryBudget,
    memory_budget,
)
from multinet.daemon.memcg import CgroupMemory

POLL = 0.01


def wait_until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.001)


class FakeCgroup:
    """A cgroup directory as the kernel shows it (v1 or v2), its figures set by the test."""

    def __init__(self, directory: Path, version: int, limit_mib: int | None) -> None:
        self.directory, self.version = directory, version
        directory.mkdir(parents=True, exist_ok=True)
        if version == 2:
            (directory / "memory.max").write_text(
                "max\n" if limit_mib is None else f"{limit_mib * MIB}\n"
            )
        else:
            limit = 9223372036854771712 if limit_mib is None else limit_mib * MIB
            (directory / "memory.limit_in_bytes").write_text(f"{limit}\n")
        self.set(0)

    def set(self, usage_mib: float, inactive_file_mib: float = 0) -> None:
        usage = "memory.current" if self.version == 2 else "memory.usage_in_bytes"
        inactive = "inactive_file" if self.version == 2 else "total_inactive_file"
        (self.directory / usage).write_text(f"{int(usage_mib * MIB)}\n")
        (self.directory / "memory.stat").write_text(
            f"anon 1\n{inactive} {int(inactive_file_mib * MIB)}\nactive_file 0\n"
        )

    def reader(self) -> CgroupMemory:
        return CgroupMemory(self.directory, self.version)


@pytest.fixture(params=[1, 2], ids=["v1", "v2"])
def cgroup(request: pytest.FixtureRequest, tmp_path: Path) -> FakeCgroup:
    return FakeCgroup(tmp_path / "cg", request.param, limit_mib=100)


def budgeted(cgroup: FakeCgroup, limit: int = 8, cost_mib: int = 10) -> Admission:
    budget = MemoryBudget(cgroup.reader(), 100 * MIB, cost_mib * MIB)
    return Admission(limit, depth=10, timeout=10, memory=budget, poll=POLL)


def test_the_working_set_is_usage_less_the_inactive_page_cache(cgroup: FakeCgroup) -> None:
    cgroup.set(70, inactive_file_mib=15)
    reader = cgroup.reader()
    assert (reader.limit(), reader.usage(), reader.working_set()) == (100 * MIB, 70 * MIB, 55 * MIB)


def test_a_request_starts_only_when_the_headroom_covers_it_and_those_executing(
    cgroup: FakeCgroup,
) -> None:
    a = budgeted(cgroup)
    cgroup.set(75)  # 25 MiB of headroom: room for 2 requests of 10 MiB
    a.admit("ADD")
    a.admit("ADD")
    started = threading.Event()

    def third() -> None:
        a.admit("ADD")
        started.set()

    t = threading.Thread(target=third, daemon=True)
    t.start()
    wait_until(lambda: a.queued(ADD) == 1)
    time.sleep(10 * POLL)
    assert not started.is_set() and a.executing(ADD) == 2  # a slot is free: memory is not
    load = a.memory_load()
    assert load is not None
    assert (load.limit, load.working_set, load.headroom) == (100 * MIB, 75 * MIB, 25 * MIB)
    assert load.request_cost == 10 * MIB and load.deferred == {ADD: 1, OTHER: 0}
    cgroup.set(60)  # memory freed outside any request's end (e.g. a pod's interfaces)
    assert started.wait(5)  # the head polled the cgroup
    assert (a.executing(ADD), a.queued(ADD)) == (3, 0)
    t.join(5)


def test_a_release_starts_the_waiter_the_freed_memory_covers(cgroup: FakeCgroup) -> None:
    budget = MemoryBudget(cgroup.reader(), 100 * MIB, 10 * MIB)
    a = Admission(4, depth=10, timeout=10, memory=budget, poll=60)  # no poll in time
    cgroup.set(75)  # 25 MiB: room for 2 requests of 10
    a.admit("DEL")
    a.admit("DEL")
    waiter = threading.Thread(target=lambda: a.admit("DEL"), daemon=True)
    waiter.start()
    wait_until(lambda: a.queued(OTHER) == 1)
    cgroup.set(70)  # the request that ends freed 5 MiB: 30 covers 1 executing + 1
    a.release(OTHER)
    waiter.join(5)
    assert (a.executing(OTHER), a.queued(OTHER)) == (2, 0)


def test_each_lane_runs_one_request_whatever_the_memory(cgroup: FakeCgroup) -> None:
    budget = MemoryBudget(cgroup.reader(), 100 * MIB, 10 * MIB)
    a = Admission(8, depth=10, timeout=0.2, memory=budget, poll=POLL)
    cgroup.set(100)  # no headroom at all
    add, delete = a.admit("ADD"), a.admit("DEL")  # neither waits: progress is guaranteed
    assert (add.waited, delete.waited) == (0.0, 0.0)
    with pytest.raises(Busy) as e:
        a.admit("DEL")  # a second one waits for memory, until its deadline
    assert (e.value.reason, e.value.lane) == ("deadline", OTHER)
    assert re.search(r"1 requests ahead, waited \d\.\d s; memory headroom 0\.0 MiB", e.value.msg)
    assert (a.executing(OTHER), a.queued(OTHER)) == (1, 0)
    a.release(ADD)
    a.release(OTHER)


def test_waiters_for_memory_keep_their_order(cgroup: FakeCgroup) -> None:
    a = budgeted(cgroup, limit=8)
    cgroup.set(95)  # room for none but a lane's first
    a.admit("ADD")
    order: list[int] = []

    def request(i: int) -> None:
        with a.slot("ADD"):  # alone in the lane: the next starts when it ends
            order.append(i)

    threads = []
    for i in range(5):
        threads.append(threading.Thread(target=request, args=(i,), daemon=True))
        threads[-1].start()
        wait_until(lambda i=i: a.queued(ADD) == i + 1)  # type: ignore[misc]
    a.release(ADD)
    for t in threads:
        t.join(5)
    assert order == list(range(5))


def test_the_other_lane_has_its_own_wider_limit() -> None:
    a = Admission(1, depth=0, timeout=5, other_limit=3)
    assert (a.limit(ADD), a.limit(OTHER)) == (1, 3)
    for _ in range(3):
        a.admit("DEL")
    with pytest.raises(Busy):
        a.admit("CHECK")
    a.admit("ADD")
    with pytest.raises(Busy):
        a.admit("ADD")


def test_the_budget_of_the_own_cgroup_v1_and_v2(tmp_path: Path) -> None:
    v2 = tmp_path / "v2"
    FakeCgroup(v2 / "kubepods" / "pod1" / "c1", 2, limit_mib=100)
    (v2 / "cgroup.controllers").write_text("cpu memory pids\n")
    found = CgroupMemory.of_self("0::/kubepods/pod1/c1\n", v2)
    assert found is not None and found.directory == v2 / "kubepods/pod1/c1"
    budget = memory_budget(None, 3, found)
    assert budget is not None and (budget.limit, budget.request_cost) == (100 * MIB, 3 * MIB)
    assert memory_budget(60, 3, found).limit == 60 * MIB  # type: ignore[union-attr]
    assert memory_budget(500, 3, found).limit == 100 * MIB  # type: ignore[union-attr]
    assert memory_budget(0, 3, found) is None  # off

    v1 = tmp_path / "v1"
    FakeCgroup(v1 / "memory", 1, limit_mib=None)  # a container's own cgroup at the mount
    proc = "12:cpu,cpuacct:/kubepods/x\n11:memory:/kubepods/pod1/c1\n"
    found = CgroupMemory.of_self(proc, v1)
    assert found is not None and found.directory == v1 / "memory"
    assert memory_budget(None, 3, found) is None  # no limit: nothing to keep under
    assert memory_budget(80, 3, found).limit == 80 * MIB  # type: ignore[union-attr]
    assert CgroupMemory.of_self("0::/\n", tmp_path / "none") is None
