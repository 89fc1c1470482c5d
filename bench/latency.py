"""ADD and DEL of issue 4's pod, side by side: the delegates alone, thin, thick x2.

Every iteration runs each variant once, always in the same order, each pod in a
fresh namespace (created and deleted outside the timings), so that noise on this
shared machine hits every variant alike:

- ``floor``: the four networks ADDed (then DELed, in reverse) directly by the
  driver, no meta-plugin: four driver runs;
- ``thin``: one driver run of ``multinet`` (netconf: ``kubeconfig`` +
  ``clusterNetwork``), which asks the API server for the pod and every NAD;
- ``thick-seq`` / ``thick-par``: one driver run of the native ``multinet-shim``
  as ``multinetctl install-shim`` installs it, forwarding to a multinetd with
  warm caches (``parallelAttach`` false / true in its configuration);
- ``driver``: the driver's own fixed cost, to correct the floor for its three
  extra driver runs (see `bench.fixedcost`).

Overheads are medians over the corrected floor, against issue 11's targets
(`TARGET_OVERHEAD_MS`): thick sequential ADD <= 8 ms and DEL <= 5 ms; thick
parallelAttach below the floor itself (overhead < 0) for both; and issue 21's for
thin mode, Multus thin's own overhead on this pod: ADD <= 25 ms, DEL <= 25 ms.

The API server's request log is cut around each call: requests on the call's
path (not the informers' watches, not events) are attributed to it. Events,
which the daemon posts from a background thread after answering, are counted
per variant by the namespace they are posted to, once the run is over.
"""

from __future__ import annotations

import collections
import statistics
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.apicount import RequestLog, events_by_namespace, kind_of
from bench.daemon import BenchError
from bench.fixedcost import DriverCost, checked
from bench.networks import PodNetworks, PodRef
from bench.report import shifted, summarize, table, verdict
from bench.scenario import Scenario

MULTINET_VARIANTS = ("thin", "thick-seq", "thick-par")
VARIANTS = ("floor", *MULTINET_VARIANTS)
COMMANDS = ("ADD", "DEL")
WARMUP = 2  # unrecorded rounds first: page cache, lazy imports, the client's TLS session
# median overhead over the corrected floor, ms (thick-par: below the floor); issue 11,
# thin's from issue 21
TARGET_OVERHEAD_MS = {
    "thin": {"ADD": 25.0, "DEL": 25.0},
    "thick-seq": {"ADD": 8.0, "DEL": 5.0},
    "thick-par": {"ADD": 0.0, "DEL": 0.0},
}
TARGET_API = {"ADD": 1, "DEL": 0}  # thick, requests on the call's path, warm caches
EXTRA_DRIVER_RUNS = 3  # the floor runs the driver 4 times, every multinet variant once


@dataclass
class Samples:
    seconds: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in COMMANDS})
    requests: dict[str, list[int]] = field(default_factory=lambda: {c: [] for c in COMMANDS})
    kinds: dict[str, collections.Counter[str]] = field(
        default_factory=lambda: {c: collections.Counter() for c in COMMANDS}
    )


# -- the variants ----------------------------------------------------------------------


class Variant:
    def __init__(self, name: str, scenario: Scenario, nets: PodNetworks) -> None:
        self.name = name
        self.scenario = scenario
        self.nets = nets

    def add(self, netns: str, pod: PodRef) -> float:
        raise NotImplementedError

    def delete(self, netns: str, pod: PodRef) -> float:
        raise NotImplementedError


class Floor(Variant):
    """The delegates alone: one driver run per network."""

    def _each(self, command: str, netns: str, pod: PodRef) -> float:
        nets = self.nets.all if command == "add" else tuple(reversed(self.nets.all))
        total = 0.0
        for net in nets:
            proc, seconds = self.scenario.drive(
                command, net.name, netns, ifname=net.ifname, cni_args=pod.cni_args
            )
            checked(proc, f"floor: {command} {net.name} ({net.ifname})")
            total += seconds
        return total

    def add(self, netns: str, pod: PodRef) -> float:
        return self._each("add", netns, pod)

    def delete(self, netns: str, pod: PodRef) -> float:
        return self._each("del", netns, pod)


