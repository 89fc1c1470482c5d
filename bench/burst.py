"""A node reboot: `pods` pods (150) ADDed at once through the thick shim, then DELed at
once, with multinetd in a memory cgroup with the DaemonSet's limit (issue 21).

The daemon runs with the thick DaemonSet's configuration (deploy/overlays/thick/
daemon.json: every key but the paths, which go to the benchmark's temporary
directory, `metricsAddress`, not opened, and `hostRoot`, the benchmark running on the
host's / already) and inside a cgroup of its own (`bench.cgroup`) limited to the
DaemonSet's `resources.limits.memory` (`--limit MiB` overrides it; 0: no limit). The
daemon joins the cgroup before it starts, so its delegates are charged to it too,
as they are to the container in a cluster.

The burst: one thread per pod execs the native `multinet-shim` (as a container
runtime does, without a driver: its stdout is the CNI result or error, whose code is
counted) for the 4-network pod of `bench.latency`; all ADDs at once, then, once all
have answered, all DELs at once. The shim's in-process fallback is off
(`fallbackExecutable: /bin/false`): a call the daemon did not answer (it was
OOM-killed) fails, instead of running thin mode outside the cgroup. The floor, run
first in the same run: the same pods with the delegates alone, one thread per pod
execing the four delegates in turn (DEL in reverse), as the runtime would without a
meta-plugin.

Reported: wall time of each phase (from the first exec to the last answer), per-pod
p50/p99, failures by error code, the cgroup's OOM kills and times at its limit, its
peak (the kernel's, since the daemon started; and the highest usage sampled in each
phase), the idle daemon before the burst (cgroup usage and RSS), and the ratios to
the floor. Issue 21's targets: 0 OOM kills, 0 failures, peak under the limit, total
wall time (ADD + DEL) <= x1.2 the floor's.

Whatever happens (the kernel OOM-killing the daemon, Ctrl-C), the namespaces are
deleted, the daemon stopped and the cgroup removed; the rest goes with the scenario.
"""

from __future__ import annotations

import collections
import json
import math
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.cgroup import MIB, MemoryCgroup
from bench.concurrency import leaks
from bench.daemon import BenchError, Daemon
from bench.networks import CNI_VERSION, Network, PodNetworks, PodRef
from bench.report import table, verdict
from bench.scenario import FALLBACK_MARK, REFERENCE_PLUGINS, Scenario

PODS = 150
THICK = Path(__file__).resolve().parents[1] / "deploy" / "overlays" / "thick"
VARIANT = "burst"
NAMESPACE = "mnb-burst"
FLOOR_NAMESPACE = "mnb-burst-floor"
TARGET_RATIO = 1.2  # total wall time over the floor's
CALL_TIMEOUT_S = 300.0  # past the kubelet's 2 min: a hung call is reported, not waited on
SAMPLE_EVERY_S = 0.02
# The DaemonSet's config keys the benchmark replaces: paths (its temporary directory),
# the metrics port (never opened here) and hostRoot (the benchmark runs on the host's /).
REPLACED_KEYS = frozenset({"daemonSocketPath", "cniConfigDir", "cniDir", "binDir", "confDir"})
DROPPED_KEYS = frozenset({"hostRoot", "metricsAddress"})
QUANTITY_SUFFIXES = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
}  # fmt: skip


# -- the pure parts ----------------------------------------------------------------------


def quantity_bytes(quantity: str | int) -> int:
    """A Kubernetes memory quantity ("100Mi", "128M", "1Gi", 1048576) in bytes."""
    text = str(quantity).strip()
    for suffix, factor in sorted(QUANTITY_SUFFIXES.items(), key=lambda kv: -len(kv[0])):
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    try:
        return int(float(text))
    except ValueError:
        raise BenchError(f"not a memory quantity: {quantity!r}") from None


def deployed_limit(daemonset: dict[str, Any]) -> int | None:
    """The multinetd container's memory limit in bytes (None: it sets none)."""
    for c in daemonset["spec"]["template"]["spec"]["containers"]:
        if c["name"] == "multinetd":
            limit = c.get("resources", {}).get("limits", {}).get("memory")
            return None if limit is None else quantity_bytes(limit)
    raise BenchError("the DaemonSet has no multinetd container")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def stats_ms(seconds: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(seconds),
        "p50": round(percentile(seconds, 50) * 1000, 1),
        "p99": round(percentile(seconds, 99) * 1000, 1),
        "max": round(max(seconds) * 1000, 1),
    }


