"""Multus's cache read as a journal, and the engine's DEL of the pods Multus attached."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from multinet.cni import errors
from multinet.cni.errors import IOFailure
from multinet.engine.engine import Engine
from multinet.engine.journal import ADDED
from multinet.engine.multus_cache import MultusCache, delegate_config, interface_name
from multinet.meta.verbs import Verbs
from tests.support.multus import Delegate, cache_files, write_cache
from tests.unit.engine.fakes import FakeExecutor, FakeNetns, FakeStore, World
from tests.unit.engine.test_engine import NETNS, conf, request


def net(name: str, version: str = "1.0.0", plugins: bool = True) -> dict[str, Any]:
    if plugins:
        return {"cniVersion": version, "name": name, "plugins": [{"type": "fake"}]}
    return {"cniVersion": version, "name": name, "type": "fake"}


def result(address: str) -> dict[str, Any]:
    return {"cniVersion": "1.0.0", "ips": [{"address": address}]}


def pod_delegates() -> list[Delegate]:
    return [
        Delegate(net("cluster"), ifname="eth0", result=result("10.0.0.2/24")),
        Delegate(
            net("blue", plugins=False), "ns1/blue", ifname="net1", result=result("10.1.0.2/24")
        ),
        Delegate(
            net("red"),
            "ns1/red",
            ifname_request="data0",
            ifname="data0",
            result=result("10.2.0.2/24"),
            capability_args={"mac": "02:00:00:00:00:01"},
        ),
    ]


def test_reads_the_delegates_in_multus_order_with_multus_interface_names(tmp_path: Path) -> None:
    write_cache(tmp_path, "c1", pod_delegates())
    journal = MultusCache([str(tmp_path)]).load("c1", "eth0", NETNS, "1.0.0")
    assert journal is not None and journal.complete and journal.netns == NETNS
    assert [(e.name, e.ifname, e.default, e.state) for e in journal.entries] == [
        ("cluster", "eth0", True, ADDED),
        ("ns1/blue", "net1", False, ADDED),
        ("ns1/red", "data0", False, ADDED),
    ]
    assert [e.result for e in journal.entries] == [
        result("10.0.0.2/24"),
        result("10.1.0.2/24"),
        result("10.2.0.2/24"),
    ]
    assert journal.entries[1].config == net("blue", plugins=False)  # Bytes, as Multus ran it
    assert journal.entries[2].runtime_config == {"mac": "02:00:00:00:00:01"}


def test_looks_in_each_directory_and_none_is_no_record(tmp_path: Path) -> None:
    first, second = tmp_path / "multinet", tmp_path / "multus"
    write_cache(second, "c1", pod_delegates()[:1])
    cache = MultusCache([str(first), str(second)])
    assert cache.load("c1", "eth0", NETNS, "1.0.0") is not None
    assert cache.load("c2", "eth0", NETNS, "1.0.0") is None
    assert cache.load("../c1", "eth0", NETNS, "1.0.0") is None


def test_a_delegate_without_bytes_uses_its_parsed_config_and_a_version(tmp_path: Path) -> None:
    (tmp_path / "c1").write_text(
        json.dumps(
            [
                {"Conf": {"name": "cluster", "type": "fake"}, "ConfList": {}},
                {"ConfList": {"name": "l", "plugins": [{"type": "fake"}]}, "Bytes": "!!"},
                {"Conf": {}, "ConfList": {}},  # nothing usable: skipped
            ]
        )
    )
    journal = MultusCache([str(tmp_path)]).load("c1", "eth0", NETNS, "0.4.0")
    assert journal is not None
    assert [(e.config, e.ifname, e.result) for e in journal.entries] == [
        ({"name": "cluster", "type": "fake", "cniVersion": "0.4.0"}, "eth0", None),
        ({"name": "l", "plugins": [{"type": "fake"}], "cniVersion": "0.4.0"}, "net1", None),
    ]


@pytest.mark.parametrize("content", ["{not json", '{"a": 1}'])
def test_an_unreadable_cache_is_an_io_failure(tmp_path: Path, content: str) -> None:
    (tmp_path / "c1").write_text(content)
    with pytest.raises(IOFailure, match="Multus's cache"):
        MultusCache([str(tmp_path)]).load("c1", "eth0", NETNS, "1.0.0")


def test_remove_drops_the_container_file_and_its_results_only(tmp_path: Path) -> None:
    write_cache(tmp_path, "c1", pod_delegates())
    write_cache(tmp_path, "c2", pod_delegates())
    cache = MultusCache([str(tmp_path)])
    journal = cache.load("c1", "eth0", NETNS, "1.0.0")
    assert journal is not None
    cache.remove(journal)
    assert cache_files(tmp_path, "c1") == []
    assert len(cache_files(tmp_path, "c2")) == 4


def test_helpers() -> None:
    assert interface_name({"ifnameRequest": "x"}, "eth0", 0) == "x"
    assert interface_name({}, "eth9", 0) == "eth9"
    assert interface_name({}, "eth0", 3) == "net3"
    assert delegate_config({"Bytes": "e30="}) is None  # {} has no type: falls through


# -- the engine -----------------------------------------------------------------------------


def engine_over(tmp_path: Path, **keys: Any) -> tuple[Verbs, World, FakeExecutor]:
    world = World(pods={NETNS: {"eth0", "net1", "data0"}})
    store = FakeStore(world)
    executor = FakeExecutor(world, store)
    engine = Engine(
        conf(**keys),
        store=store,
        pod_netns=FakeNetns(world),
        executor=executor,
        legacy=MultusCache([str(tmp_path)]),
    )
    return Verbs(engine), world, executor


def test_del_without_a_journal_removes_what_multus_attached_then_its_cache(tmp_path: Path) -> None:
    write_cache(tmp_path, "c1", pod_delegates())
    engine, world, executor = engine_over(tmp_path)
    engine.delete(request("DEL"))
    # Multus's networks, not the netconf's delegates, in reverse, each with its result.
    assert [(c.network, c.ifname, c.prev_result) for c in executor.calls] == [
        ("red", "data0", result("10.2.0.2/24")),
        ("blue", "net1", result("10.1.0.2/24")),
        ("cluster", "eth0", result("10.0.0.2/24")),
    ]
    assert world.pods[NETNS] == set()
    assert cache_files(tmp_path, "c1") == []
    executor.calls.clear()
    engine.delete(request("DEL"))  # a second DEL: the netconf's networks, as before
    assert executor.of("DEL") == ["c", "b", "a", "cluster"]


def test_multinet_own_journal_wins_over_multus_cache(tmp_path: Path) -> None:
    engine, world, executor = engine_over(tmp_path)
    world.pods[NETNS] = set()
    engine.add(request("ADD"))
    write_cache(tmp_path, "c1", pod_delegates())
    executor.calls.clear()
    engine.delete(request("DEL"))
    assert executor.of("DEL") == ["c", "b", "a", "cluster"]
    assert len(cache_files(tmp_path, "c1")) == 4  # not ours to touch


def test_an_unreadable_multus_cache_falls_back_to_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "c1").write_text("{garbage")
    engine, _world, executor = engine_over(tmp_path)
    engine.delete(request("DEL"))
    assert executor.of("DEL") == ["c", "b", "a", "cluster"]


def test_a_failed_del_with_retry_keeps_multus_cache_for_the_retry(tmp_path: Path) -> None:
    write_cache(tmp_path, "c1", pod_delegates())
    engine, world, executor = engine_over(tmp_path, retryDeleteOnError=True)
    executor.fail[("DEL", "blue")] = IOFailure("blue cannot be removed")
    with pytest.raises(errors.TryAgainLater):
        engine.delete(request("DEL"))
    assert len(cache_files(tmp_path, "c1")) == 4
    del executor.fail[("DEL", "blue")]
    engine.delete(request("DEL"))
    assert cache_files(tmp_path, "c1") == []
    assert world.journals == {}
