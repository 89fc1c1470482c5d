"""Bounded work: how many CNI requests execute at once, and a queue for the rest.

Two lanes, each with its own limit and its own queue, so that a burst of ADDs (a node
that reboots starts every pod at once) never holds up the DELs that free memory: ADD
(the runtime's, and /delegate's) in one, every other command in the other. In each lane
at most its limit of requests execute; the next `depth` wait in arrival order; a request
that would be one more is refused at once, and one that waits longer than `timeout`
seconds gives up. Either refusal is `Busy` (CNI code 11, "try again later") and is
raised before the request has done anything, so the runtime's retry starts clean.

With a memory budget (`MemoryBudget`: the daemon's cgroup, whose limit covers the
delegates it runs and the interfaces they create), a request also waits until the
cgroup's headroom covers it: limit - working set >= cost x (requests executing + 1),
every executing request counted as if still to reach its peak. A lane with nothing
executing always starts its first waiter, so both lanes progress whatever the memory.

A waiter is handed its slot directly by the request that finishes (no thundering
herd, no overtaking). The head of a lane held back by memory alone polls the cgroup
(`poll` seconds), since memory is freed by more than the requests' ends.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

from multinet.cni.errors import TryAgainLater
from multinet.daemon.memcg import CgroupMemory

ADD = "add"
OTHER = "other"  # DEL, CHECK, STATUS, GC, VERSION
LANES = (ADD, OTHER)
FULL = "full"
DEADLINE = "deadline"
CLOSED = "closed"
WITHDRAWN = "withdrawn"  # an ADD whose client left, or whose DEL came, while it waited
POLL_S = 0.05  # how often the head of a lane held back by memory re-reads the cgroup
MIB = 2**20


def lane_of(command: str) -> str:
    return ADD if command == "ADD" else OTHER


class Busy(TryAgainLater):
    """Refused before it started: the lane's queue was full, its deadline passed, or
    the daemon is shutting down (`reason`)."""

    def __init__(self, msg: str, lane: str, reason: str, waited: float) -> None:
        super().__init__(msg)
        self.lane = lane
        self.reason = reason
        self.waited = waited


class MemoryLoad(NamedTuple):
    """The memory budget now (bytes), for the metrics."""

    limit: int
    working_set: int
    headroom: int
    request_cost: int
    deferred: dict[str, int]  # by lane: requests that waited for memory, not for a slot


class MemoryBudget:
    """The cgroup the daemon and its delegates are charged to, the limit to keep under
    (its own, or a smaller one configured) and what one request is expected to add at
    its peak (its delegates, one at a time, and the daemon's own share)."""

    def __init__(self, cgroup: CgroupMemory, limit: int, request_cost: int) -> None:
        if limit <= 0 or request_cost <= 0:
            raise ValueError(f"memory budget limit={limit} request_cost={request_cost}")
        self.cgroup = cgroup
        self.limit = limit
        self.request_cost = request_cost

    def headroom(self) -> int:
        """Bytes left under the limit; the whole limit when the cgroup cannot be read
        (gone: nothing to protect)."""
        try:
            return self.limit - self.cgroup.working_set()
        except (OSError, ValueError):
            return self.limit

    def fits(self, executing: int) -> bool:
        """Whether one more request may start beside `executing` ones."""
        return self.headroom() >= self.request_cost * (executing + 1)


def memory_budget(
    budget_mib: float | None, cost_mib: float, cgroup: CgroupMemory | None = None
) -> MemoryBudget | None:
    """The budget of the daemon's own cgroup (`cgroup`: found from /proc/self/cgroup):
    its limit, or `budget_mib` when that is lower; None when off (`budget_mib` 0) or
    when there is nothing to keep under (no memory cgroup, no limit and none given)."""
    if budget_mib == 0:
        return None
    cgroup = cgroup if cgroup is not None else CgroupMemory.of_self()
    if cgroup is None:
        return None
    try:
        limit = cgroup.limit()
    except (OSError, ValueError):
        return None
    if budget_mib is not None:
        limit = min(int(budget_mib * MIB), limit if limit is not None else int(budget_mib * MIB))
    if limit is None:
        return None
    return MemoryBudget(cgroup, limit, max(1, int(cost_mib * MIB)))


@dataclass(eq=False)
class _Waiter:
    granted: bool = False
    polling: bool = False  # the lane's head, held back by memory: re-reads it
    event: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Lane:
    limit: int
    executing: int = 0
    waiting: deque[_Waiter] = field(default_factory=deque)
    deferred: int = 0  # requests that waited with a slot free: for memory


@dataclass(frozen=True)
class Admitted:
    """A request let in: its lane and how long it waited (seconds)."""

    lane: str
    waited: float


class Admission:
    def __init__(
        self,
        limit: int,
        depth: int,
        timeout: float,
        *,
        other_limit: int | None = None,
        memory: MemoryBudget | None = None,
        poll: float = POLL_S,
    ) -> None:
        """`limit` requests of the ADD lane at once, `other_limit` of the other (default:
        `limit`); `memory`: start a request only when it fits in the budget."""
        other = limit if other_limit is None else other_limit
        if min(limit, other) < 1 or depth < 0 or timeout <= 0 or poll <= 0:
            raise ValueError(
                f"admission limit={limit} other_limit={other} depth={depth} timeout={timeout}"
            )
        self.depth = depth
        self.timeout = timeout
        self.memory = memory
        self._poll = poll
        self._lanes = {ADD: _Lane(limit), OTHER: _Lane(other)}
        self._closed: set[str] = set()
        self._lock = threading.Lock()  # guards the lanes and _closed

    def limit(self, name: str) -> int:
        return self._lanes[name].limit

    @contextmanager
    def slot(self, command: str) -> Iterator[Admitted]:
        """Execute within the limit of the command's lane: waits for a slot, or raises
        Busy. The slot is given to the next waiter when the block ends."""
        admitted = self.admit(command)
        try:
            yield admitted
        finally:
            self.release(admitted.lane)

    def admit(self, command: str) -> Admitted:
        """A slot in the command's lane (release it with `release`), or Busy."""
        name = lane_of(command)
        started = time.monotonic()
        with self._lock:
            lane = self._lanes[name]
            if name in self._closed:
                raise self._busy(name, CLOSED, 0.0, "the daemon is shutting down")
            if not lane.waiting and self._may_start(lane):
                lane.executing += 1
                return Admitted(name, 0.0)
            if len(lane.waiting) >= self.depth:
                raise self._busy(
                    name,
                    FULL,
                    0.0,
                    f"{lane.executing + len(lane.waiting)} requests ahead, the queue "
                    f"({self.depth}) is full",
                )
            waiter = _Waiter()
            lane.waiting.append(waiter)
            if lane.executing < lane.limit and len(lane.waiting) == 1:
                lane.deferred += 1  # a slot is free: it waits for memory
                waiter.polling = True
        deadline = started + self.timeout
        while (remaining := deadline - time.monotonic()) > 0:
            waiter.event.wait(min(remaining, self._poll) if waiter.polling else remaining)
            with self._lock:
                if waiter.granted or name in self._closed:
                    break
                waiter.event.clear()
                if waiter.polling:
                    self._dispatch(name)  # the memory may have been freed meanwhile
                    if waiter.granted:
                        break
        waited = time.monotonic() - started
        with self._lock:
            if waiter.granted:
                return Admitted(name, waited)
            ahead = lane.executing + lane.waiting.index(waiter)
            lane.waiting.remove(waiter)
            if name in self._closed:
                raise self._busy(name, CLOSED, waited, "the daemon is shutting down")
            why = f"{ahead} requests ahead, waited {waited:.1f} s"
            if waiter.polling and self.memory is not None:
                headroom = self.memory.headroom() / MIB
                why += f"; memory headroom {headroom:.1f} MiB"
            self._dispatch(name)  # a new head may start, or must poll the memory
        raise self._busy(name, DEADLINE, waited, why)

    def release(self, name: str) -> None:
        """The request of this lane finished: its slot, and the memory it freed, go to
        the first waiters of its lane, then of the other."""
        with self._lock:
            self._lanes[name].executing -= 1
            self._dispatch(name)
            for other in LANES:
                if other != name:
                    self._dispatch(other)

    def _executing(self) -> int:
        return sum(lane.executing for lane in self._lanes.values())

    def _may_start(self, lane: _Lane) -> bool:
        """Under the lock: a slot is free and, past the lane's first request, the memory
        covers one more."""
        if lane.executing >= lane.limit:
            return False
        return lane.executing == 0 or self.memory is None or self.memory.fits(self._executing())

    def _dispatch(self, name: str) -> None:
        """Under the lock: start the lane's first waiters while they may; a head held
        back by memory alone is told to poll it."""
        lane = self._lanes[name]
        if name in self._closed:
            return
        while lane.waiting:
            head = lane.waiting[0]
            if lane.executing >= lane.limit:
                return
            if not self._may_start(lane):
                if not head.polling:
                    head.polling = True
                    lane.deferred += 1
                    head.event.set()
                return
            lane.waiting.popleft()
            lane.executing += 1
            head.granted = True
            head.event.set()

    def close(self, names: tuple[str, ...] = LANES) -> None:
        """Refuse every waiting request of these lanes and any new one (shutdown): the
        requests that execute finish."""
        with self._lock:
            self._closed.update(names)
            for name in names:
                for waiter in self._lanes[name].waiting:
                    waiter.event.set()

    def withdrawn(self, lane: str, waited: float, why: str) -> Busy:
        """The refusal of a request let in but no longer wanted (`why`)."""
        return self._busy(lane, WITHDRAWN, waited, why)

    def executing(self, name: str) -> int:
        with self._lock:
            return self._lanes[name].executing

    def queued(self, name: str) -> int:
        with self._lock:
            return len(self._lanes[name].waiting)

    def full(self, name: str) -> bool:
        """No room in the lane's queue: its next request would be refused at once."""
        with self._lock:
            lane = self._lanes[name]
            return lane.executing >= lane.limit and len(lane.waiting) >= self.depth

    def memory_load(self) -> MemoryLoad | None:
        """The budget's figures now; None without a budget."""
        if self.memory is None:
            return None
        headroom = self.memory.headroom()
        with self._lock:
            deferred = {name: lane.deferred for name, lane in self._lanes.items()}
        return MemoryLoad(
            self.memory.limit,
            self.memory.limit - headroom,
            headroom,
            self.memory.request_cost,
            deferred,
        )

    def _busy(self, name: str, reason: str, waited: float, why: str) -> Busy:
        what = "ADD" if name == ADD else "request"
        return Busy(
            f"multinetd is busy, try again later: the {what} was not started ({why})",
            name,
            reason,
            waited,
        )


class Withdrawals:
    """The containers whose DEL arrived, remembered `horizon` seconds (the longest an
    ADD can wait): an ADD that waited while its DEL came (the kubelet gave up on it and
    tore the sandbox down) must not run after that DEL and leave its interfaces behind."""

    def __init__(self, horizon: float) -> None:
        self.horizon = horizon
        self._deleted: dict[str, float] = {}  # container ID -> when its DEL arrived
        self._lock = threading.Lock()

    def deleted(self, container_id: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._deleted.pop(container_id, None)  # re-inserted last: oldest stay first
            self._deleted[container_id] = now
            while self._deleted:  # forget what no waiting ADD can predate
                oldest, at = next(iter(self._deleted.items()))
                if now - at <= self.horizon:
                    break
                del self._deleted[oldest]

    def since(self, container_id: str, arrived: float) -> bool:
        """Whether the container's DEL came after `arrived` (time.monotonic())."""
        with self._lock:
            return self._deleted.get(container_id, -1.0) >= arrived
