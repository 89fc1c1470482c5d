"""The burst benchmark's pure parts: cgroup files (v1 and v2), memory quantities, the
DaemonSet's limit, percentiles and the failure labels. The benchmark itself is run by
hand (`python -m bench --only burst`): performance is measured in bench/, not asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bench import burst, cgroup
from bench.daemon import BenchError

V1_OOM_CONTROL = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"
V2_EVENTS = "low 0\nhigh 0\nmax 17\noom 2\noom_kill 2\noom_group_kill 0\n"
V1_PROC_CGROUP = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/54e9\n3:cpuset:/\n0::/\n"
HYBRID_PROC_CGROUP = "5:cpu,cpuacct:/a\n4:blkio,memory:/kubepods/pod1\n0::/init.scope\n"
V2_PROC_CGROUP = "0::/user.slice/session-1.scope\n"


def test_keyed_files_of_both_versions() -> None:
    assert cgroup.parse_keyed(V1_OOM_CONTROL) == {
        "oom_kill_disable": 0,
        "under_oom": 0,
        "oom_kill": 3,
    }
    assert cgroup.parse_keyed(V2_EVENTS)["oom_kill"] == 2
    assert cgroup.parse_keyed(V2_EVENTS)["max"] == 17
    assert cgroup.parse_keyed("garbage\nkey notanumber\n\n") == {}


def test_byte_files() -> None:
    assert cgroup.parse_bytes("104857600\n") == 100 * 2**20
    assert cgroup.parse_bytes("max\n") is None


@pytest.mark.parametrize(
    ("text", "version", "path"),
    [
        (V1_PROC_CGROUP, 1, "/process_api/54e9"),
        (HYBRID_PROC_CGROUP, 1, "/kubepods/pod1"),  # memory sharing a hierarchy
        (HYBRID_PROC_CGROUP, 2, "/init.scope"),
        (V2_PROC_CGROUP, 2, "/user.slice/session-1.scope"),
    ],
)
def test_own_cgroup_path(text: str, version: int, path: str) -> None:
    assert cgroup.own_path(text, version) == path


def test_no_memory_line_is_a_clear_error() -> None:
    with pytest.raises(BenchError, match="no cgroup v1 memory line"):
        cgroup.own_path(V2_PROC_CGROUP, 1)


def test_detect_v2_v1_and_neither(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="no memory cgroup controller"):
        cgroup.detect(tmp_path)
    (tmp_path / "memory").mkdir()
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert cgroup.detect(tmp_path) == 1
    (tmp_path / "cgroup.controllers").write_text("cpu io pids\n")  # hybrid: v2 without memory
    assert cgroup.detect(tmp_path) == 1
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    assert cgroup.detect(tmp_path) == 2


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("100Mi", 100 * 2**20),
        ("1Gi", 2**30),
        ("128M", 128 * 10**6),
        ("512Ki", 512 * 1024),
        ("1.5Gi", 3 * 2**29),
        ("1048576", 2**20),
        (2**20, 2**20),
    ],
)
def test_quantities(quantity: str | int, expected: int) -> None:
    assert burst.quantity_bytes(quantity) == expected


def test_a_bad_quantity_is_named() -> None:
    with pytest.raises(BenchError, match="'lots'"):
        burst.quantity_bytes("lots")


def test_the_deployed_limit_is_read_from_the_thick_daemonset() -> None:
    daemonset = yaml.safe_load((burst.THICK / "daemonset.yaml").read_text())
    assert burst.deployed_limit(daemonset) == 100 * 2**20
    (container,) = daemonset["spec"]["template"]["spec"]["containers"]
    del container["resources"]["limits"]
    assert burst.deployed_limit(daemonset) is None
    container["name"] = "other"
    with pytest.raises(BenchError, match="no multinetd container"):
        burst.deployed_limit(daemonset)


def test_percentiles_are_nearest_rank() -> None:
    values = [float(i) for i in range(1, 101)]  # 1..100
    assert burst.percentile(values, 50) == 50.0
    assert burst.percentile(values, 99) == 99.0
    assert burst.percentile(values, 100) == 100.0
    assert burst.percentile([7.0], 99) == 7.0
    assert burst.percentile([3.0, 1.0, 2.0], 50) == 2.0  # unsorted input
    stats = burst.stats_ms([0.010, 0.020, 0.030])
    assert stats == {"n": 3, "p50": 20.0, "p99": 30.0, "max": 30.0}


@pytest.mark.parametrize(
    ("returncode", "stdout", "stderr", "label"),
    [
        (0, '{"cniVersion": "1.0.0"}', "", None),
        (1, json.dumps({"code": 11, "msg": "try again later"}), "", "code 11"),
        (1, "not json", "", "exit 1"),
        (-9, "", "", "killed by SIGKILL"),
        (
            0,
            "{}",
            "multinet-shim: daemon unavailable; running ADD in-process",
            "in-process fallback",
        ),
        (
            1,
            json.dumps({"code": 7, "msg": "invalid multinet configuration"}),
            "multinet-shim: daemon unavailable; running ADD in-process",
            "in-process fallback, code 7",
        ),
    ],
)
def test_failure_labels(returncode: int, stdout: str, stderr: str, label: str | None) -> None:
    assert burst.failure_of(returncode, stdout, stderr) == label


def test_the_daemon_runs_with_the_deployed_keys_and_the_benchmarks_paths() -> None:
    deployed = {
        "daemonSocketPath": "/run/multinet/multinet.sock",
        "cniDir": "/var/lib/cni/multinet",
        "metricsAddress": ":9190",
        "hostRoot": "/hostroot",
        "logLevel": "info",
        "maxConcurrentRequests": 4,
    }
    local = {"cniDir": "/tmp/mnb-x/state-burst", "kubeconfig": "/tmp/mnb-x/kubeconfig"}
    assert burst.adapted(deployed, local) == {
        "logLevel": "info",
        "maxConcurrentRequests": 4,
        **local,
    }
    # No host path of the real daemon.json reaches the benchmark's daemon.
    real = json.loads((burst.THICK / "daemon.json").read_text())
    kept = burst.adapted(real, {})
    assert kept and not [v for v in kept.values() if isinstance(v, str) and v.startswith("/")]


def test_v2_parent_is_the_nearest_cgroup_enabling_memory(tmp_path: Path) -> None:
    own = tmp_path / "user.slice" / "user-0.slice" / "session-1.scope"
    own.mkdir(parents=True)
    for d, enabled in (
        (tmp_path, "cpu io memory pids"),
        (tmp_path / "user.slice", "memory pids"),
        (tmp_path / "user.slice" / "user-0.slice", "memory pids"),
        (own, ""),  # a leaf holding the benchmark: no controller for children
    ):
        (d / "cgroup.subtree_control").write_text(enabled + "\n")
    assert cgroup.v2_parent(tmp_path, own) == own.parent
    (own / "cgroup.subtree_control").write_text("memory\n")
    assert cgroup.v2_parent(tmp_path, own) == own


def test_v2_parent_falls_back_to_enabling_memory_at_the_root(tmp_path: Path) -> None:
    own = tmp_path / "a" / "b"
    own.mkdir(parents=True)
    for d in (tmp_path, tmp_path / "a", own):
        (d / "cgroup.subtree_control").write_text("cpu\n")
    assert cgroup.v2_parent(tmp_path, own) == tmp_path
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+memory"


def test_v2_peak_without_memory_peak_is_the_highest_usage_sampled(tmp_path: Path) -> None:
    """Kernels before 5.19 have no v2 memory.peak: the sampled maximum stands in."""
    group = object.__new__(cgroup.MemoryCgroup)
    group.version, group.path, group._usage_max = 2, tmp_path, 0
    (tmp_path / "memory.current").write_text("300\n")
    assert group.usage() == 300
    (tmp_path / "memory.current").write_text("200\n")
    assert group.peak() == 300
    (tmp_path / "memory.peak").write_text("500\n")
    assert group.peak() == 500
