"""Bounded work: how many CNI requests execute at once, and a queue for the rest.

Two lanes, each with its own limit and its own queue, so that a burst of ADDs (a node
that reboots starts every pod at once) never holds up the DELs that free memory: ADD
(the runtime's, and /delegate's) in one, every other command in the other. In each lane
at most `limit` requests execute; the next `depth` wait in arrival order; a request
that would be one more is refused at once, and one that waits longer than `timeout`
seconds gives up. Either refusal is `Busy` (CNI code 11, "try again later") and is
raised before the request has done anything, so the runtime's retry starts clean.

A waiter is handed its slot directly by the request that finishes (no thundering
herd, no overtaking): the executing count of a lane never drops while it has waiters.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from multinet.cni.errors import TryAgainLater

ADD = "add"
OTHER = "other"  # DEL, CHECK, STATUS, GC, VERSION
LANES = (ADD, OTHER)
FULL = "full"
DEADLINE = "deadline"
CLOSED = "closed"
WITHDRAWN = "withdrawn"  # an ADD whose client left, or whose DEL came, while it waited


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


@dataclass(eq=False)
class _Waiter:
    granted: bool = False
    event: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Lane:
    executing: int = 0
    waiting: deque[_Waiter] = field(default_factory=deque)


@dataclass(frozen=True)
class Admitted:
    """A request let in: its lane and how long it waited (seconds)."""

    lane: str
    waited: float


class Admission:
    def __init__(self, limit: int, depth: int, timeout: float) -> None:
        if limit < 1 or depth < 0 or timeout <= 0:
            raise ValueError(f"admission limit={limit} depth={depth} timeout={timeout}")
        self.limit = limit
        self.depth = depth
        self.timeout = timeout
        self._lanes = {lane: _Lane() for lane in LANES}
        self._closed: set[str] = set()
        self._lock = threading.Lock()  # guards the lanes and _closed

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
            if lane.executing < self.limit and not lane.waiting:
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
        waiter.event.wait(self.timeout)
        waited = time.monotonic() - started
        with self._lock:
            if waiter.granted:
                return Admitted(name, waited)
            ahead = lane.executing + lane.waiting.index(waiter)
            lane.waiting.remove(waiter)
            if name in self._closed:
                raise self._busy(name, CLOSED, waited, "the daemon is shutting down")
        raise self._busy(name, DEADLINE, waited, f"{ahead} requests ahead, waited {waited:.1f} s")

    def release(self, name: str) -> None:
        """The request of this lane finished: its slot goes to the first waiter."""
        with self._lock:
            lane = self._lanes[name]
            if lane.waiting and name not in self._closed:
                waiter = lane.waiting.popleft()
                waiter.granted = True  # the slot passes on: executing stays
                waiter.event.set()
            else:
                lane.executing -= 1

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
            return lane.executing >= self.limit and len(lane.waiting) >= self.depth

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
