"""Dynamic networks: from a change of a running pod's networks annotation to its interface.

A multinetd with `dynamicNetworks` (interval `INTERVAL`) and warm caches; one pod whose
sandbox the driver ADDed with the cluster network only. Each round patches the pod's
annotation to ask for `mnb-nets/mnb-bridge2` (bridge + host-local) and measures until
its interface is up in the pod, then patches it away and measures until the interface
is gone. A thread inside the pod's namespace polls the interface's flags (an ioctl
every 0.5 ms), so the poll costs nothing next to what it measures.

The floor, in the same rounds: the same network ADDed and DELed by the driver alone
into a namespace of its own: the delegate's own time, which a change cannot go below.
The rounds are spaced by more than the daemon's interval, so that no change waits for
the rate limit: these are the figures of a change, not of a flapping annotation.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from bench.daemon import BenchError
from bench.networks import CNI_VERSION, NAD_NAMESPACE
from bench.report import summarize, table
from bench.scenario import NETWORKS_ANNOTATION, Scenario
from tests.conformance.libcni import write_netconf

INTERVAL = 0.25  # dynamicNetworksInterval of the daemon
POLL = 0.0005
TIMEOUT = 30.0
CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
IFF_UP = 0x1


def _in_netns(path: str, ifname: str, want_up: bool, started: float) -> float:
    """Seconds from `started` until `ifname` in the namespace at `path` is up (or gone,
    when not `want_up`), polled from a thread that entered the namespace."""
    out: dict[str, Any] = {}

    def poll() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(path, os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:  # this thread only
                out["error"] = f"setns {path}: {os.strerror(ctypes.get_errno())}"
                return
        finally:
            os.close(fd)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        request = struct.pack("16sH14x", ifname.encode(), 0)
        deadline = time.perf_counter() + TIMEOUT
        try:
            while time.perf_counter() < deadline:
                try:
                    flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
                    up = bool(flags & IFF_UP)
                except OSError:
                    up = None  # no such interface
                if (want_up and up) or (not want_up and up is None):
                    out["at"] = time.perf_counter()
                    return
                time.sleep(POLL)
            out["error"] = f"{ifname} not {'up' if want_up else 'gone'} after {TIMEOUT:.0f} s"
        finally:
            sock.close()

    t = threading.Thread(target=poll, name="netns-poll")
    t.start()
    t.join()
    if "error" in out:
        raise BenchError(f"dynamic networks: {out['error']}")
    return float(out["at"]) - started


def run(
    scenario: Scenario, iterations: int = 30, progress: Callable[[str], None] = print, **_: Any
) -> dict[str, Any]:
    nets = scenario.networks()
    net = next(n for n in nets.secondaries if n.name == "mnb-bridge2")
    scenario.shim()
    keys = scenario.multinet_keys("dynamic") | {
        "dynamicNetworks": True,
        "dynamicNetworksInterval": INTERVAL,
    }
    daemon = scenario.daemon("dynamic", keys)
    name = "mnb-dynamic"
    write_netconf(
        scenario.confdir,
        {"cniVersion": CNI_VERSION, "name": name, "type": "multinet-shim"}
        | {"daemonSocketPath": daemon.socket},
    )
    api = scenario.kubeapi()
    pod = scenario.add_pod(NAD_NAMESPACE, "mnb-dynamic-pod", None)
    daemon.wait_cached("pods", scenario.pods_on_node)
    ns = scenario.netns()
    proc, _ = scenario.drive("add", name, ns, cni_args=pod.cni_args)
    if proc.returncode != 0:
        raise BenchError(f"dynamic networks: the sandbox's ADD failed: {proc.stdout}{proc.stderr}")
    floor_ns = scenario.netns()
    add, remove, floor_add, floor_del = [], [], [], []
    want = f"{NAD_NAMESPACE}/{net.name}"
    try:
        for i in range(iterations):
            time.sleep(INTERVAL * 1.5)
            started = time.perf_counter()
            api.patch_pod(
                pod.namespace, pod.name, {"metadata": {"annotations": {NETWORKS_ANNOTATION: want}}}
            )
            add.append(_in_netns(ns, "net1", True, started))
            time.sleep(INTERVAL * 1.5)
            started = time.perf_counter()
            api.patch_pod(
                pod.namespace, pod.name, {"metadata": {"annotations": {NETWORKS_ANNOTATION: ""}}}
            )
            remove.append(_in_netns(ns, "net1", False, started))
            for command, samples in (("add", floor_add), ("del", floor_del)):
                proc, seconds = scenario.drive(command, net.name, floor_ns, ifname="net1")
                if proc.returncode != 0:
                    raise BenchError(
                        f"dynamic networks: the floor's {command} failed: {proc.stdout}"
                    )
                samples.append(seconds)
            if (i + 1) % 10 == 0:
                progress(f"  dynamic networks: {i + 1}/{iterations} rounds")
    finally:
        scenario.drive("del", name, ns, cni_args=pod.cni_args)
    leftovers = scenario.links(ns) + scenario.links(floor_ns)
    result = {
        "interval_s": INTERVAL,
        "add_ms": summarize(add).to_dict(),
        "remove_ms": summarize(remove).to_dict(),
        "floor_add_ms": summarize(floor_add).to_dict(),
        "floor_del_ms": summarize(floor_del).to_dict(),
        "leftover_links": leftovers,
        "ok": not leftovers,
    }
    for what, floor in (("add", "floor_add"), ("remove", "floor_del")):
        result[f"{what}_ratio_to_floor"] = round(
            result[f"{what}_ms"]["median"] / result[f"{floor}_ms"]["median"], 2
        )
    return result


def render(r: dict[str, Any]) -> str:
    rows = []
    for label, key, floor in (
        ("annotation -> interface up", "add", "floor_add"),
        ("annotation -> interface gone", "remove", "floor_del"),
    ):
        s, f = r[f"{key}_ms"], r[f"{floor}_ms"]
        rows.append(
            [
                label,
                str(s["n"]),
                f"{s['median']:.1f}",
                f"{s['max']:.1f}",
                f"{f['median']:.1f}",
                f"x{r[f'{key}_ratio_to_floor']:.2f}",
            ]
        )
    return table(
        ["change", "n", "median ms", "max ms", "floor median ms", "ratio"],
        rows,
        title=f"dynamic networks (interval {r['interval_s']} s; floor: the delegate alone); "
        f"leftovers: {', '.join(r['leftover_links']) or 'none'}",
    )
