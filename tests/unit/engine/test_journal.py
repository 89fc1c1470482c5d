"""The journal: atomic save/load, keys, idempotent remove, and the per-key lock."""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.synchronize
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from multinet.cni import chain
from multinet.cni.errors import IOFailure
from multinet.cni.version import SUPPORTED
from multinet.engine.journal import ADDED, ADDING, Entry, FileJournalStore, Journal
from multinet.engine.plan import ANNOTATION, Attachment, Passengers
from multinet.record import fields


def journal(version: str = "1.0.0", cid: str = "ctr1", ifname: str = "eth0") -> Journal:
    return Journal(
        container_id=cid,
        ifname=ifname,
        netns="/var/run/netns/ns1",
        cni_version=version,
        args="IgnoreUnknown=1;K8S_POD_NAME=web-0",
        pod={"namespace": "default", "name": "web-0", "uid": "8a3b"},
        entries=[
            Entry(
                name="k8s-pod-network",
                ifname="eth0",
                config={"cniVersion": version, "name": "k8s-pod-network", "plugins": []},
                runtime_config={"portMappings": [{"hostPort": 80}]},
                state=ADDED,
                result={"cniVersion": version, "ips": [{"address": "10.1.0.5/16"}]},
                default=True,
            ),
            Entry(name="ns1/blue", ifname="net1", config={"name": "blue", "plugins": []}),
        ],
        complete=False,
    )


@pytest.mark.parametrize("version", SUPPORTED)
def test_save_load_round_trip(tmp_path: Path, version: str) -> None:
    store = FileJournalStore(str(tmp_path))
    j = journal(version)
    store.save(j)
    loaded = store.load("ctr1", "eth0")
    assert loaded == j
    assert loaded is not None
    assert loaded.entries[1].state == ADDING
    assert loaded.entries[1].result is None


def test_files_and_modes(tmp_path: Path) -> None:
    store = FileJournalStore(str(tmp_path))
    store.save(journal())
    jdir = tmp_path / "journal"
    assert store.dir == str(jdir)
    assert stat.S_IMODE(jdir.stat().st_mode) == 0o700
    assert stat.S_IMODE((jdir / "ctr1@eth0.json").stat().st_mode) == 0o600


def test_save_replaces_atomically_and_leaves_no_tmp(tmp_path: Path) -> None:
    store = FileJournalStore(str(tmp_path))
    j = journal()
    store.save(j)
    inode = os.stat(tmp_path / "journal" / "ctr1@eth0.json").st_ino
    j.complete = True
    j.entries[1].state = ADDED
    store.save(j)
    assert sorted(os.listdir(tmp_path / "journal")) == ["ctr1@eth0.json"]
    # A rename, not an in-place rewrite: readers never see a half-written file.
    assert os.stat(tmp_path / "journal" / "ctr1@eth0.json").st_ino != inode
    loaded = store.load("ctr1", "eth0")
    assert loaded is not None
    assert loaded.complete is True
    assert loaded.entries[1].state == ADDED


def test_load_missing_is_none(tmp_path: Path) -> None:
    store = FileJournalStore(str(tmp_path))
    assert store.load("ctr1", "eth0") is None  # no directory yet
    store.save(journal(cid="other"))
    assert store.load("ctr1", "eth0") is None


def test_keys(tmp_path: Path) -> None:
    store = FileJournalStore(str(tmp_path))
    assert store.keys() == []
    for cid, ifname in [("b", "eth0"), ("a", "net1"), ("a", "eth0")]:
        store.save(journal(cid=cid, ifname=ifname))
    with store.lock("c", "eth0"):
        pass
    (tmp_path / "journal" / "d@eth0.tmp").write_text("{}")
    assert store.keys() == [("a", "eth0"), ("a", "net1"), ("b", "eth0")]


def test_queries_by_container_and_by_pod(tmp_path: Path) -> None:
    store = FileJournalStore(str(tmp_path))
    assert store.by_container("a") == [] and store.by_pod("default", "web-0") == []
    for cid, ifname in [("b", "eth0"), ("a", "net1"), ("a", "eth0")]:
        store.save(journal(cid=cid, ifname=ifname))
    other = journal(cid="c")
    other.pod = {"namespace": "other", "name": "web-0"}
    store.save(other)
    (tmp_path / "journal" / "d@eth0.json").write_text("{oops")  # unreadable: skipped
    assert [j.ifname for j in store.by_container("a")] == ["eth0", "net1"]
    by_pod = store.by_pod("default", "web-0")
    assert [(j.container_id, j.ifname) for j in by_pod] == [
        ("a", "eth0"),
        ("a", "net1"),
        ("b", "eth0"),
    ]
    assert [j.container_id for j in store.by_pod("other", "web-0")] == ["c"]
    assert len(list(store.journals())) == 4


