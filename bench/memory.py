"""The daemon's memory: RSS with 1,000 NADs and 110 pods cached, over 1,000 ADD/DEL cycles.

Issue 21's target: at most 40 MiB (`TARGET_MIB`; issue 11's was 80 MB) with 1,000
NADs and 110 pods (a full node) cached, flat over 1,000 cycles (here: at most
`FLAT_MIB` of growth after the first `WARMUP` cycles).

A daemon of its own (its own node name, so that its pod cache holds this node's
pods only) is started against the API test server; its RSS (VmRSS of
/proc/PID/status) is read once synced, again when `nads` more NADs and
`cached_pods` pods of its node have reached its caches through the watches, then
along `cycles` ADD/DEL cycles. The loop is lighter than the latency scenario: one
of those pods, with the cluster network only (bridge + host-local), each call one
run of the native `multinet-shim` as `multinetctl install-shim` installs it, without
the driver; each cycle has a new container ID, as every pod sandbox does.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from typing import Any

from bench.daemon import BenchError
from bench.networks import CNI_VERSION
from bench.report import summarize, table, verdict
from bench.scenario import FALLBACK_MARK, REFERENCE_PLUGINS, Scenario

NADS = 1000
PODS = 110  # cached: Kubernetes' default maximum of pods per node
CYCLES = 1000
WARMUP = 50  # cycles before the reference sample: lazy imports, first connections
SAMPLE_EVERY = 100
TARGET_MIB = 40.0  # issue 21
FLAT_MIB = 2.0  # growth allowed over cycles WARMUP..cycles
NODE = "mnb-node-mem"
NAD_NAMESPACE = "mnb-mem-nads"


def nad_config(i: int) -> dict[str, Any]:
    """A typical NAD config (~330 bytes); never attached, only cached."""
    return {
        "cniVersion": CNI_VERSION,
        "name": f"mnb-mem-{i:04d}",
        "plugins": [
            {
                "type": "bridge",
                "bridge": f"mnbx{i:04d}",
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": f"10.{i // 256}.{i % 256}.0/24"}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "tuning", "sysctl": {"net.ipv4.conf.all.arp_notify": "1"}},
        ],
    }


def run(
    scenario: Scenario,
    iterations: int = 0,
    progress: Callable[[str], None] = print,
    cycles: int = CYCLES,
    nads: int = NADS,
    cached_pods: int = PODS,
) -> Any:
    scenario.networks()  # the cluster network NAD and its bridge
    daemon = scenario.daemon("memory", scenario.multinet_keys("memory"), node=NODE)
    base_nads = daemon.cache_sizes().get("network_attachment_definitions", 0)
    samples: list[dict[str, Any]] = []

    def sample(label: str, cycle: int) -> None:
        samples.append(
            {
                "at": label,
                "cycle": cycle,
                "rss_mib": round(daemon.rss_kib() / 1024, 1),
                "fds": daemon.open_fds(),
                "threads": daemon.threads(),
            }
        )

    sample(f"synced, {base_nads} NADs cached", 0)
    for i in range(nads):
        scenario.add_nad(NAD_NAMESPACE, f"mem-{i:04d}", nad_config(i))
    daemon.wait_cached("network_attachment_definitions", base_nads + nads, timeout=120)
    pods = [
        scenario.add_pod("mnb-mem", f"mem-{i}", None, node=NODE) for i in range(max(1, cached_pods))
    ]
    pod = pods[0]
    daemon.wait_cached("pods", len(pods), timeout=120)
    time.sleep(1.0)  # let the watches' burst settle before reading RSS
    sample(f"{base_nads + nads} NADs, {len(pods)} pods cached", 0)

    netns = scenario.netns()
    stdin = json.dumps(
        {
            "cniVersion": CNI_VERSION,
            "name": "mnb-mem",
            "type": "multinet-shim",
            "daemonSocketPath": daemon.socket,
        }
    ).encode()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    shim = str(scenario.shim())

    def env(command: str, cid: str) -> dict[str, str]:
        return base_env | {
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": cid,
            "CNI_NETNS": netns,
            "CNI_IFNAME": "eth0",
            "CNI_PATH": str(REFERENCE_PLUGINS),
            "CNI_ARGS": pod.cni_args,
        }

    seconds: list[float] = []
    try:
        for i in range(1, cycles + 1):
            cid = f"mnb-mem-{i}"
            start = time.perf_counter()
            for command in ("ADD", "DEL"):
                proc = subprocess.run(
                    [shim], input=stdin, env=env(command, cid), capture_output=True, timeout=60
                )
                if proc.returncode != 0 or FALLBACK_MARK.encode() in proc.stderr:
                    raise BenchError(
                        f"memory: {command} of cycle {i} failed (exit {proc.returncode}): "
                        f"{proc.stdout!r} {proc.stderr!r}"
                    )
            seconds.append(time.perf_counter() - start)
            if i == WARMUP or i % SAMPLE_EVERY == 0 or i == cycles:
                sample(f"after {i} cycles", i)
                if i % (5 * SAMPLE_EVERY) == 0:
                    progress(f"  memory: {i}/{cycles} cycles, RSS {samples[-1]['rss_mib']} MiB")
        left = {
            "pod interfaces": scenario.links(netns),
            "host-local allocations": scenario.allocations(),
            "journal files": sorted(
                p.name for p in (scenario.cni_dir("memory") / "journal").glob("*")
            ),
        }
    finally:
        scenario.drop_netns(netns)
    reference = next((s for s in samples if s["cycle"] >= min(WARMUP, cycles)), samples[-1])
    peak = max(s["rss_mib"] for s in samples)
    growth = round(samples[-1]["rss_mib"] - reference["rss_mib"], 1)
    caches = daemon.cache_sizes()
    return {
        "nads": nads,
        "nads_cached": caches.get("network_attachment_definitions", 0),
        "pods_cached": caches.get("pods", 0),
        "cycles": cycles,
        "cycle_ms": summarize(seconds).to_dict(),
        "samples": samples,
        "rss_before_nads_mib": samples[0]["rss_mib"],
        "rss_with_nads_mib": samples[1]["rss_mib"],
        "rss_end_mib": samples[-1]["rss_mib"],
        "rss_peak_mib": peak,
        "growth_after_warmup_mib": growth,
        "target_mib": TARGET_MIB,
        "flat_mib": FLAT_MIB,
        "verdict": verdict(peak, TARGET_MIB),
        "flat_verdict": verdict(growth, FLAT_MIB),
        "leaks": {k: v for k, v in left.items() if v},
    }


def render(r: dict[str, Any]) -> str:
    rows = [
        [s["at"], f"{s['rss_mib']:.1f}", str(s["fds"]), str(s["threads"])] for s in r["samples"]
    ]
    return "\n".join(
        [
            table(
                ["daemon", "RSS MiB", "open fds", "threads"],
                rows,
                f"Daemon RSS, {r['nads_cached']} NADs and {r['pods_cached']} pods cached",
            ),
            "",
            f"NAD cache: {r['rss_with_nads_mib'] - r['rss_before_nads_mib']:+.1f} MiB; "
            f"growth over cycles {WARMUP}..{r['cycles']}: {r['growth_after_warmup_mib']:+.1f} MiB; "
            f"(flat: <= {r['flat_mib']:.0f}: {r['flat_verdict']}); "
            f"peak {r['rss_peak_mib']:.1f} MiB (target <= {r['target_mib']:.1f} MiB: "
            f"{r['verdict']}); "
            f"ADD+DEL cycle median {r['cycle_ms']['median']:.1f} ms; "
            f"leaks: {', '.join(r['leaks']) or 'none'}",
        ]
    )
