"""`pods` pods (100) ADDed at once through the thick shim, then DELed at once.

Issue 11's target: 100 pods at once on one node in thick mode, no failure, no leak,
all ADDed within 3 s (`TARGET_ADD_WALL_S`: from the first ADD started to the last
one answered). One thread per pod runs the driver (`cnitool add` of the shim's
netconf: the native `multinet-shim` as `multinetctl install-shim` installs it,
which forwards to multinetd), for both daemons (sequential and parallelAttach).
The floor, measured first in the same run: the same number of pods ADDed at once
with the delegates alone (one thread per pod running the driver once per network,
as `bench.latency`'s floor does), then DELed at once. After
the ADDs: every pod has its four interfaces, host-local holds three addresses
per pod (all distinct), the daemon has one journal per pod. After the DELs:
no interface in any pod, no host-local allocation, no journal or lock file, no
link left on the bridges, no libcni cache entry, and the daemon still serves.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.daemon import BenchError
from bench.networks import PodRef
from bench.report import summarize, table, verdict
from bench.scenario import FALLBACK_MARK, Scenario

PODS = 100
TARGET_ADD_WALL_S = 3.0
NAMESPACE = "mnb-conc"
FLOOR_NAMESPACE = "mnb-conc-floor"
MODES = (("thick-seq", False), ("thick-par", True))


def _failed(proc: subprocess.CompletedProcess[str]) -> bool:
    return proc.returncode != 0 or FALLBACK_MARK in proc.stderr


def _files(scenario: Scenario, variant: str, sub: str) -> list[str]:
    d = scenario.cni_dir(variant) / sub
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def leaks(scenario: Scenario, variant: str, namespaces: list[str]) -> dict[str, list[str]]:
    """Everything a DEL should have removed and did not."""
    found = {
        "pod interfaces": [f"{ns}: {link}" for ns in namespaces for link in scenario.links(ns)],
        "host-local allocations": scenario.allocations(),
        "journal files": _files(scenario, variant, "journal"),
        "host links on the bridges": scenario.host_leftovers(),
        "libcni cached results": scenario.cached_results(),
    }
    return {k: v for k, v in found.items() if v}


def floor(scenario: Scenario, pods: int, progress: Callable[[str], None]) -> dict[str, Any]:
    """The delegates alone, `pods` pods at once: the floor of the thick modes."""
    nets = scenario.networks()
    refs = [PodRef(FLOOR_NAMESPACE, f"floor-{i}", str(uuid.uuid4())) for i in range(pods)]
    namespaces = [scenario.netns() for _ in refs]

    def pod(command: str, ns: str, ref: PodRef) -> tuple[list[str], float]:
        """Every network of one pod in turn (DEL in reverse): failures, seconds."""
        failures, total = [], 0.0
        for net in nets.all if command == "add" else tuple(reversed(nets.all)):
            proc, seconds = scenario.drive(
                command, net.name, ns, ifname=net.ifname, cni_args=ref.cni_args
            )
            total += seconds
            if _failed(proc):
                failures.append(f"{net.name}: {proc.stdout}{proc.stderr}")
        return failures, total

    out: dict[str, Any] = {"pods": pods}
    try:
        for command in ("add", "del"):
            with ThreadPoolExecutor(pods) as pool:
                start = time.perf_counter()
                done = list(pool.map(pod, [command] * pods, namespaces, refs))
                out[f"{command}_wall_s"] = round(time.perf_counter() - start, 2)
            out[f"{command}_failures"] = [f for failures, _ in done for f in failures]
            out[f"{command}_ms"] = summarize([s for _, s in done]).to_dict()
            if command == "add":
                out["pods_with_all_interfaces"] = sum(
                    1 for ns in namespaces if scenario.links(ns) == nets.ifnames
                )
            progress(
                f"  concurrency floor: {pods} {command.upper()}s in {out[command + '_wall_s']} s"
            )
        out["leaks_after_del"] = leaks(scenario, "floor", namespaces)
    finally:
        for ns in namespaces:
            scenario.drop_netns(ns)
    out["ok"] = (
        not out["add_failures"]
        and not out["del_failures"]
        and out["pods_with_all_interfaces"] == pods
        and not out["leaks_after_del"]
    )
    return out


def one_mode(
    scenario: Scenario, variant: str, parallel: bool, pods: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    nets = scenario.networks()
    net, daemon = scenario.thick_netconf(parallel)
    refs = [scenario.add_pod(NAMESPACE, f"{variant}-{i}", nets.annotation()) for i in range(pods)]
    daemon.wait_cached("pods", scenario.pods_on_node)
    before = leaks(scenario, variant, [])
    if before:
        raise BenchError(f"concurrency {variant}: not clean before starting: {before}")
    namespaces = [scenario.netns() for _ in refs]

    def call(command: str, ns: str, pod: PodRef) -> tuple[subprocess.CompletedProcess[str], float]:
        return scenario.drive(command, net, ns, cni_args=pod.cni_args)

    out: dict[str, Any] = {"pods": pods, "parallelAttach": parallel}
    try:
        with ThreadPoolExecutor(pods) as pool:
            start = time.perf_counter()
            adds = list(pool.map(lambda p: call("add", *p), zip(namespaces, refs, strict=True)))
            out["add_wall_s"] = round(time.perf_counter() - start, 2)
        out["add_failures"] = [p.stdout + p.stderr for p, _ in adds if _failed(p)]
        out["add_ms"] = summarize([s for _, s in adds]).to_dict()
        wrong = [
            f"{ns}: {links}" for ns in namespaces if (links := scenario.links(ns)) != nets.ifnames
        ]
        cluster_ips = {json.loads(p.stdout)["ips"][0]["address"] for p, _ in adds if not _failed(p)}
        host_local = sum(1 for n in nets.all if n.host_local)
        out["after_add"] = {
            "pods_with_all_interfaces": pods - len(wrong),
            "wrong_interfaces": wrong[:5],
            "distinct_cluster_addresses": len(cluster_ips),
            "host_local_allocations": len(scenario.allocations()),
            "expected_allocations": pods * host_local,
            "journals": len(
                [f for f in _files(scenario, variant, "journal") if f.endswith(".json")]
            ),
            "daemon_rss_mib": round(daemon.rss_kib() / 1024, 1),
        }
        progress(f"  concurrency {variant}: {pods} ADDs in {out['add_wall_s']} s")

        with ThreadPoolExecutor(pods) as pool:
            start = time.perf_counter()
            dels = list(pool.map(lambda p: call("del", *p), zip(namespaces, refs, strict=True)))
            out["del_wall_s"] = round(time.perf_counter() - start, 2)
        out["del_failures"] = [p.stdout + p.stderr for p, _ in dels if _failed(p)]
        out["del_ms"] = summarize([s for _, s in dels]).to_dict()
        out["leaks_after_del"] = leaks(scenario, variant, namespaces)
        out["daemon_healthy"] = daemon.get("/healthz")[0] == 200
        # Not a leak of the CNI kind, but it grows with every pod: the local copy of
        # each pod's network-status (`multinetctl status` offline) is never removed.
        mine = f"{NAMESPACE}_{variant}-"
        out["status_copies_left"] = sum(
            1 for f in _files(scenario, variant, "status") if f.startswith(mine)
        )
        progress(f"  concurrency {variant}: {pods} DELs in {out['del_wall_s']} s")
    finally:
        for ns in namespaces:
            scenario.drop_netns(ns)
    after = out["after_add"]
    out["ok"] = (
        not out["add_failures"]
        and not out["del_failures"]
        and after["pods_with_all_interfaces"] == pods
        and after["distinct_cluster_addresses"] == pods
        and after["host_local_allocations"] == after["expected_allocations"]
        and after["journals"] == pods
        and not out["leaks_after_del"]
        and out["daemon_healthy"]
    )
    out["target_add_wall_s"] = TARGET_ADD_WALL_S
    out["verdict"] = verdict(out["add_wall_s"], TARGET_ADD_WALL_S) if out["ok"] else "MISSED"
    return out


def run(
    scenario: Scenario,
    iterations: int = 0,
    progress: Callable[[str], None] = print,
    pods: int = PODS,
) -> Any:
    out = {"floor": floor(scenario, pods, progress)}
    for variant, parallel in MODES:
        mode = one_mode(scenario, variant, parallel, pods, progress)
        for command in ("add", "del"):
            mode[f"{command}_wall_ratio_to_floor"] = round(
                mode[f"{command}_wall_s"] / out["floor"][f"{command}_wall_s"], 2
            )
        out[variant] = mode
    return out


def render(r: dict[str, Any]) -> str:
    rows = []
    f = r["floor"]
    rows.append(
        [
            "delegates alone (floor)",
            f"{len(f['add_failures'])}/{f['pods']}",
            f"{f['add_wall_s']:.1f}",
            f"{f['add_ms']['median']:.0f} / {f['add_ms']['max']:.0f}",
            f"{f['pods_with_all_interfaces']}, -, -, -",
            f"{len(f['del_failures'])}/{f['pods']}",
            f"{f['del_wall_s']:.1f}",
            f"{f['del_ms']['median']:.0f} / {f['del_ms']['max']:.0f}",
            ", ".join(f["leaks_after_del"]) or "none",
            "-",
            "ok" if f["ok"] else "FAILED",
            "-",
        ]
    )
    for variant, o in r.items():
        if not isinstance(o, dict) or variant == "floor":
            continue
        a = o["after_add"]
        rows.append(
            [
                variant,
                f"{len(o['add_failures'])}/{o['pods']}",
                f"{o['add_wall_s']:.1f} (x{o['add_wall_ratio_to_floor']:.2f})",
                f"{o['add_ms']['median']:.0f} / {o['add_ms']['max']:.0f}",
                f"{a['pods_with_all_interfaces']}, {a['distinct_cluster_addresses']}, "
                f"{a['host_local_allocations']}/{a['expected_allocations']}, {a['journals']}",
                f"{len(o['del_failures'])}/{o['pods']}",
                f"{o['del_wall_s']:.1f} (x{o['del_wall_ratio_to_floor']:.2f})",
                f"{o['del_ms']['median']:.0f} / {o['del_ms']['max']:.0f}",
                ", ".join(o["leaks_after_del"]) or "none",
                str(o["status_copies_left"]),
                "ok" if o["ok"] else "FAILED",
                f"<= {o['target_add_wall_s']:.0f} s: {o['verdict']}",
            ]
        )
    return table(
        [
            "concurrent pods",
            "ADD fail",
            "wall s",
            "ms med/max",
            "pods ok, IPs, allocs, journals",
            "DEL fail",
            "wall s",
            "ms med/max",
            "leaks",
            "status copies",
            "",
            "ADD wall target",
        ],
        rows,
        "All pods ADDed at once, then all DELed at once (x: wall time over the floor's)",
    )
