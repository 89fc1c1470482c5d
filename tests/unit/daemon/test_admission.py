"""The admission lanes: a limit, a FIFO queue with a deadline, DEL never behind ADD."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from multinet.cni.errors import TRY_AGAIN_LATER
from multinet.daemon.admission import ADD, OTHER, Admission, Busy, Withdrawals, lane_of


def wait_until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.001)


def background(target: Callable[[], None]) -> threading.Thread:
    t = threading.Thread(target=target, daemon=True)
    t.start()
    return t


def test_lanes_of_the_commands() -> None:
    assert lane_of("ADD") == ADD
    assert {lane_of(c) for c in ("DEL", "CHECK", "STATUS", "GC", "VERSION", "")} == {OTHER}


def test_within_the_limit_a_request_does_not_wait() -> None:
    a = Admission(limit=2, depth=4, timeout=5)
    first, second = a.admit("ADD"), a.admit("ADD")
    assert (first.lane, first.waited, second.waited) == (ADD, 0.0, 0.0)
    assert (a.executing(ADD), a.queued(ADD)) == (2, 0)
    a.release(ADD)
    a.release(ADD)
    assert a.executing(ADD) == 0


def test_waiting_requests_are_admitted_in_arrival_order() -> None:
    a = Admission(limit=1, depth=20, timeout=10)
    a.admit("ADD")
    order: list[int] = []

    def request(i: int) -> None:
        with a.slot("ADD"):
            order.append(i)

    threads = []
    for i in range(20):
        threads.append(background(lambda i=i: request(i)))  # type: ignore[misc]
        wait_until(lambda i=i: a.queued(ADD) == i + 1)  # type: ignore[misc]
    assert order == [] and a.full(ADD)
    a.release(ADD)
    for t in threads:
        t.join(5)
    assert order == list(range(20))
    assert (a.executing(ADD), a.queued(ADD)) == (0, 0)


def test_other_commands_never_wait_behind_adds() -> None:
    a = Admission(limit=1, depth=1, timeout=10)
    a.admit("ADD")
    queued = background(lambda: a.release(a.admit("ADD").lane))
    wait_until(lambda: a.queued(ADD) == 1)
    with pytest.raises(Busy):
        a.admit("ADD")  # the ADD lane is full
    for command in ("DEL", "CHECK", "STATUS", "GC", "VERSION"):
        with a.slot(command) as admitted:
            assert (admitted.lane, admitted.waited) == (OTHER, 0.0)
    assert (a.executing(ADD), a.queued(ADD)) == (1, 1)
    a.release(ADD)
    queued.join(5)
    assert (a.executing(ADD), a.queued(ADD), a.executing(OTHER)) == (0, 0, 0)


def test_the_other_lane_has_its_own_bound() -> None:
    a = Admission(limit=1, depth=0, timeout=10)
    a.admit("DEL")
    with pytest.raises(Busy) as e:
        a.admit("CHECK")
    assert (e.value.lane, e.value.reason) == (OTHER, "full")
    with a.slot("ADD"):
        pass
    a.release(OTHER)


def test_a_full_queue_refuses_at_once_with_code_11() -> None:
    a = Admission(limit=1, depth=0, timeout=10)
    a.admit("ADD")
    assert a.full(ADD) and not a.full(OTHER)
    started = time.monotonic()
    with pytest.raises(Busy) as e:
        a.admit("ADD")
    assert time.monotonic() - started < 1
    assert (e.value.code, e.value.reason, e.value.waited) == (TRY_AGAIN_LATER, "full", 0.0)
    assert "busy" in e.value.msg and "1 requests ahead" in e.value.msg
    a.release(ADD)
    assert not a.full(ADD)


def test_a_waiting_request_gives_up_at_its_deadline() -> None:
    a = Admission(limit=2, depth=5, timeout=0.3)
    a.admit("ADD")
    a.admit("ADD")
    started = time.monotonic()
    with pytest.raises(Busy) as e:
        a.admit("ADD")
    assert time.monotonic() - started >= 0.3
    assert (e.value.code, e.value.reason, e.value.lane) == (TRY_AGAIN_LATER, "deadline", ADD)
    assert e.value.waited >= 0.3
    assert "the ADD was not started (2 requests ahead, waited 0.3 s)" in e.value.msg
    assert (a.executing(ADD), a.queued(ADD)) == (2, 0)  # it left the queue
    a.release(ADD)
    a.release(ADD)
    assert a.executing(ADD) == 0


def test_close_refuses_the_waiting_and_the_new_the_executing_finish() -> None:
    a = Admission(limit=1, depth=5, timeout=30)
    a.admit("ADD")
    refused: list[str] = []

    def request() -> None:
        try:
            a.admit("ADD")
        except Busy as e:
            refused.append(e.reason)

    waiting = [background(request) for _ in range(3)]
    wait_until(lambda: a.queued(ADD) == 3)
    a.close()
    for t in waiting:
        t.join(5)
    assert refused == ["closed"] * 3
    with pytest.raises(Busy, match="shutting down"):
        a.admit("DEL")
    a.release(ADD)
    assert (a.executing(ADD), a.queued(ADD)) == (0, 0)


def test_never_more_than_the_limit_execute_under_contention() -> None:
    a = Admission(limit=3, depth=100, timeout=30)
    lock = threading.Lock()
    now, peak = [0], [0]

    def request() -> None:
        with a.slot("ADD"):
            with lock:
                now[0] += 1
                peak[0] = max(peak[0], now[0])
            time.sleep(0.002)
            with lock:
                now[0] -= 1

    threads = [background(request) for _ in range(60)]
    for t in threads:
        t.join(10)
    assert peak[0] == 3
    assert (a.executing(ADD), a.queued(ADD)) == (0, 0)


def test_deadlines_racing_hand_offs_leave_the_counts_right() -> None:
    """Waiters time out while slots are handed to them: each is admitted or refused,
    never both, and the lane ends empty."""
    a = Admission(limit=2, depth=1000, timeout=0.002)
    admitted, refused = [0], [0]
    lock = threading.Lock()

    def request() -> None:
        try:
            with a.slot("ADD"):
                time.sleep(0.001)
            outcome = admitted
        except Busy:
            outcome = refused
        with lock:
            outcome[0] += 1

    threads = [background(request) for _ in range(300)]
    for t in threads:
        t.join(10)
    assert admitted[0] + refused[0] == 300
    assert admitted[0] >= 2
    assert (a.executing(ADD), a.queued(ADD)) == (0, 0)


def test_bad_limits_are_a_programming_error() -> None:
    for limit, depth, timeout in ((0, 1, 1.0), (1, -1, 1.0), (1, 1, 0.0)):
        with pytest.raises(ValueError):
            Admission(limit, depth, timeout)


def test_withdrawals_know_a_del_after_the_add_arrived_and_forget_old_ones() -> None:
    w = Withdrawals(horizon=0.2)
    arrived = time.monotonic()
    assert not w.since("c1", arrived)
    w.deleted("c1")
    assert w.since("c1", arrived)  # its DEL came after the ADD arrived
    assert not w.since("c1", time.monotonic())  # an ADD that came after the DEL runs
    time.sleep(0.25)
    w.deleted("c2")  # a DEL prunes what no waiting ADD can predate
    assert not w.since("c1", arrived) and w.since("c2", arrived)


def test_closing_the_add_lane_leaves_the_other_serving() -> None:
    a = Admission(limit=1, depth=4, timeout=5)
    a.admit("DEL")  # executing
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(a.admit, "DEL")
        while a.queued(OTHER) != 1:
            time.sleep(0.01)
        a.close((ADD,))
        with pytest.raises(Busy, match="shutting down"):
            a.admit("ADD")
        a.release(OTHER)  # the executing DEL finishes: the waiting one gets its slot
        assert waiting.result(timeout=5).lane == OTHER