def failure_of(returncode: int, stdout: str, stderr: str) -> str | None:
    """What went wrong with one call, as a short label: the CNI error code, an in-process
    fallback of the shim (the daemon was not there), a signal, an exit code; None if
    it succeeded."""
    if returncode == 0:
        what = None
    else:
        try:
            what = f"code {json.loads(stdout)['code']}"
        except (ValueError, KeyError, TypeError):
            if returncode < 0:
                what = f"killed by {signal.Signals(-returncode).name}"
            else:
                what = f"exit {returncode}"
    if FALLBACK_MARK in stderr:  # the daemon did not answer: not the thick path measured
        return "in-process fallback" + (f", {what}" if what else "")
    return what


# -- one call -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    seconds: float
    failure: str | None
    detail: str = ""


def execute(argv: list[str], stdin: bytes, env: dict[str, str]) -> Call:
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            argv, input=stdin, env=env, capture_output=True, timeout=CALL_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return Call(time.perf_counter() - start, f"timeout ({CALL_TIMEOUT_S:.0f} s)")
    seconds = time.perf_counter() - start
    out, err = proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
    failure = failure_of(proc.returncode, out, err)
    detail = " | ".join(line for line in (out + err).splitlines() if line.strip())
    return Call(seconds, failure, detail[:300] if failure else "")


def cni_env(command: str, cid: str, netns: str, ifname: str, pod: PodRef) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    return base | {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": cid,
        "CNI_NETNS": netns,
        "CNI_IFNAME": ifname,
        "CNI_PATH": str(REFERENCE_PLUGINS),
        "CNI_ARGS": pod.cni_args,
    }


def delegate_stdin(net: Network) -> bytes:
    """A one-plugin network's config as the runtime hands it to the plugin."""
    (plugin,) = net.conflist["plugins"]
    return json.dumps({"cniVersion": CNI_VERSION, "name": net.name, **plugin}).encode()


# -- the phases ---------------------------------------------------------------------------


class Sampler:
    """The cgroup's usage, sampled in a thread while a phase runs: its maximum."""

    def __init__(self, cgroup: MemoryCgroup | None) -> None:
        self.cgroup = cgroup
        self.max = 0
        self.at_max: dict[str, int] = {}  # the usage's breakdown at that sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while self.cgroup is not None and not self._stop.is_set():
            usage = self.cgroup.usage()
            if usage > self.max:
                self.max, self.at_max = usage, self.cgroup.breakdown()
            self._stop.wait(SAMPLE_EVERY_S)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def phase(
    one: Callable[[int], Call], pods: int, cgroup: MemoryCgroup | None = None
) -> dict[str, Any]:
    """`one(i)` for every pod at once: wall seconds, per-pod stats, failures by label."""
    with Sampler(cgroup) as sampler, ThreadPoolExecutor(pods) as pool:
        start = time.perf_counter()
        calls = list(pool.map(one, range(pods)))
        wall = time.perf_counter() - start
    failures = collections.Counter(c.failure for c in calls if c.failure)
    examples = {c.failure: c.detail for c in reversed(calls) if c.failure}  # the first of each
    out: dict[str, Any] = {
        "wall_s": round(wall, 2),
        "ms": stats_ms([c.seconds for c in calls]),
        "failures": sum(failures.values()),
        "failures_by_kind": dict(failures),
        "failure_examples": [f"{k}: {v}" for k, v in examples.items()],
    }
    if cgroup is not None:
        out["usage_max_mib"] = round(sampler.max / MIB, 1)
        out["usage_max_breakdown_mib"] = {k: round(v / MIB, 1) for k, v in sampler.at_max.items()}
    return out


