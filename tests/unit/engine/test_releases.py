"""The releases a DEL skipped: recorded on disk with all their DEL needs, run again as the
sandbox's DEL ran them (the cached result, the same interface and CNI_ARGS) until the
delegate succeeds, and never in the way of the DEL that skipped them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from multinet.cni import errors
from multinet.engine.engine import Engine
from multinet.engine.journal import Entry, Journal
from multinet.engine.releases import FileReleaseStore
from multinet.meta.verbs import Verbs
from tests.unit.engine.fakes import FakeExecutor, FakeNetns, FakeStore, World
from tests.unit.engine.test_engine import NETNS, conf, request


def _host(releases: FileReleaseStore) -> tuple[World, FakeExecutor, Engine, Verbs]:
    world = World(pods={NETNS: set()})
    store = FakeStore(world)
    executor = FakeExecutor(world, store)
    engine = Engine(
        conf(), store=store, pod_netns=FakeNetns(world), executor=executor, releases=releases
    )
    return world, executor, engine, Verbs(engine)


def test_a_skipped_release_is_recorded_and_retried_until_its_delegate_succeeds(
    tmp_path: Path,
) -> None:
    releases = FileReleaseStore(str(tmp_path))
    world, executor, engine, verbs = _host(releases)
    verbs.add(request("ADD"))
    added = Journal.from_dict(json.loads(world.journals[("c1", "eth0")]))
    executor.fail[("DEL", "b")] = errors.TryAgainLater("dhcp daemon: connection refused")
    verbs.delete(request("DEL"))
    assert world.journals == {}  # the DEL went on

    [rec] = releases.pending()
    assert (rec.journal.container_id, rec.journal.ifname) == ("c1", "eth0")
    assert (rec.entry.name, rec.entry.ifname) == ("b", "net2")
    assert rec.entry.result == added.entries[2].result  # the cached result, for its DEL
    assert rec.journal.netconf == added.netconf and rec.attempts == 1  # binDir...
    assert "connection refused" in rec.error

    # Its pod is gone now: the retry's DEL gets no netns, and the same cached result.
    del world.pods[NETNS]
    executor.calls.clear()
    [(entry, error)] = engine.retry_release(rec.journal)
    assert entry.name == "b" and "connection refused" in error.msg
    del executor.fail[("DEL", "b")]
    assert engine.retry_release(rec.journal) == []
    dels = [c for c in executor.calls if c.command == "DEL"]
    assert [(c.network, c.ifname) for c in dels] == [("b", "net2"), ("b", "net2")]
    assert all(c.prev_result == added.entries[2].result for c in dels)

    releases.drop(rec)
    assert releases.pending() == []
    assert list((tmp_path / "releases").iterdir()) == []


def test_records_are_kept_oldest_first_with_their_attempts(tmp_path: Path) -> None:
    releases = FileReleaseStore(str(tmp_path))
    journal = Journal("c1", "eth0", netns=NETNS, entries=[])
    for name in ("x", "y"):
        entry = Entry(name, f"net-{name}", {"cniVersion": "1.0.0", "name": name, "type": "t"})
        journal.entries.append(entry)
        releases.record(journal, entry, errors.IOFailure(f"{name} failed"))
    assert releases.count() == 2
    first, second = releases.pending()
    assert [first.entry.name, second.entry.name] == ["x", "y"]
    first.attempts += 1
    first.error = "again"
    releases.save(first)
    assert [(r.entry.name, r.attempts, r.error) for r in releases.pending()] == [
        ("x", 2, "again"),
        ("y", 1, "y failed"),
    ]
    # The same network of the same sandbox is one record, however often it is skipped.
    releases.record(journal, journal.entries[0], errors.IOFailure("x failed once more"))
    assert len(releases.pending()) == 2


def test_an_unreadable_record_is_left_and_the_others_read(tmp_path: Path) -> None:
    releases = FileReleaseStore(str(tmp_path))
    journal = Journal("c1", "eth0", entries=[Entry("x", "net1", {"name": "x"})])
    releases.record(journal, journal.entries[0], errors.IOFailure("x failed"))
    (tmp_path / "releases" / "broken.json").write_text("{")
    assert [r.entry.name for r in releases.pending()] == ["x"]


@pytest.mark.parametrize(
    "journal",
    [
        {"container_id": "c2", "ifname": "eth0", "entries": []},
        {
            "container_id": "c2",
            "ifname": "eth0",
            "entries": [{"name": "y", "ifname": "n", "config": {"name": "y"}}] * 2,
        },
        {
            "container_id": "c2",
            "ifname": "eth0",
            "entries": [{"name": "y", "ifname": "n", "config": "y"}],
        },
        {
            "container_id": "",
            "ifname": "eth0",
            "entries": [{"name": "y", "ifname": "n", "config": {"name": "y"}}],
        },
    ],
    ids=["no-entry", "two-entries", "config-not-a-dict", "no-container"],
)
def test_a_record_a_del_could_not_have_written_is_left_and_the_others_read(
    tmp_path: Path, journal: dict[str, object]
) -> None:
    """One bad record (`"entries": []` raised IndexError in every GC pass) never stops
    the others."""
    releases = FileReleaseStore(str(tmp_path))
    good = Journal("c1", "eth0", entries=[Entry("x", "net1", {"name": "x"})])
    releases.record(good, good.entries[0], errors.IOFailure("x failed"))
    bad = {"journal": journal, "error": "", "since": 0.0}
    (tmp_path / "releases" / "bad.json").write_text(json.dumps(bad))
    assert [r.entry.name for r in releases.pending()] == ["x"]


def test_a_retry_leaves_the_callers_record_as_it_was(tmp_path: Path) -> None:
    """Its pod gone, the retry's DEL runs without CNI_NETNS, on a copy of the record."""
    releases = FileReleaseStore(str(tmp_path))
    world, executor, engine, verbs = _host(releases)
    verbs.add(request("ADD"))
    executor.fail[("DEL", "b")] = errors.TryAgainLater("b failed")
    verbs.delete(request("DEL"))
    [rec] = releases.pending()
    del world.pods[NETNS]
    assert engine.retry_release(rec.journal) != []  # still failing: GC saves it again
    assert rec.journal.netns == NETNS


def test_a_record_that_cannot_be_written_does_not_fail_the_del(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    world, executor, _, verbs = _host(FileReleaseStore(str(tmp_path / "file")))
    verbs.add(request("ADD"))
    executor.fail[("DEL", "b")] = errors.IOFailure("b cannot be removed")
    verbs.delete(request("DEL"))  # no exception: the pod's deletion goes on
    assert world.journals == {}


@pytest.mark.parametrize("failing", [False, True])
def test_nothing_is_recorded_unless_a_release_is_skipped(tmp_path: Path, failing: bool) -> None:
    releases = FileReleaseStore(str(tmp_path))
    _, executor, _, verbs = _host(releases)
    verbs.add(request("ADD"))
    if failing:
        executor.fail[("DEL", "a")] = errors.IOFailure("a failed")
    verbs.delete(request("DEL"))
    assert [r.entry.name for r in releases.pending()] == (["a"] if failing else [])
