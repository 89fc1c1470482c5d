"""The daemon's work queue: deduplication, the per-key interval and back-off, one worker
per key, shutdown."""

from __future__ import annotations

import itertools
import threading
import time

from multinet.daemon.workqueue import WorkQueue


def take(q: WorkQueue[str]) -> str:
    key = q.get()
    assert key is not None
    q.done(key)
    return key


def test_a_key_added_twice_is_given_out_once() -> None:
    q: WorkQueue[str] = WorkQueue(0.05, 1.0)
    q.add("a")
    q.add("b")
    q.add("a")
    assert q.pending() == ["a", "b"] and len(q) == 2
    assert (take(q), take(q)) == ("a", "b")
    assert q.pending() == [] and q.when("a") is None


def test_the_earlier_of_two_times_wins() -> None:
    q: WorkQueue[str] = WorkQueue(0.0, 1.0)
    q.add_after("a", 10.0)
    q.add_after("b", 0.05)
    q.add_after("a", 0.0)  # sooner: moved up
    q.add_after("b", 10.0)  # later: stays
    started = time.monotonic()
    assert (take(q), take(q)) == ("a", "b")
    assert time.monotonic() - started < 5.0


def test_a_key_is_given_out_at_most_once_per_interval() -> None:
    q: WorkQueue[str] = WorkQueue(0.2, 1.0)
    taken: list[float] = []
    started = time.monotonic()
    while time.monotonic() < started + 1.0:
        q.add("p")  # flapping: added again and again
        q.add("p")
        assert take(q) == "p"
        taken.append(time.monotonic() - started)
    gaps = [b - a for a, b in itertools.pairwise(taken)]
    assert len(taken) <= 7 and all(g >= 0.19 for g in gaps), taken


def test_the_back_off_doubles_up_to_its_maximum_until_forgotten() -> None:
    q: WorkQueue[str] = WorkQueue(0.5, 3.0)
    assert [q.add_rate_limited("a") for _ in range(4)] == [1.0, 2.0, 3.0, 3.0]
    assert q.num_requeues("a") == 4 and q.num_requeues("b") == 0
    q.forget("a")
    assert q.num_requeues("a") == 0
    assert q.add_rate_limited("a") == 1.0


def test_a_rate_limited_key_waits_its_back_off() -> None:
    q: WorkQueue[str] = WorkQueue(0.05, 1.0)
    started = time.monotonic()
    q.add_rate_limited("a")  # 0.1 s
    q.add("b")
    assert take(q) == "b"
    assert take(q) == "a"
    assert time.monotonic() - started >= 0.1


def test_one_worker_per_key_and_a_key_added_while_processed_comes_again_after_done() -> None:
    q: WorkQueue[str] = WorkQueue(0.0, 1.0)
    q.add("a")
    assert q.get() == "a"  # worker 1 processes "a"
    q.add("a")  # changed meanwhile
    q.add("b")
    got: list[str | None] = []

    def worker() -> None:
        for _ in range(2):
            got.append(q.get())

    second = threading.Thread(target=worker, daemon=True)
    second.start()  # worker 2 takes "b", not the "a" worker 1 holds
    deadline = time.monotonic() + 5.0
    while not got and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    assert got == ["b"]
    q.done("a")  # worker 2 may take "a" now
    second.join(timeout=5.0)
    assert got == ["b", "a"]
    assert q.pending() == []


def test_many_workers_never_hold_one_key_at_once() -> None:
    q: WorkQueue[int] = WorkQueue(0.0, 1.0)
    holding: set[int] = set()
    overlaps: list[int] = []
    processed: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        while (key := q.get()) is not None:
            with lock:
                if key in holding:
                    overlaps.append(key)
                holding.add(key)
            time.sleep(0.001)
            with lock:
                holding.discard(key)
                processed.append(key)
            q.done(key)

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(4)]
    for w in workers:
        w.start()
    for i in range(400):
        q.add(i % 3)  # three keys, added while they are processed
        if i % 50 == 0:
            time.sleep(0.005)
    deadline = time.monotonic() + 5.0
    while len(q) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # the last ones given out are processed
    q.shut_down()
    for w in workers:
        w.join(timeout=5.0)
    assert overlaps == [] and len(q) == 0
    assert set(processed) == {0, 1, 2}


def test_shut_down_wakes_a_waiting_worker_and_gives_out_nothing_more() -> None:
    q: WorkQueue[str] = WorkQueue(0.0, 1.0)
    got: list[str | None] = []
    waiting = threading.Thread(target=lambda: got.append(q.get()), daemon=True)
    waiting.start()
    time.sleep(0.05)
    q.add_after("a", 60.0)
    q.shut_down()
    waiting.join(timeout=5.0)
    assert got == [None] and q.shutting_down()
    q.add("b")
    assert q.get() is None and "b" not in q.pending()
