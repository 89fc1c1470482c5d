"""The daemon's memory: RSS with 1,000 NADs cached, and over 1,000 ADD/DEL cycles.

A daemon of its own (its own node name, so that its pod cache holds just the
pod it serves) is started against the API test server; its RSS (VmRSS of
/proc/PID/status) is read once synced, again when `nads` more NADs have
reached its cache through the watch, then along `cycles` ADD/DEL cycles. The
loop is lighter than the latency scenario, as one pod with the cluster
network only (bridge + host-local), and it talks to the socket directly with
the shim's own client (`multinet.shim.client.call_daemon`), without starting a
driver and a shim per call; each cycle has a new container ID, as every pod
sandbox does. Steady means: little growth after the first `WARMUP` cycles.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

from bench.daemon import BenchError
from bench.networks import CNI_VERSION
from bench.report import summarize, table, verdict
from bench.scenario import REFERENCE_PLUGINS, Scenario

NADS = 1000
CYCLES = 1000
WARMUP = 50  # cycles before the reference sample: lazy imports, first connections
SAMPLE_EVERY = 100
TARGET_MIB = 100.0
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
    pod = scenario.add_pod("mnb-mem", "mem-0", None, node=NODE)
    daemon.wait_cached("pods", 1)
    time.sleep(1.0)  # let the watch's burst settle before reading RSS
    sample(f"{base_nads + nads} NADs cached", 0)

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
                code, out = daemon.cni(env(command, cid), stdin)
                if code != 0:
                    raise BenchError(f"memory: {command} of cycle {i} failed: {out}")
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
    return {
        "nads": nads,
        "nads_cached": daemon.cache_sizes().get("network_attachment_definitions", 0),
        "cycles": cycles,
        "cycle_ms": summarize(seconds).to_dict(),
        "samples": samples,
        "rss_before_nads_mib": samples[0]["rss_mib"],
        "rss_with_nads_mib": samples[1]["rss_mib"],
        "rss_end_mib": samples[-1]["rss_mib"],
        "rss_peak_mib": peak,
        "growth_after_warmup_mib": round(samples[-1]["rss_mib"] - reference["rss_mib"], 1),
        "target_mib": TARGET_MIB,
        "verdict": verdict(peak, TARGET_MIB),
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
                f"Daemon RSS, {r['nads_cached']} NADs cached",
            ),
            "",
            f"NAD cache: {r['rss_with_nads_mib'] - r['rss_before_nads_mib']:+.1f} MiB; "
            f"growth over cycles {WARMUP}..{r['cycles']}: {r['growth_after_warmup_mib']:+.1f} MiB; "
            f"peak {r['rss_peak_mib']:.1f} MiB (target < {r['target_mib']:.0f}: {r['verdict']}); "
            f"ADD+DEL cycle median {r['cycle_ms']['median']:.1f} ms; "
            f"leaks: {', '.join(r['leaks']) or 'none'}",
        ]
    )