class Multinet(Variant):
    """One driver run of a multinet netconf (thin or thick)."""

    def __init__(self, name: str, scenario: Scenario, nets: PodNetworks, net: str) -> None:
        super().__init__(name, scenario, nets)
        self.net = net

    def _run(self, command: str, netns: str, pod: PodRef) -> float:
        proc, seconds = self.scenario.drive(command, self.net, netns, cni_args=pod.cni_args)
        checked(proc, f"{self.name}: {command} {pod.namespace}/{pod.name}")
        return seconds

    def add(self, netns: str, pod: PodRef) -> float:
        return self._run("add", netns, pod)

    def delete(self, netns: str, pod: PodRef) -> float:
        return self._run("del", netns, pod)


# -- the run ---------------------------------------------------------------------------


def setup(scenario: Scenario, rounds: int) -> tuple[list[Variant], dict[str, list[PodRef]]]:
    """The variants, and `rounds` pods per multinet variant (on the API server before
    the daemons list them, and in a namespace of its own: `mnb-<variant>`)."""
    nets = scenario.networks()
    pods = {
        v: [scenario.add_pod(f"mnb-{v}", f"{v}-{i}", nets.annotation()) for i in range(rounds)]
        for v in MULTINET_VARIANTS
    }
    thin = scenario.thin_netconf()
    seq, seq_daemon = scenario.thick_netconf(parallel=False)
    par, par_daemon = scenario.thick_netconf(parallel=True)
    for d in (seq_daemon, par_daemon):
        d.wait_cached("pods", scenario.pods_on_node)
        d.wait_cached("network_attachment_definitions", len(nets.all))
    variants: list[Variant] = [
        Floor("floor", scenario, nets),
        Multinet("thin", scenario, nets, thin),
        Multinet("thick-seq", scenario, nets, seq),
        Multinet("thick-par", scenario, nets, par),
    ]
    return variants, pods


def one_pod(scenario: Scenario, v: Variant, pod: PodRef, log: RequestLog, into: Samples) -> None:
    """ADD then DEL one pod in a fresh namespace; checks the interfaces after each."""
    want = v.nets.ifnames
    netns = scenario.netns()
    try:
        for command in COMMANDS:
            log.mark()
            seconds = v.add(netns, pod) if command == "ADD" else v.delete(netns, pod)
            calls = log.since_mark()
            into.seconds[command].append(seconds)
            into.requests[command].append(len(calls))
            into.kinds[command].update(kind_of(*c) for c in calls)
            links = scenario.links(netns)
            expected = want if command == "ADD" else []
            if links != expected:
                raise BenchError(f"{v.name}: after {command} the pod has {links}, not {expected}")
    finally:
        scenario.drop_netns(netns)


def mean_served(
    before: dict[str, tuple[float, int, float]], after: dict[str, tuple[float, int, float]]
) -> dict[str, dict[str, float]]:
    """Per request between two histogram snapshots: mean ms serving it in the daemon,
    and mean ms its delegates ran (a sum: with parallelAttach they overlap)."""
    out = {}
    for c in COMMANDS:
        total, count, delegates = after.get(c, (0.0, 0, 0.0))
        total0, count0, delegates0 = before.get(c, (0.0, 0, 0.0))
        if count > count0:
            n = count - count0
            out[c] = {
                "serving_ms": round((total - total0) / n * 1000, 2),
                "delegates_ms": round((delegates - delegates0) / n * 1000, 2),
            }
    return out


