"""Cluster-wide resourceVersions, the change history, and the watches that replay it.

Like etcd behind kube-apiserver, every change of any object takes the next
resourceVersion and is appended to one log. Watches replay the log from the
resourceVersion they ask for. The log keeps a bounded window (``history``
changes); ``compact()`` drops it. A watch from before the window gets the 410
``Expired`` ERROR event the real server sends, in a 200 stream.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from .kubeapi_select import Selector
from .kubeapi_status import expired
from .kubeapi_types import ResourceType

JSON = dict[str, Any]


@dataclass(frozen=True)
class Change:
    rv: int
    rt: ResourceType
    type: str  # ADDED, MODIFIED, DELETED
    obj: JSON  # never mutated once logged
    prev: JSON | None


class ChangeLog:
    """Shares the store's lock (``cond``): a change and its log entry are one step."""

    def __init__(self, cond: threading.Condition, history: int) -> None:
        self.cond = cond
        self.rv = 0
        self.compacted = 0  # the log holds every change after this resourceVersion
        self._log: deque[Change] = deque()
        self._history = history
        self._closed = False
        self._epoch = 0  # bumped to end every open watch (the server went down)
        self._watchers = 0

    def append(self, rt: ResourceType, kind: str, obj: JSON, prev: JSON | None) -> None:
        """Stamp ``obj`` with the next resourceVersion and log the change; lock held."""
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self._log.append(Change(self.rv, rt, kind, obj, prev))
        while len(self._log) > self._history:
            self.compacted = self._log.popleft().rv
        self.cond.notify_all()

    def compact(self) -> None:
        with self.cond:
            self._log.clear()
            self.compacted = self.rv

    def close(self) -> None:
        with self.cond:
            self._closed = True
            self.cond.notify_all()

    def end_watches(self) -> None:
        with self.cond:
            self._epoch += 1
            self.cond.notify_all()

    @property
    def watchers(self) -> int:
        with self.cond:
            return self._watchers

    def wait_for_watchers(self, count: int, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: self._watchers >= count, timeout)

    @staticmethod
    def _bookmark(rt: ResourceType, rv: int, initial_end: bool = False) -> JSON:
        meta: JSON = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {
            "type": "BOOKMARK",
            "object": {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta},
        }

    @staticmethod
    def _event_for(change: Change, rt: ResourceType, sel: Selector) -> JSON | None:
        """The event one watcher sees; selectors turn updates into ADDED/DELETED."""
        if change.rt is not rt:
            return None
        now = change.type != "DELETED" and sel.matches(change.obj)
        before = change.prev is not None and sel.matches(change.prev)
        if now:
            return {"type": "MODIFIED" if before else "ADDED", "object": change.obj}
        if not before or change.prev is None:
            return None
        if change.type == "DELETED":  # already stamped with the deletion's resourceVersion
            return {"type": "DELETED", "object": change.obj}
        # Left the selection: its previous state, at this change's resourceVersion.
        gone = copy.deepcopy(change.prev)
        gone["metadata"]["resourceVersion"] = str(change.rv)
        return {"type": "DELETED", "object": gone}

    def _too_old(self, rv: int) -> JSON:
        body = expired(f"too old resource version: {rv} ({self.compacted})").status
        return {"type": "ERROR", "object": body}

    def watch(
        self,
        rt: ResourceType,
        sel: Selector,
        resource_version: str,
        *,
        timeout: float,
        bookmark_interval: float = 0.0,
        snapshot: Callable[[], list[JSON]],
        send_initial_events: bool = False,
    ) -> Generator[JSON, None, None]:
        """Events for one watch request, until ``timeout``, ``close()`` or ``end_watches()``.

        ``snapshot()`` (called with the lock held) lists the current matching objects.

        An empty or "0" resourceVersion (or ``send_initial_events``) starts with
        synthetic ADDED events for the current objects. ``bookmark_interval`` > 0
        means allowWatchBookmarks: a BOOKMARK at that period and one at the end.
        """
        deadline = time.monotonic() + timeout
        with self.cond:
            self._watchers += 1
            self.cond.notify_all()
        try:
            yield from self._watch(
                rt,
                sel,
                resource_version,
                deadline,
                bookmark_interval,
                snapshot,
                send_initial_events,
            )
        finally:
            with self.cond:
                self._watchers -= 1

    def _pending(self, pos: int) -> list[Change]:
        """Logged changes after ``pos``; lock held, ``pos`` within the window."""
        if not self._log or self._log[-1].rv <= pos:
            return []
        return list(itertools.islice(self._log, max(0, pos + 1 - self._log[0].rv), None))

    def _watch(
        self,
        rt: ResourceType,
        sel: Selector,
        resource_version: str,
        deadline: float,
        bookmark_interval: float,
        snapshot: Callable[[], list[JSON]],
        send_initial_events: bool,
    ) -> Generator[JSON, None, None]:
        # Never yield with the lock held: the consumer writes to a socket.
        with self.cond:
            epoch = self._epoch
            if send_initial_events or resource_version in ("", "0"):
                pos = self.rv
                initial = snapshot()
            else:
                pos, initial = int(resource_version), []
            too_old = self._too_old(pos) if pos < self.compacted else None
        if too_old is not None:
            yield too_old
            return
        for obj in initial:
            yield {"type": "ADDED", "object": obj}
        if send_initial_events:
            yield self._bookmark(rt, pos, initial_end=True)
        next_bookmark = time.monotonic() + bookmark_interval
        while True:
            with self.cond:
                while True:
                    if self._closed or self._epoch != epoch:
                        return
                    if pos < self.compacted:  # this watcher fell out of the window
                        too_old = self._too_old(pos)
                        break
                    pending = self._pending(pos)
                    now = time.monotonic()
                    wake = min(deadline, next_bookmark) if bookmark_interval else deadline
                    if pending or now >= wake:
                        break
                    self.cond.wait(wake - now)
                head = self.rv
            if too_old is not None:
                yield too_old
                return
            for change in pending:
                event = self._event_for(change, rt, sel)
                if event is not None:
                    yield event
            pos = head
            now = time.monotonic()
            if bookmark_interval and (now >= next_bookmark or now >= deadline):
                yield self._bookmark(rt, pos)
                next_bookmark = now + bookmark_interval
            if now >= deadline:
                return
