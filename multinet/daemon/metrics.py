"""Prometheus text-format metrics (exposition format 0.0.4), thread-safe, no dependency.

Only what multinetd exports: labelled counters, histograms and gauges read
from a callable at scrape time (the cluster cache's sizes).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

from multinet.daemon.admission import MemoryLoad

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Waits in the admission queue: up to its deadline (queueTimeout, at most 119 s).
WAIT_BUCKETS = (0.01, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 90.0, 120.0)
COMMANDS = ("ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION")

Labels = tuple[str, ...]
CacheSizes = Callable[[], Mapping[str, int]]


class LaneLoad(NamedTuple):
    """One admission lane now (daemon.admission): requests executing and waiting."""

    executing: int
    queued: int


def no_cache() -> Mapping[str, int]:
    """Cache sizes before the watch-backed cluster cache exists."""
    return {"pods": 0, "network_attachment_definitions": 0}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _num(value: float) -> str:
    return repr(float(value)) if value != int(value) else str(int(value))


class Counter:
    def __init__(self, name: str, help_text: str, labels: Sequence[str]) -> None:
        self.name, self.help, self.label_names = name, help_text, tuple(labels)
        self._values: dict[Labels, float] = {}
        self._lock = threading.Lock()

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        with self._lock:
            self._values[labels] = self._values.get(labels, 0.0) + amount

    def value(self, *labels: str) -> float:
        with self._lock:
            return self._values.get(labels, 0.0)

    def render(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        with self._lock:
            for labels, v in sorted(self._values.items()):
                out.append(f"{self.name}{_labels(self.label_names, labels)} {_num(v)}")
        return out


class Histogram:
    def __init__(
        self,
        name: str,
        help_text: str,
        labels: Sequence[str],
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> None:
        self.name, self.help, self.label_names = name, help_text, tuple(labels)
        self.buckets = tuple(sorted(buckets))
        # Per label set: count per bucket (not cumulative; +Inf last), sum.
        self._series: dict[Labels, tuple[list[int], list[float]]] = {}
        self._lock = threading.Lock()

    def observe(self, value: float, *labels: str) -> None:
        with self._lock:
            counts, total = self._series.setdefault(labels, ([0] * (len(self.buckets) + 1), [0.0]))
            counts[bisect.bisect_left(self.buckets, value)] += 1
            total[0] += value

    def count(self, *labels: str) -> int:
        with self._lock:
            series = self._series.get(labels)
            return sum(series[0]) if series else 0

    def render(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        with self._lock:
            for labels, (counts, total) in sorted(self._series.items()):
                running = 0
                for bound, n in zip((*self.buckets, float("inf")), counts, strict=True):
                    running += n
                    le = "+Inf" if bound == float("inf") else _num(bound)
                    series = _labels(self.label_names, labels, 'le="' + le + '"')
                    out.append(f"{self.name}_bucket{series} {running}")
                out.append(f"{self.name}_sum{_labels(self.label_names, labels)} {_num(total[0])}")
                out.append(f"{self.name}_count{_labels(self.label_names, labels)} {running}")
        return out


class DaemonMetrics:
    """Every metric multinetd exports."""

    def __init__(self, cache_sizes: CacheSizes = no_cache) -> None:
        self.requests = Counter(
            "multinet_requests_total",
            "CNI requests served by the daemon, by command and result (success or error).",
            ("command", "result"),
        )
        self.errors = Counter(
            "multinet_request_errors_total",
            "CNI requests that failed, by command and CNI error code.",
            ("command", "code"),
        )
        self.latency = Histogram(
            "multinet_request_duration_seconds",
            "Time to serve a CNI request in the daemon, by command.",
            ("command",),
        )
        self.delegate_latency = Histogram(
            "multinet_delegate_duration_seconds",
            "Time a delegate plugin ran, by plugin type and command.",
            ("plugin", "command"),
        )
        self.rejected = Counter(
            "multinet_rejected_requests_total",
            "Requests refused on the socket: malformed, or from a non-root peer.",
            ("reason",),
        )
        self.network_changes = Counter(
            "multinet_network_changes_total",
            "Changes of running pods' networks (dynamicNetworks), by result: applied, "
            "rejected (the annotation cannot be honoured), failed (retried).",
            ("result",),
        )
        self.queue_wait = Histogram(
            "multinet_queue_wait_seconds",
            "Time a CNI request waited for a slot before it executed, by lane (add, other).",
            ("lane",),
            WAIT_BUCKETS,
        )
        self.queue_refusals = Counter(
            "multinet_queue_refusals_total",
            "CNI requests answered code 11 without being started, by lane and reason: "
            "full (the queue was), deadline (queueTimeout passed), closed (shutdown), "
            "withdrawn (an ADD whose client left, or whose DEL came, while it waited).",
            ("lane", "reason"),
        )
        self.config_restored = Counter(
            "multinet_cni_config_restored_total",
            "Times the generated CNI config was put back after another agent removed (or "
            "renamed) or rewrote it, by what was done to it: removed, modified.",
            ("change",),
        )
        self.gc_runs = Counter(
            "multinet_gc_runs_total",
            "GC passes (gc: true), by result: done, dry-run, runtime-unavailable (the "
            "runtime could not be asked or answered partially: nothing was deleted), failed.",
            ("result",),
        )
        self.gc_actions = Counter(
            "multinet_gc_actions_total",
            "What GC did, by action (sandbox-del: the attachments of a sandbox the runtime "
            "no longer has; release-retry: a release a DEL skipped; cni-gc: a network's CNI "
            "GC) and result (done, dry-run, failed, young: left for the grace period, "
            "not-a-pod: no K8S_POD_NAME in its CNI_ARGS, skipped, collected: a skipped "
            "release its network's GC reclaimed).",
            ("action", "result"),
        )
        # Skipped releases still owed, as daemon.gc last counted them; None = GC is off.
        self.pending_releases: int | None = None
        self.cache_sizes = cache_sizes
        # The supervised DHCP client daemon (daemon.dhcpd): up now? None = not supervised.
        self.dhcp_daemon_up: Callable[[], bool] | None = None
        self.dhcp_daemon_restarts: Callable[[], int] = lambda: 0
        self._inflight = 0
        self._lock = threading.Lock()

    def started(self) -> None:
        with self._lock:
            self._inflight += 1

    def finished(self, command: str, code: int, seconds: float) -> None:
        command = command if command in COMMANDS else "invalid"
        with self._lock:
            self._inflight -= 1
        self.requests.inc(command, "success" if code == 0 else "error")
        if code != 0:
            self.errors.inc(command, str(code))
        self.latency.observe(seconds, command)

    @property
    def inflight(self) -> int:
        with self._lock:
            return self._inflight

    def refused(self, command: str, lane: str, reason: str) -> None:
        """A request answered code 11 by the admission queue: it never started."""
        command = command if command in COMMANDS else "invalid"
        self.requests.inc(command, "error")
        self.errors.inc(command, "11")
        self.queue_refusals.inc(lane, reason)

    def observe_delegate(self, plugin: str, command: str, seconds: float, ok: bool) -> None:
        """A cni.exec.Observer."""
        self.delegate_latency.observe(seconds, plugin, command)

    def render(
        self,
        ready: bool,
        lanes: Mapping[str, LaneLoad] | None = None,
        memory: MemoryLoad | None = None,
    ) -> str:
        lines: list[str] = []
        for metric in (self.requests, self.errors, self.latency, self.delegate_latency):
            lines += metric.render()
        lines += self.rejected.render()
        lines += self.network_changes.render()
        lines += self.queue_wait.render()
        lines += self.queue_refusals.render()
        lines += self.config_restored.render()
        if self.pending_releases is not None:
            lines += self.gc_runs.render()
            lines += self.gc_actions.render()
            lines += [
                "# HELP multinet_gc_pending_releases Releases a DEL skipped (its delegate's "
                "DEL failed) that GC still retries.",
                "# TYPE multinet_gc_pending_releases gauge",
                f"multinet_gc_pending_releases {self.pending_releases}",
            ]
        lines += _lane_gauges(lanes or {})
        lines += _memory_gauges(memory)
        lines += [
            "# HELP multinet_inflight_requests CNI requests being served now.",
            "# TYPE multinet_inflight_requests gauge",
            f"multinet_inflight_requests {self.inflight}",
            "# HELP multinet_ready 1 when the daemon is ready (its CNI config is written).",
            "# TYPE multinet_ready gauge",
            f"multinet_ready {int(ready)}",
            "# HELP multinet_cache_objects Objects in the daemon's cluster caches, by kind.",
            "# TYPE multinet_cache_objects gauge",
        ]
        for kind, size in sorted(self.cache_sizes().items()):
            lines.append(f'multinet_cache_objects{{kind="{_escape(kind)}"}} {size}')
        if self.dhcp_daemon_up is not None:
            lines += [
                "# HELP multinet_dhcp_daemon_up 1 when the supervised DHCP client daemon "
                "answers on its socket.",
                "# TYPE multinet_dhcp_daemon_up gauge",
                f"multinet_dhcp_daemon_up {int(self.dhcp_daemon_up())}",
                "# HELP multinet_dhcp_daemon_restarts_total Restarts of the supervised DHCP "
                "client daemon.",
                "# TYPE multinet_dhcp_daemon_restarts_total counter",
                f"multinet_dhcp_daemon_restarts_total {self.dhcp_daemon_restarts()}",
            ]
        return "\n".join(lines) + "\n"


def _lane_gauges(lanes: Mapping[str, LaneLoad]) -> list[str]:
    lines = [
        "# HELP multinet_executing_requests CNI requests executing now, by admission lane.",
        "# TYPE multinet_executing_requests gauge",
    ]
    lines += [f'multinet_executing_requests{{lane="{n}"}} {v.executing}' for n, v in lanes.items()]
    lines += [
        "# HELP multinet_queued_requests CNI requests waiting for a slot, by admission lane.",
        "# TYPE multinet_queued_requests gauge",
    ]
    lines += [f'multinet_queued_requests{{lane="{n}"}} {v.queued}' for n, v in lanes.items()]
    return lines


def _memory_gauges(memory: MemoryLoad | None) -> list[str]:
    """Memory-aware admission (daemon.admission.MemoryBudget); nothing when it is off."""
    if memory is None:
        return []
    gauges = (
        ("limit", "The memory budget admission keeps under (the cgroup's limit).", memory.limit),
        (
            "working_set",
            "The daemon's cgroup's usage less its inactive page cache: the daemon, its "
            "delegates and the kernel memory of their interfaces.",
            memory.working_set,
        ),
        ("headroom", "The budget less the working set.", memory.headroom),
        (
            "request_cost",
            "One request's expected peak in the cgroup (requestMemoryCost): a request "
            "starts when the headroom covers it once for itself and once per request "
            "executing.",
            memory.request_cost,
        ),
    )
    lines = []
    for name, help_text, value in gauges:
        metric = f"multinet_memory_{name}_bytes"
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} gauge", f"{metric} {value}"]
    lines += [
        "# HELP multinet_memory_deferred_requests_total CNI requests that waited for memory "
        "headroom with a slot free, by admission lane.",
        "# TYPE multinet_memory_deferred_requests_total counter",
    ]
    lines += [
        f'multinet_memory_deferred_requests_total{{lane="{n}"}} {v}'
        for n, v in sorted(memory.deferred.items())
    ]
    return lines