def run(scenario: Scenario, iterations: int, progress: Callable[[str], None] = print) -> Any:
    rounds = WARMUP + iterations
    variants, pods = setup(scenario, rounds)
    server = scenario.kubeapi()
    log = RequestLog(server)
    samples = {v.name: Samples() for v in variants}
    warm = {v.name: Samples() for v in variants}
    driver = DriverCost(scenario)
    daemons = {v: scenario.daemons[v] for v in MULTINET_VARIANTS if v in scenario.daemons}
    served: dict[str, dict[str, tuple[float, int, float]]] = {}
    for i in range(rounds):
        if i == WARMUP:
            served = {v: d.request_time() for v, d in daemons.items()}
        recording = i >= WARMUP
        for v in variants:
            if v.name in pods:
                pod = pods[v.name][i]
            else:  # the floor has no pod; the same CNI_ARGS shape all the same
                pod = PodRef("mnb-floor", f"floor-{i}", str(uuid.uuid4()))
            one_pod(scenario, v, pod, log, samples[v.name] if recording else warm[v.name])
        if recording:
            driver.round()
            done = i + 1 - WARMUP
            if done % 5 == 0 or done == iterations:
                progress(f"  latency: {done}/{iterations}")
    events = events_by_namespace(server)
    in_daemon = {name: mean_served(served[name], d.request_time()) for name, d in daemons.items()}
    out = results(samples, driver, events, rounds, iterations)
    out["in_daemon_mean_ms"] = in_daemon
    return out


def results(
    samples: dict[str, Samples],
    driver: DriverCost,
    events: collections.Counter[str],
    rounds: int,
    iterations: int,
) -> dict[str, Any]:
    summaries = {v: {c: summarize(samples[v].seconds[c]) for c in COMMANDS} for v in VARIANTS}
    fixed = {c: driver.per_run_ms(c) for c in COMMANDS}
    floor = {c: summaries["floor"][c] for c in COMMANDS}
    corrected = {c: shifted(floor[c], -EXTRA_DRIVER_RUNS * fixed[c]) for c in COMMANDS}
    overhead: dict[str, Any] = {}
    for v in MULTINET_VARIANTS:
        overhead[v] = {}
        for c in COMMANDS:
            median = summaries[v][c].median
            entry: dict[str, Any] = {
                "vs_floor_corrected_ms": round(median - corrected[c].median, 2),
                "vs_floor_raw_ms": round(median - floor[c].median, 2),
                "ratio_to_floor_corrected": round(median / corrected[c].median, 2),
            }
            target = TARGET_OVERHEAD_MS[v][c]
            entry["target_ms"] = target
            if target > 0:
                entry["verdict"] = verdict(entry["vs_floor_corrected_ms"], target)
            else:  # strictly below the floor
                entry["verdict"] = "met" if entry["vs_floor_corrected_ms"] < target else "MISSED"
            overhead[v][c] = entry
    api: dict[str, Any] = {}
    for v in MULTINET_VARIANTS:
        api[v] = {
            c: {
                "mean": round(statistics.mean(samples[v].requests[c]), 2),
                "max": max(samples[v].requests[c]),
                "kinds": {k: round(n / iterations, 2) for k, n in samples[v].kinds[c].items()},
            }
            for c in COMMANDS
        }
        api[v]["events_per_ADD"] = round(events.get(f"mnb-{v}", 0) / rounds, 2)
        if v.startswith("thick"):
            api[v]["verdict"] = {
                c: "met" if api[v][c]["max"] <= TARGET_API[c] else "MISSED" for c in COMMANDS
            }
    return {
        "iterations": iterations,
        "warmup_rounds": WARMUP,
        "order": [*VARIANTS, "driver"],
        "variants": {v: {c: s.to_dict() for c, s in summaries[v].items()} for v in VARIANTS},
        "floor_corrected": {c: s.to_dict() for c, s in corrected.items()},
        "driver": {
            "fixed_cost_ms": {c: round(x, 2) for c, x in fixed.items()},
            "extra_driver_runs_in_floor": EXTRA_DRIVER_RUNS,
            **driver.summaries(),
        },
        "overhead": overhead,
        "api_requests": api,
        "samples_ms": {
            v: {c: [round(x * 1000, 2) for x in samples[v].seconds[c]] for c in COMMANDS}
            for v in VARIANTS
        },
    }