def test_the_network_models_passengers_ride_flat_in_the_journal(tmp_path: Path) -> None:
    """One record in memory (Entry.k8s, as Attachment.k8s), the journal's JSON as before."""
    store = FileJournalStore(str(tmp_path))
    j = journal()
    j.entries[1].k8s = Passengers(ANNOTATION, "intel.com/sriov", "0000:03:02.1", "/i", "/d")
    store.save(j)
    raw = json.loads((tmp_path / "journal" / "ctr1@eth0.json").read_text())["entries"][1]
    assert "k8s" not in raw
    assert (raw["origin"], raw["resource_name"], raw["device_id"]) == (
        ANNOTATION,
        "intel.com/sriov",
        "0000:03:02.1",
    )
    assert store.load("ctr1", "eth0") == j


def test_an_entry_carries_every_field_it_shares_with_its_attachment() -> None:
    net = chain.load({"cniVersion": "1.0.0", "name": "blue", "type": "bridge"})
    att = Attachment(
        "ns1/blue",
        net,
        "net1",
        {"mac": "0a:58:0a:01:00:05"},
        default_route=("10.1.0.1",),
        drop_default_routes=True,
        source_routing=True,
        cni_args=(("IP", "10.1.0.5"),),
        k8s=Passengers(ANNOTATION, "r", "d", "i", "p"),
    )
    entry = Entry.planned(att)
    shared = set(fields(Entry)) & set(fields(Attachment))
    assert {n: getattr(entry, n) for n in shared} == {n: getattr(att, n) for n in shared}
    assert (entry.config, entry.state) == (net.to_dict(), ADDING)


def test_remove_is_idempotent(tmp_path: Path) -> None:
    store = FileJournalStore(str(tmp_path))
    store.remove("ctr1", "eth0")  # nothing there, not even the directory
    store.save(journal())
    store.save(journal(cid="keep"))
    with store.lock("ctr1", "eth0"):
        pass
    (tmp_path / "journal" / "ctr1@eth0.tmp").write_text("partial")
    store.remove("ctr1", "eth0")
    assert sorted(os.listdir(tmp_path / "journal")) == ["keep@eth0.json"]
    assert store.load("ctr1", "eth0") is None
    store.remove("ctr1", "eth0")
    assert store.keys() == [("keep", "eth0")]


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b"null",
        b'"text"',
        b'{"container_id": "ctr1"}',
        b'{"container_id": "ctr1", "ifname": "eth0", "surprise": 1}',
        b'{"container_id": "ctr1", "ifname": "eth0", "entries": [{"name": "x"}]}',
        b'{"container_id": "ctr1", "ifname": "eth0", "entries": 5}',
    ],
)
def test_unreadable_journal_is_an_io_failure(tmp_path: Path, content: bytes) -> None:
    store = FileJournalStore(str(tmp_path))
    path = tmp_path / "journal" / "ctr1@eth0.json"
    path.parent.mkdir()
    path.write_bytes(content)
    with pytest.raises(IOFailure) as e:
        store.load("ctr1", "eth0")
    assert e.value.code == 5
    assert e.value.msg == f"journal {path} is unreadable"
    assert e.value.details


def test_journal_path_that_is_a_directory(tmp_path: Path) -> None:
    store = FileJournalStore(str(tmp_path))
    (tmp_path / "journal" / "ctr1@eth0.json").mkdir(parents=True)
    with pytest.raises(IOFailure):
        store.load("ctr1", "eth0")
    with pytest.raises(IOFailure) as e:
        store.save(journal())
    assert e.value.msg == f"cannot write journal {tmp_path}/journal/ctr1@eth0.json"


def test_unusable_cni_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    store = FileJournalStore(str(blocker))
    with pytest.raises(IOFailure) as e:
        store.save(journal())
    assert e.value.code == 5
    assert e.value.msg == f"cannot create journal directory {blocker}/journal"
    with pytest.raises(IOFailure):
        with store.lock("ctr1", "eth0"):
            pass


# -- the lock ---------------------------------------------------------------------------------


def test_lock_serialises_threads(tmp_path: Path) -> None:
    store = FileJournalStore(str(tmp_path))
    events: list[tuple[str, int]] = []

    def worker(n: int) -> None:
        with store.lock("ctr1", "eth0"):
            events.append(("enter", n))
            time.sleep(0.05)
            events.append(("exit", n))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(events) == 8
    for i in range(0, 8, 2):
        assert events[i][0] == "enter"
        assert events[i + 1] == ("exit", events[i][1])


def test_locks_on_different_keys_do_not_block(tmp_path: Path) -> None:
    store = FileJournalStore(str(tmp_path))
    with store.lock("ctr1", "eth0"):
        done = threading.Event()

        def other() -> None:
            with store.lock("ctr1", "net1"):
                done.set()

        t = threading.Thread(target=other)
        t.start()
        assert done.wait(5)
        t.join(5)


