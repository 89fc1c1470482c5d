"""A GC pass waits for the CNI requests to pause (daemon.gc.wait_quiet), with the real
admission lanes: not while a request executes or waits, once they have been idle long
enough, and anyway once its limit has passed."""

from __future__ import annotations

import threading
import time

from multinet.daemon.admission import Admission
from multinet.daemon.gc import wait_quiet


def _waiting(
    admission: Admission, quiet: float, limit: float
) -> tuple[threading.Thread, list[bool]]:
    out: list[bool] = []
    stopping = threading.Event()
    t = threading.Thread(target=lambda: out.append(wait_quiet(admission, quiet, limit, stopping)))
    t.start()
    return t, out


def test_idle_lanes_let_the_pass_start_after_the_quiet_period() -> None:
    admission = Admission(2, 4, 10)
    started = time.monotonic()
    assert wait_quiet(admission, 0.3, 60, threading.Event())
    assert time.monotonic() - started >= 0.3


def test_a_request_executing_holds_the_pass_back_until_it_is_done() -> None:
    admission = Admission(2, 4, 10)
    admitted = admission.admit("DEL")  # the other lane counts as much as the ADDs'
    t, out = _waiting(admission, 0.2, 60)
    time.sleep(0.8)
    assert t.is_alive() and out == []
    admission.release(admitted.lane)
    t.join(5)
    assert out == [True]


def test_a_request_waiting_holds_the_pass_back() -> None:
    admission = Admission(1, 4, 10)
    first = admission.admit("ADD")
    admitted: list[str] = []
    waiter = threading.Thread(target=lambda: admitted.append(admission.admit("ADD").lane))
    waiter.start()
    while admission.queued("add") == 0:
        time.sleep(0.01)
    t, out = _waiting(admission, 0.2, 60)
    time.sleep(0.6)
    assert out == []
    admission.release(first.lane)  # the waiter is let in: it executes now
    waiter.join(5)
    time.sleep(0.6)
    assert out == [] and admitted == ["add"]
    admission.release("add")
    t.join(5)
    assert out == [True]


def test_a_node_never_idle_is_collected_anyway_after_the_limit() -> None:
    admission = Admission(2, 4, 10)
    admitted = admission.admit("ADD")
    started = time.monotonic()
    assert wait_quiet(admission, 0.2, 0.6, threading.Event())
    assert time.monotonic() - started >= 0.6
    admission.release(admitted.lane)


def test_stopping_ends_the_wait_without_a_pass() -> None:
    admission = Admission(2, 4, 10)
    admitted = admission.admit("ADD")
    stopping = threading.Event()
    out: list[bool] = []
    t = threading.Thread(target=lambda: out.append(wait_quiet(admission, 0.2, 60, stopping)))
    t.start()
    stopping.set()
    t.join(5)
    assert out == [False]
    admission.release(admitted.lane)
