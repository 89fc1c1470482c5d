"""The host's GC gate: what may allocate holds it shared (between processes and threads),
a CNI GC holds it alone; DEL never waits for it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from multinet.cni.errors import IOFailure
from multinet.engine.engine import Engine
from multinet.engine.gate import HostGate
from multinet.engine.releases import FileReleaseStore
from multinet.meta.wiring import engine_for
from tests.unit.engine.fakes import FakeExecutor, FakeNetns, FakeStore, World
from tests.unit.engine.test_engine import NETNS, conf, request


def test_an_add_waits_for_a_gc_and_a_gc_for_the_adds(tmp_path: Path) -> None:
    gate = HostGate(str(tmp_path / "cni"))
    entered = threading.Event()

    def add() -> None:
        with gate.shared():
            entered.set()

    with gate.exclusive(timeout=1) as held:
        assert held
        t = threading.Thread(target=add)
        t.start()
        assert not entered.wait(0.3)  # the ADD waits while the GC runs
    assert entered.wait(5)
    t.join()

    with gate.shared(), gate.exclusive(timeout=0.2) as held:
        assert not held  # an ADD in flight: the GC gives up after its timeout
    with gate.exclusive(timeout=0.2) as held:
        assert held


def test_shared_holders_do_not_wait_for_each_other(tmp_path: Path) -> None:
    gate = HostGate(str(tmp_path))
    with gate.shared(), gate.shared():
        pass


def test_nothing_is_created_where_no_journal_can_be(tmp_path: Path) -> None:
    with HostGate(str(tmp_path / "none")).shared(create=False):
        pass
    assert not (tmp_path / "none").exists()


def test_a_cni_dir_that_cannot_be_made_is_an_io_failure_naming_the_journal(
    tmp_path: Path,
) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(IOFailure) as e, HostGate(str(tmp_path / "file" / "cni")).shared():
        pass
    assert "journal" in e.value.msg and str(tmp_path / "file" / "cni") in e.value.msg


class RecordingGate:
    def __init__(self) -> None:
        self.held: list[bool] = []

    @contextlib.contextmanager
    def shared(self, create: bool = True) -> Iterator[None]:
        self.held.append(create)
        yield


@pytest.mark.parametrize(("command", "held"), [("ADD", [True]), ("CHECK", [False]), ("DEL", [])])
def test_the_engine_holds_the_gate_for_all_but_del(command: str, held: list[bool]) -> None:
    world = World(pods={NETNS: set()})
    store = FakeStore(world)
    gate = RecordingGate()
    engine = Engine(
        conf(),
        store=store,
        pod_netns=FakeNetns(world),
        executor=FakeExecutor(world, store),
        gate=gate,
    )
    create, lenient = {"ADD": (True, False), "CHECK": (False, False), "DEL": (False, True)}[command]
    with engine.sandbox(request(command), create=create, lenient=lenient):
        pass
    assert gate.held == held


def test_thin_mode_and_the_daemon_build_the_engine_with_the_gate_in_cni_dir(
    tmp_path: Path,
) -> None:
    engine = engine_for(conf(cniDir=str(tmp_path)))
    assert isinstance(engine.gate, HostGate) and engine.gate.path == str(tmp_path / "gc.lock")
    assert isinstance(engine.releases, FileReleaseStore)
    assert engine.releases.dir == str(tmp_path / "releases")