def acquire_in_thread(
    store: FileJournalStore, cid: str, ifname: str
) -> tuple[threading.Event, ...]:
    """Start a thread that takes the lock, signals, and holds it until released."""
    acquired, release = threading.Event(), threading.Event()

    def run() -> None:
        with store.lock(cid, ifname):
            acquired.set()
            release.wait(10)

    threading.Thread(target=run, daemon=True).start()
    return acquired, release


def _hold_lock(
    cni_dir: str, held: multiprocessing.synchronize.Event, go: multiprocessing.synchronize.Event
) -> None:
    with FileJournalStore(cni_dir).lock("ctr1", "eth0"):
        held.set()
        go.wait(10)


def test_lock_serialises_processes(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    held, go = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_hold_lock, args=(str(tmp_path), held, go))
    child.start()
    try:
        assert held.wait(10)
        store = FileJournalStore(str(tmp_path))
        acquired, release = acquire_in_thread(store, "ctr1", "eth0")
        assert not acquired.wait(0.3)  # the other process holds it
        go.set()
        assert acquired.wait(5)
        release.set()
    finally:
        go.set()
        child.join(10)
    assert child.exitcode == 0


def test_lock_survives_remove_by_the_holder(tmp_path: Path) -> None:
    store = FileJournalStore(str(tmp_path))
    store.save(journal())
    lock_path = tmp_path / "journal" / "ctr1@eth0.lock"
    with store.lock("ctr1", "eth0"):
        waiter_acquired, waiter_release = acquire_in_thread(store, "ctr1", "eth0")
        assert not waiter_acquired.wait(0.2)
        store.remove("ctr1", "eth0")  # unlinks the lock file we hold
        assert not lock_path.exists()
    # The waiter was blocked on the dead inode: it must have re-taken the live one.
    assert waiter_acquired.wait(5)
    assert lock_path.exists()
    third_acquired, third_release = acquire_in_thread(store, "ctr1", "eth0")
    assert not third_acquired.wait(0.3)  # the waiter really holds the lock on the new file
    waiter_release.set()
    assert third_acquired.wait(5)
    third_release.set()


def test_lock_can_be_taken_repeatedly_without_leaks(tmp_path: Path) -> None:
    store = FileJournalStore(str(tmp_path))
    for _ in range(3):
        with store.lock("ctr1", "eth0"):
            store.save(journal())
    assert store.keys() == [("ctr1", "eth0")]
    fds = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        with store.lock("ctr1", "eth0"):
            pass
    assert len(os.listdir("/proc/self/fd")) == fds  # no descriptor leak


@pytest.mark.parametrize("length", [190, 250, 1000, 5000])
def test_any_valid_container_id_is_a_journal_key(tmp_path: Path, length: int) -> None:
    """The spec's ID rule has no length limit; file names have one (255 bytes)."""
    store = FileJournalStore(str(tmp_path))
    cid = "c" * length
    with store.lock(cid, "eth0"):
        store.save(Journal(container_id=cid, ifname="eth0", netns="/ns"))
    loaded = store.load(cid, "eth0")
    assert loaded is not None and loaded.container_id == cid
    assert store.keys() == [(cid, "eth0")]
    assert all(len(n.encode()) <= 255 for n in os.listdir(store.dir))
    store.remove(cid, "eth0")
    assert store.keys() == [] and os.listdir(store.dir) == []


def test_long_and_short_ids_never_share_a_journal(tmp_path: Path) -> None:
    store = FileJournalStore(str(tmp_path))
    ids = ["a" * 300, "a" * 301, "b" * 300, "short"]
    for cid in ids:
        store.save(Journal(container_id=cid, ifname="eth0"))
    assert sorted(store.keys()) == sorted((cid, "eth0") for cid in ids)
    assert {store.load(cid, "eth0").container_id for cid in ids} == set(ids)  # type: ignore[union-attr]


def test_a_lock_that_may_not_create_makes_no_directory(tmp_path: Path) -> None:
    """DEL where no journal was ever kept (a cniDir never used) creates nothing there."""
    store = FileJournalStore(str(tmp_path / "never-used"))
    with store.lock("c1", "eth0", create=False):
        assert store.load("c1", "eth0") is None
    assert not (tmp_path / "never-used").exists()
    with store.lock("c1", "eth0"):  # ADD's lock creates the directory
        pass
    assert os.path.isdir(store.dir)


def test_modified_is_when_the_journal_was_last_written(tmp_path: Path) -> None:
    """multinetd's GC leaves a journal younger than its grace period alone; a long
    container ID (a hashed file name) is found too."""
    store = FileJournalStore(str(tmp_path))
    long_id = "c" * 300
    assert store.modified("c1", "eth0") is None
    for cid in ("c1", long_id):
        before = time.time()
        store.save(Journal(cid, "eth0"), durable=False)
        written = store.modified(cid, "eth0")
        assert written is not None and before - 1 <= written <= time.time() + 1
    store.remove(long_id, "eth0")
    assert store.modified(long_id, "eth0") is None