def render(r: dict[str, Any]) -> str:
    def cells(s: dict[str, Any]) -> list[str]:
        return [f"{s['min']:.1f}", f"{s['median']:.1f}", f"{s['max']:.1f}"]

    rows = []
    labels = {
        "floor": "delegates alone (4 driver runs)",
        "thin": "multinet thin",
        "thick-seq": "multinet thick, sequential",
        "thick-par": "multinet thick, parallelAttach",
    }
    for v in VARIANTS:
        rows.append([labels[v], *cells(r["variants"][v]["ADD"]), *cells(r["variants"][v]["DEL"])])
        if v == "floor":
            fc = r["floor_corrected"]
            rows.append(["floor, corrected (-3 driver runs)", *cells(fc["ADD"]), *cells(fc["DEL"])])
    out = [
        table(
            ["variant (ms)", "ADD min", "median", "max", "DEL min", "median", "max"],
            rows,
            f"ADD/DEL of the 4-network pod, n = {r['iterations']} interleaved rounds "
            f"(+{r['warmup_rounds']} warm-up)",
        )
    ]
    fixed = r["driver"]["fixed_cost_ms"]
    in_daemon = r.get("in_daemon_mean_ms", {})
    if in_daemon:
        rows = [
            [
                labels[v],
                *(
                    f"{t[c]['serving_ms']:.1f} ({t[c]['delegates_ms']:.1f})" if c in t else "-"
                    for c in COMMANDS
                ),
            ]
            for v, t in in_daemon.items()
        ]
        out.append(
            table(
                ["inside the daemon (mean ms)", "ADD (delegates)", "DEL (delegates)"],
                rows,
                "Time the daemon spent per call, and in it the delegates' run time (summed)",
            )
        )
    out.append(
        f"driver's own cost per run (median): ADD {fixed['ADD']:.1f} ms, DEL {fixed['DEL']:.1f} ms"
        " = (driver + loopback) - (loopback alone - spawn of /bin/true)"
    )
    rows = []
    for v in MULTINET_VARIANTS:
        row = [labels[v]]
        for c in COMMANDS:
            o = r["overhead"][v][c]
            row += [
                f"{o['vs_floor_corrected_ms']:+.1f}",
                f"{o['vs_floor_raw_ms']:+.1f}",
                f"x{o['ratio_to_floor_corrected']:.2f}",
                (f"<= {o['target_ms']:.0f}" if o["target_ms"] > 0 else "< 0") + f": {o['verdict']}",
            ]
        rows.append(row)
    out.append(
        table(
            [
                "overhead (median ms)",
                "ADD",
                "vs raw",
                "ratio",
                "target",
                "DEL",
                "vs raw",
                "ratio",
                "target",
            ],
            rows,
            "Overhead over the floor (corrected; 'vs raw': over the uncorrected floor)",
        )
    )
    rows = []
    for v in MULTINET_VARIANTS:
        a = r["api_requests"][v]
        kinds = ", ".join(f"{k} {n:g}" for k, n in sorted(a["ADD"]["kinds"].items())) or "-"
        verdicts = a.get("verdict", {})
        rows.append(
            [
                labels[v],
                f"{a['ADD']['mean']:g} (max {a['ADD']['max']})",
                f"{a['DEL']['mean']:g} (max {a['DEL']['max']})",
                f"{a['events_per_ADD']:g}",
                " / ".join(f"{c} {verdicts[c]}" for c in COMMANDS) if verdicts else "-",
                kinds,
            ]
        )
    out.append(
        table(
            ["API requests", "per ADD", "per DEL", "events/ADD", "targets", "ADD requests"],
            rows,
            "API requests on the call's path (events: posted after the answer, separately)",
        )
    )
    return "\n\n".join(out)