def floor(
    scenario: Scenario, nets: PodNetworks, pods: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    """The delegates alone: each pod's four networks in turn, all pods at once."""
    refs = [PodRef(FLOOR_NAMESPACE, f"floor-{i}", str(uuid.uuid4())) for i in range(pods)]
    namespaces = [scenario.netns() for _ in refs]
    out: dict[str, Any] = {"pods": pods}
    try:
        for command in ("ADD", "DEL"):
            order = nets.all if command == "ADD" else tuple(reversed(nets.all))

            def one(i: int, command: str = command, order: tuple[Network, ...] = order) -> Call:
                total, failure, detail = 0.0, None, ""
                for net in order:
                    call = execute(
                        [str(REFERENCE_PLUGINS / net.conflist["plugins"][0]["type"])],
                        delegate_stdin(net),
                        cni_env(
                            command, f"mnb-burst-floor-{i}", namespaces[i], net.ifname, refs[i]
                        ),
                    )
                    total += call.seconds
                    failure, detail = failure or call.failure, detail or call.detail
                return Call(total, failure, detail)

            out[command] = phase(one, pods)
            progress(f"  burst floor: {pods} {command}s in {out[command]['wall_s']} s")
            if command == "ADD":
                out["pods_with_all_interfaces"] = sum(
                    1 for ns in namespaces if scenario.links(ns) == nets.ifnames
                )
        out["leaks_after_del"] = leaks(scenario, "floor", namespaces)
    finally:
        for ns in namespaces:
            scenario.drop_netns(ns)
    return out


def adapted(deployed: dict[str, Any], local: dict[str, Any]) -> dict[str, Any]:
    """The DaemonSet's daemon config with the benchmark's own paths (`local`)."""
    return {k: v for k, v in deployed.items() if k not in REPLACED_KEYS | DROPPED_KEYS} | local


def snapshot(cgroup: MemoryCgroup, daemon: Daemon) -> dict[str, Any]:
    """Once a phase is over: what stays charged (after the ADDs, the kernel's share holds
    the pods' interfaces, which the delegates created in the cgroup), the daemon's RSS."""
    out: dict[str, Any] = {"usage_mib": round(cgroup.usage() / MIB, 1)}
    out |= {k: round(v / MIB, 1) for k, v in cgroup.breakdown().items()}
    if daemon.proc.poll() is None:
        out["daemon_rss_mib"] = round(daemon.rss_kib() / 1024, 1)
    return out


def admission_figures(daemon: Daemon) -> dict[str, Any]:
    """The daemon's memory-aware admission once a phase is over (its /metrics on its
    socket): requests that waited for memory with a slot free, by lane, and the budget."""
    if daemon.proc.poll() is not None:
        return {}
    out: dict[str, Any] = {}
    for line in daemon.get("/metrics")[1].splitlines():
        name, _, value = line.partition(" ")
        if name.startswith("multinet_memory_deferred_requests_total"):
            out["deferred_" + name.split('lane="')[1].rstrip('"}')] = int(float(value))
        elif name in ("multinet_memory_limit_bytes", "multinet_memory_request_cost_bytes"):
            out[name.removeprefix("multinet_memory_").removesuffix("_bytes") + "_mib"] = round(
                float(value) / MIB, 1
            )
    return out


def daemon_state(daemon: Daemon) -> str:
    code = daemon.proc.poll()
    if code is None:
        return "running"
    return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited {code}"


def multinet(
    scenario: Scenario,
    nets: PodNetworks,
    pods: int,
    cgroup: MemoryCgroup,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    refs = [scenario.add_pod(NAMESPACE, f"burst-{i}", nets.annotation()) for i in range(pods)]
    keys = adapted(json.loads((THICK / "daemon.json").read_text()), scenario.multinet_keys(VARIANT))
    try:
        daemon = scenario.daemon(VARIANT, keys, wait=120, prefix=cgroup.wrapper())
    except BenchError as e:
        limit = cgroup.limit()
        raise BenchError(
            f"{e}\n(at start-up, before any pod: the cgroup's OOM kills "
            f"{cgroup.oom_kills()}, limit {'none' if limit is None else limit // MIB} MiB)"
        ) from None
    out: dict[str, Any] = {"pods": pods}
    namespaces: list[str] = []
    try:
        daemon.wait_cached("pods", scenario.pods_on_node, timeout=120)
        daemon.wait_cached("network_attachment_definitions", len(nets.all), timeout=120)
        time.sleep(1.0)  # the watches' initial burst settled
        out["idle"] = {
            "cgroup_usage_mib": round(cgroup.usage() / MIB, 1),
            "daemon_rss_mib": round(daemon.rss_kib() / 1024, 1),
            "cgroup_peak_so_far_mib": round(cgroup.peak() / MIB, 1),
        }
        namespaces = [scenario.netns() for _ in refs]
        shim = str(scenario.shim())
        stdin = json.dumps(
            {
                "cniVersion": CNI_VERSION,
                "name": "mnb-burst",
                "type": "multinet-shim",
                "daemonSocketPath": daemon.socket,
                # No thin fallback (it would run outside the cgroup, and here without
                # the generated conflist it needs): a call the daemon did not answer fails.
                "fallbackExecutable": "/bin/false",
            }
        ).encode()

        for command in ("ADD", "DEL"):

            def one(i: int, command: str = command) -> Call:
                cid = f"mnb-burst-{i}"
                return execute([shim], stdin, cni_env(command, cid, namespaces[i], "eth0", refs[i]))

            out[command] = phase(one, pods, cgroup)
            out[command]["daemon"] = daemon_state(daemon)
            out[command]["after"] = snapshot(cgroup, daemon)
            out[command]["admission"] = admission_figures(daemon)
            progress(
                f"  burst: {pods} {command}s in {out[command]['wall_s']} s, "
                f"{out[command]['failures']} failed, daemon {out[command]['daemon']}"
            )
            if command == "ADD":
                out["pods_with_all_interfaces"] = sum(
                    1 for ns in namespaces if scenario.links(ns) == nets.ifnames
                )
        out["leaks_after_del"] = leaks(scenario, VARIANT, namespaces)
        out["daemon"] = daemon_state(daemon)
        out["daemon_healthy"] = out["daemon"] == "running" and daemon.get("/healthz")[0] == 200
    finally:
        for ns in namespaces:
            scenario.drop_netns(ns)
        daemon.stop()  # before the cgroup goes: every process in it must have exited
    out["oom_kills"] = cgroup.oom_kills()
    out["limit_hits"] = cgroup.limit_hits()
    out["peak_mib"] = round(cgroup.peak() / MIB, 1)
    return out


def run(
    scenario: Scenario,
    iterations: int = 0,
    progress: Callable[[str], None] = print,
    pods: int = PODS,
    limit_mib: float | None = None,
) -> Any:
    daemonset = yaml.safe_load((THICK / "daemonset.yaml").read_text())
    deployed = deployed_limit(daemonset)
    if limit_mib is None:
        limit = deployed
    else:
        limit = int(limit_mib * MIB) if limit_mib > 0 else None
    nets = scenario.networks()
    scenario.shim()
    out: dict[str, Any] = {
        "pods": pods,
        "deployed_limit_mib": None if deployed is None else round(deployed / MIB, 1),
        "limit_mib": None if limit is None else round(limit / MIB, 1),
        "floor": floor(scenario, nets, pods, progress),
    }
    cgroup = MemoryCgroup(limit)
    out["cgroup"] = {"version": cgroup.version, "path": str(cgroup.path)}
    try:
        m = multinet(scenario, nets, pods, cgroup, progress)
    finally:
        cgroup.remove()
    f = out["floor"]
    for command in ("ADD", "DEL"):
        m[command]["wall_ratio_to_floor"] = round(m[command]["wall_s"] / f[command]["wall_s"], 2)
    total = m["ADD"]["wall_s"] + m["DEL"]["wall_s"]
    floor_total = f["ADD"]["wall_s"] + f["DEL"]["wall_s"]
    m["total_wall_s"] = round(total, 2)
    f["total_wall_s"] = round(floor_total, 2)
    m["total_ratio_to_floor"] = round(total / floor_total, 2)
    failures = m["ADD"]["failures"] + m["DEL"]["failures"]
    m["targets"] = {
        "oom_kills": "met" if m["oom_kills"] == 0 else "MISSED",
        "failures": "met" if failures == 0 else "MISSED",
        "peak_under_limit": "met" if limit is None or m["peak_mib"] * MIB < limit else "MISSED",
        # Failed calls are quick: only a burst that fully succeeded can meet it.
        f"total <= x{TARGET_RATIO} floor": "MISSED"
        if failures
        else verdict(m["total_ratio_to_floor"], TARGET_RATIO),
    }
    m["ok"] = (
        failures == 0
        and m["oom_kills"] == 0
        and m["pods_with_all_interfaces"] == pods
        and not m["leaks_after_del"]
        and m["daemon_healthy"]
    )
    f["ok"] = (
        f["ADD"]["failures"] == 0
        and f["DEL"]["failures"] == 0
        and f["pods_with_all_interfaces"] == pods
        and not f["leaks_after_del"]
    )
    out["multinet"] = m
    return out


def render(r: dict[str, Any]) -> str:
    f, m = r["floor"], r["multinet"]

    def cells(p: dict[str, Any]) -> list[str]:
        failed = f"{p['failures']}" + (
            " (" + ", ".join(f"{k}: {n}" for k, n in p["failures_by_kind"].items()) + ")"
            if p["failures"]
            else ""
        )
        return [f"{p['wall_s']:.2f}", f"{p['ms']['p50']:.0f} / {p['ms']['p99']:.0f}", failed]

    rows = [
        ["delegates alone (floor)", *cells(f["ADD"]), *cells(f["DEL"]), f"{f['total_wall_s']:.2f}"],
        [
            "multinet thick (shim)",
            *cells(m["ADD"]),
            *cells(m["DEL"]),
            f"{m['total_wall_s']:.2f} (x{m['total_ratio_to_floor']:.2f})",
        ],
    ]
    limit = f"{r['limit_mib']:.0f} MiB" if r["limit_mib"] is not None else "none"
    idle = m["idle"]
    memory = (
        f"cgroup v{r['cgroup']['version']}, limit {limit} (the DaemonSet's: "
        f"{r['deployed_limit_mib']} MiB); idle daemon {idle['cgroup_usage_mib']:.1f} MiB "
        f"(RSS {idle['daemon_rss_mib']:.1f}); peak {m['peak_mib']:.1f} MiB (sampled: ADD "
        f"{m['ADD']['usage_max_mib']:.1f}, DEL {m['DEL']['usage_max_mib']:.1f}); "
        f"OOM kills {m['oom_kills']}; at the limit {m['limit_hits']} times; "
        f"daemon after ADD: {m['ADD']['daemon']}, at the end: {m['daemon']}"
    )
    checks = (
        f"pods with their 4 interfaces: floor {f['pods_with_all_interfaces']}, multinet "
        f"{m['pods_with_all_interfaces']}; leaks after DEL: floor "
        f"{', '.join(f['leaks_after_del']) or 'none'}, multinet "
        f"{', '.join(m['leaks_after_del']) or 'none'}"
    )
    targets = "targets: " + "; ".join(f"{k} {v}" for k, v in m["targets"].items())
    admission = "memory-aware admission after each phase: " + "; ".join(
        f"{c}: " + (", ".join(f"{k} {v}" for k, v in m[c].get("admission", {}).items()) or "off")
        for c in ("ADD", "DEL")
    )
    examples = [f"  {c} e.g. {e}" for c in ("ADD", "DEL") for e in m[c]["failure_examples"]]
    mix = [
        f"{c}: " + ", ".join(f"{k} {v:.1f}" for k, v in m[c]["usage_max_breakdown_mib"].items())
        for c in ("ADD", "DEL")
        if m[c]["usage_max_breakdown_mib"]
    ]
    after = [
        f"{c}: " + ", ".join(f"{k} {v:.1f}" for k, v in m[c]["after"].items())
        for c in ("ADD", "DEL")
    ]
    return "\n".join(
        [
            table(
                [
                    "burst",
                    "ADD wall s",
                    "p50/p99 ms",
                    "failed",
                    "DEL wall s",
                    "p50/p99 ms",
                    "failed",
                    "total s",
                ],
                rows,
                f"{r['pods']} pods of the 4-network pod ADDed at once, then DELed at once",
            ),
            "",
            memory,
            "at the sampled maximum, MiB: " + ("; ".join(mix) or "-"),
            "once every call answered, MiB: " + "; ".join(after),
            admission,
            checks,
            targets,
            *examples[:6],
        ]
    )
