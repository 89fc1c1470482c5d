"""Faults the fake kube-apiserver injects: per path and verb, N times or always.

What a client of a real cluster meets when something between it and etcd misbehaves:

- `Status(code)`: an error status with the Status body the real server sends for it
  (`kubeapi_status.for_code`: 401, 403 worded as the RBAC authorizer words it, 404, 409,
  429 with `Retry-After`, 500, 503, 504...);
- `Hang(seconds)`: the request is read and never answered (an API server stuck on etcd, a
  black-holed route): the connection is closed after `seconds`, long after a client's
  read timeout;
- `CutShort(reset)`: the real answer's head and half its body, then the connection ends:
  a FIN (`reset=False`: a proxy or the server dying mid-answer) or an RST (`reset=True`:
  a connection reset mid-body);
- `Truncated()`: a 200 whose body is the first half of the real one, with a
  Content-Length that matches it (a broken proxy: well framed, not JSON);
- `Body(status, body, content_type)`: any answer at all (an HTML error page from a
  load balancer, a 200 that is not JSON).

`Faults.add(fault, times, path_contains, method)` queues one; `times=None` is always
(until `clear()`). The first queued fault matching a request (method, and a substring of
its URL-decoded path and query) answers it, after authentication, as the real server
authenticates before anything else.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Status:
    code: int


@dataclass(frozen=True)
class Hang:
    seconds: float = 30.0


@dataclass(frozen=True)
class CutShort:
    reset: bool = False


@dataclass(frozen=True)
class Truncated:
    pass


@dataclass(frozen=True)
class Body:
    status: int
    body: bytes
    content_type: str = "application/json"


Fault = Status | Hang | CutShort | Truncated | Body


@dataclass
class _Queued:
    fault: Fault
    remaining: int | None  # None: always
    path_contains: str
    method: str


class Faults:
    """The queue of injected faults, shared by all connections."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queued: list[_Queued] = []
        self.released = threading.Event()  # set by clear(): hanging requests end

    def add(self, fault: Fault, times: int | None, path_contains: str, method: str) -> None:
        if times is not None and times < 1:
            raise ValueError("times: at least 1, or None for always")
        with self._lock:
            self._queued.append(_Queued(fault, times, path_contains, method.upper()))
            self.released.clear()

    def clear(self) -> None:
        with self._lock:
            self._queued.clear()
        self.released.set()

    def take(self, method: str, path: str) -> Fault | None:
        """The first fault matching this request, one of its uses consumed."""
        with self._lock:
            for queued in self._queued:
                if queued.method in ("", method) and queued.path_contains in path:
                    if queued.remaining is not None:
                        queued.remaining -= 1
                        if queued.remaining == 0:
                            self._queued.remove(queued)
                    return queued.fault
        return None
