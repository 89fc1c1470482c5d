"""A rate-limited work queue of keys, with the shape of client-go's workqueue.

Workers `get` a key, process it and call `done`; a key is processed by one worker at a
time, and a key added while it is processed is given out again after its `done`. A key
queued twice waits once (the earlier time wins). Two limits, both per key: a key is
given out at most once per `interval` seconds however often it is added, and
`add_rate_limited` delays a key that failed by `interval` doubled per failure, up to
`max_backoff`, until it is `forget`-ten. `shut_down` makes `get` return None at once.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(self, interval: float, max_backoff: float) -> None:
        self.interval = interval
        self.max_backoff = max_backoff
        self._due: dict[K, float] = {}  # key -> when to give it out (queued keys only)
        self._heap: list[tuple[float, int, K]] = []  # (due, order, key); stale ones skipped
        self._order = itertools.count()  # keys need not be comparable
        self._processing: set[K] = set()
        self._last: dict[K, float] = {}  # key -> when it was last given out
        self._given: deque[tuple[float, K]] = deque()  # `_last` in time order, to expire it
        self._failures: dict[K, int] = {}
        self._shutting_down = False
        # Guards all of the above: adders and workers run on different threads.
        self._cond = threading.Condition()

    def add(self, key: K) -> None:
        self.add_after(key, 0.0)

    def add_after(self, key: K, delay: float) -> None:
        """Queue the key in `delay` seconds (or when its interval allows, if later)."""
        with self._cond:
            if self._shutting_down:
                return
            now = time.monotonic()
            due = max(now + delay, self._last.get(key, -self.interval) + self.interval)
            if key in self._due and self._due[key] <= due:
                return  # already queued, as early or earlier
            self._due[key] = due
            if key not in self._processing:  # else `done` queues it
                heapq.heappush(self._heap, (due, next(self._order), key))
                self._cond.notify_all()

    def add_rate_limited(self, key: K) -> float:
        """The key failed: queue it after its back-off, which doubles with each failure
        until `forget`. Returns the delay."""
        with self._cond:
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
        delay = min(self.interval * 2.0 ** min(failures, 16), self.max_backoff)
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        """The key succeeded (or is gone): its back-off starts again from the interval."""
        with self._cond:
            self._failures.pop(key, None)

    def num_requeues(self, key: K) -> int:
        """The key's failures since it was last forgotten."""
        with self._cond:
            return self._failures.get(key, 0)

    def get(self) -> K | None:
        """The next due key, waiting for it; None once the queue is shut down. The caller
        must call `done(key)` when it has processed it."""
        with self._cond:
            while not self._shutting_down:
                while self._heap and not self._live(self._heap[0]):
                    heapq.heappop(self._heap)  # superseded, or its key is being processed
                if not self._heap:
                    self._cond.wait()
                    continue
                due, _, key = self._heap[0]
                now = time.monotonic()
                if due > now:
                    self._cond.wait(due - now)
                    continue
                heapq.heappop(self._heap)
                del self._due[key]
                self._processing.add(key)
                self._expire(now)
                self._last[key] = now
                self._given.append((now, key))
                return key
            return None

    def done(self, key: K) -> None:
        """The key is processed: if it was added meanwhile, it is queued again."""
        with self._cond:
            self._processing.discard(key)
            if key in self._due:
                heapq.heappush(self._heap, (self._due[key], next(self._order), key))
                self._cond.notify_all()

    def shut_down(self) -> None:
        """No key is given out any more; the ones being processed may finish."""
        with self._cond:
            self._shutting_down = True
            self._cond.notify_all()

    def shutting_down(self) -> bool:
        with self._cond:
            return self._shutting_down

    def pending(self) -> list[K]:
        """The queued keys (being processed or not), the earliest due first."""
        with self._cond:
            return sorted(self._due, key=self._due.__getitem__)

    def when(self, key: K) -> float | None:
        """When the key is due (time.monotonic()), or None if it is not queued."""
        with self._cond:
            return self._due.get(key)

    def __len__(self) -> int:
        with self._cond:
            return len(self._due)

    def _live(self, entry: tuple[float, int, K]) -> bool:
        due, _, key = entry
        return key not in self._processing and self._due.get(key) == due

    def _expire(self, now: float) -> None:
        """Forget when keys were last given out once it no longer limits them, so a queue
        of many short-lived keys (deleted pods) does not grow."""
        while self._given and self._given[0][0] + self.interval <= now:
            given, key = self._given.popleft()
            if self._last.get(key) == given:
                del self._last[key]
