"""The shim's own start-up: a VERSION call forwarded to multinetd by the native shim, next
to the floor (spawning `/bin/true`), the fallback (the shim exec'ing thin multinet) and
thin multinet itself.

VERSION costs the daemon nothing, so the shim's row is its start-up plus one round
trip on the socket: the fixed price of every thick-mode CNI call. All rows are run
interleaved, `max(iterations, MIN_SAMPLES)` times each; wall time and CPU time
(user + system of the child) are recorded.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.daemon import BenchError
from bench.networks import CNI_VERSION
from bench.report import summarize, table, verdict
from bench.scenario import FALLBACK_MARK, Scenario

MIN_SAMPLES = 3
TARGET_MS = 2.0
SHIM_ROW = "multinet-shim VERSION: native -> multinetd"
FLOOR_ROW = "/bin/true (spawn, exec, wait: the floor)"


@dataclass(frozen=True)
class Command:
    label: str
    argv: list[str]
    stdin: bytes = b""
    forwarded: bool = False  # must reach the daemon (no in-process fallback)


def commands(scenario: Scenario, socket: str) -> list[Command]:
    py = scenario.python
    up = json.dumps({"cniVersion": CNI_VERSION, "daemonSocketPath": socket}).encode()
    down = json.dumps(
        {"cniVersion": CNI_VERSION, "daemonSocketPath": str(scenario.root / "no-daemon.sock")}
    ).encode()
    shim = str(scenario.shim())
    return [
        Command(FLOOR_ROW, ["/bin/true"]),
        Command("python3 -c pass", [py, "-c", "pass"]),
        Command(SHIM_ROW, [shim], up, forwarded=True),
        Command("multinet-shim VERSION: daemon down (exec thin multinet)", [shim], down),
        Command("multinet VERSION (thin, in-process)", [str(scenario.thin())], up),
    ]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    env["CNI_COMMAND"] = "VERSION"
    return env


def run_once(cmd: Command) -> tuple[float, float]:
    """(wall, CPU) seconds of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd.argv, input=cmd.stdin, env=_env(), capture_output=True, timeout=60)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0 or (cmd.forwarded and FALLBACK_MARK.encode() in proc.stderr):
        raise BenchError(f"{cmd.label}: exit {proc.returncode}: {proc.stdout!r} {proc.stderr!r}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu


def run(scenario: Scenario, iterations: int, progress: Callable[[str], None] = print) -> Any:
    samples = max(iterations, MIN_SAMPLES)
    daemon = scenario.daemon("startup", {"cniDir": str(scenario.cni_dir("startup"))})
    cmds = commands(scenario, daemon.socket)
    for cmd in cmds:  # once each, unrecorded: page cache, bytecode
        run_once(cmd)
    wall: dict[str, list[float]] = {c.label: [] for c in cmds}
    cpu: dict[str, list[float]] = {c.label: [] for c in cmds}
    for _ in range(samples):
        for cmd in cmds:
            w, c = run_once(cmd)
            wall[cmd.label].append(w)
            cpu[cmd.label].append(c)
    progress(f"  startup: {samples} interleaved samples of {len(cmds)} commands")
    rows = {
        label: {**summarize(wall[label]).to_dict(), "cpu_median": summarize(cpu[label]).median}
        for label in wall
    }
    for row in rows.values():
        row["cpu_median"] = round(row["cpu_median"], 2)
    shim = rows[SHIM_ROW]
    floor = rows[FLOOR_ROW]
    return {
        "samples": samples,
        "rows": rows,
        "shim_median_ms": shim["median"],
        "shim_over_floor_ms": round(shim["median"] - floor["median"], 2),
        "target_ms": TARGET_MS,
        "verdict": verdict(shim["median"], TARGET_MS),
    }


def render(r: dict[str, Any]) -> str:
    rows = [
        [
            label,
            f"{s['min']:.1f}",
            f"{s['median']:.1f}",
            f"{s['max']:.1f}",
            f"{s['cpu_median']:.1f}",
        ]
        for label, s in r["rows"].items()
    ]
    out = [
        table(
            ["start-up (ms)", "min", "median", "max", "CPU median"],
            rows,
            f"Start-up, n = {r['samples']} interleaved samples each",
        ),
        f"shim: median {r['shim_median_ms']:.2f} ms, "
        f"{r['shim_over_floor_ms']:+.2f} ms over spawning /bin/true; "
        f"target <= {r['target_ms']:.0f} ms: {r['verdict']}",
    ]
    return "\n\n".join(out)
